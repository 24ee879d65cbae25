"""Entry point: the app with its topics, agents and views, handed to Faust's CLI."""

from __future__ import annotations

import sys

import agents.export_runner
import agents.intake
import web.exports
import web.health
from core.app import app

__all__ = ["agents", "app", "main", "web"]


def _with_default_log_level(argv: list[str], level: str) -> list[str]:
    """Faust's worker takes its level from `-l`; LOG_LEVEL fills it in when not given."""
    if len(argv) > 1 and argv[1] == "worker" and not {"-l", "--loglevel"} & set(argv):
        return [*argv, "--loglevel", level.lower()]
    return argv


def main() -> None:
    """`export-service worker` / `python -m export_service worker`."""
    sys.argv = _with_default_log_level(sys.argv, app.settings.log_level)
    app.main()


if __name__ == "__main__":
    main()
