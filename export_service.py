"""The composition root and the entry point.

`build` makes one app from settings and Deps: it declares the topics and the status table,
builds the runner, the intake and the views' context over them, and registers the agent,
the task, the drain, the canceller, the blueprints and the middleware. Nothing else
registers anything; importing a module creates no app. `main` builds the app from the
environment and hands it to Faust's CLI.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT

from agents.ccpa import CcpaDeletion
from agents.export_runner import ExportRunner
from agents.intake import Intake
from core.app import ExportApp
from core.deps import Broker, Clock, Deps
from core.interpreter import use_switch_interval
from core.models import utcnow
from core.redaction import install_log_redaction
from core.settings import Settings, get_settings
from core.tracing import configure_tracing
from exporters.registry import BY_NAME
from topics.broker import KafkaBroker
from topics.definitions import Declared, declare
from web import asyncapi, ccpa, console, exports, health, identity, metrics, openapi
from web.auth import Authenticators
from web.context import WebContext, attach
from web.middleware import install as install_middleware
from web.routing import TableOwner

__all__ = ["BLUEPRINTS", "Service", "build", "build_app", "main"]

BLUEPRINTS: tuple[faust.web.Blueprint, ...] = (
    asyncapi.blueprint,
    health.blueprint,
    ccpa.blueprint,
    console.blueprint,
    openapi.blueprint,
    exports.blueprint,
    identity.blueprint,
    metrics.blueprint,
)
"""Every blueprint the worker serves (the API, its documents, health, metrics, console)."""

INTAKE_AGENT = "agents.intake.intake"


@dataclass(frozen=True)
class Service:
    """One app and the parts the root built for it (tests reach them here)."""

    app: ExportApp
    declared: Declared
    broker: Broker
    clock: Clock
    runner: ExportRunner
    intake: Intake
    intake_agent: AgentT[Any]
    web: WebContext


def build(settings: Settings, deps: Deps | None = None, **options: Any) -> Service:
    """The app for `settings`. `deps` given (tests): its clients are used instead of opening
    MongoDB and S3 at start, and its broker and clock, when set, instead of the app's Kafka
    topics and the wall clock. `options` go to faust.App."""
    install_log_redaction()
    app = ExportApp(settings, deps=deps, **options)
    app.service_metrics.register_export_types(BY_NAME)
    declared = declare(app)
    broker: Broker = (deps.broker if deps else None) or KafkaBroker(app, declared)
    clock: Clock = (deps.clock if deps else None) or utcnow
    store = declared.status_store

    runner = ExportRunner(app, store, broker, clock, CcpaDeletion(app, store, broker, clock))
    app.task(runner.run)
    app.on_drain(runner.drain)
    app.use_canceller(runner.cancel_export)
    intake = Intake(app, store, broker, clock, runner.cancel_export)
    intake_agent = app.agent(declared.exports, name=INTAKE_AGENT)(intake.process)

    context = WebContext(
        app=app,
        status_store=store,
        status_table=declared.status_table,
        broker=broker,
        clock=clock,
        authenticators=Authenticators(),
        table_owner=TableOwner(app, declared.status_table),
    )
    attach(context)
    for blueprint in BLUEPRINTS:
        blueprint.register(app, url_prefix="")
    # Every answer, of these views or of any other path, gets the error shape and security
    # headers.
    install_middleware(app)
    return Service(
        app=app,
        declared=declared,
        broker=broker,
        clock=clock,
        runner=runner,
        intake=intake,
        intake_agent=intake_agent,
        web=context,
    )


def build_app(settings: Settings, deps: Deps | None = None, **options: Any) -> ExportApp:
    """The app alone (what Faust runs)."""
    return build(settings, deps, **options).app


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
    app = build_app(get_settings())
    sys.argv = _without_banner(_with_default_log_level(sys.argv, app.settings.log_level))
    # Off unless the standard OTEL_* variables ask for an exporter (core/tracing.py).
    configure_tracing()
    use_switch_interval(app.settings.thread_switch_interval_seconds)
    app.main()


if __name__ == "__main__":
    main()
