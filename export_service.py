"""Entry point: the app with its topics, agents and views, handed to Faust's CLI."""

from __future__ import annotations

import agents.export_runner
import agents.intake
import web.exports
import web.health
from core.app import app

__all__ = ["agents", "app", "main", "web"]


def main() -> None:
    """`export-service worker` / `python -m export_service worker`."""
    app.main()


if __name__ == "__main__":
    main()
