"""Entry point: the app with its topics, agents and views, handed to Faust's CLI."""

from __future__ import annotations

import sys

import agents.export_runner
import agents.intake
import web.asyncapi
import web.ccpa
import web.console
import web.exports
import web.health
import web.identity
import web.metrics
from core.app import app
from core.interpreter import use_switch_interval
from core.tracing import configure_tracing

__all__ = ["agents", "app", "main", "web"]

app.use_canceller(agents.export_runner.cancel_export)


_FAUST_LEVELS = {"WARNING": "warn"}


def _with_default_log_level(argv: list[str], level: str) -> list[str]:
    """Faust's worker takes its level from `-l`; LOG_LEVEL fills it in when not given."""
    if len(argv) > 1 and argv[1] == "worker" and not {"-l", "--loglevel"} & set(argv):
        # Faust's CLI spells WARNING "warn" (and refuses "warning").
        return [*argv, "--loglevel", _FAUST_LEVELS.get(level, level.lower())]
    return argv


def _without_banner(argv: list[str]) -> list[str]:
    """`--quiet` keeps Faust's CLI from printing its banner table: every output line of the
    worker is then a JSON log line (core.logging)."""
    if len(argv) > 1 and argv[1] == "worker" and "--quiet" not in argv:
        return [argv[0], "--quiet", *argv[1:]]
    return argv


def main() -> None:
    """`export-service worker` / `python -m export_service worker`."""
    sys.argv = _without_banner(_with_default_log_level(sys.argv, app.settings.log_level))
    # Off unless the standard OTEL_* variables ask for an exporter (core/tracing.py).
    configure_tracing()
    use_switch_interval(app.settings.thread_switch_interval_seconds)
    app.main()


if __name__ == "__main__":
    main()
