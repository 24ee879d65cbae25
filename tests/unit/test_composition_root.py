"""The composition root (export_service.build): importing a module registers nothing, and
two apps built in one process share no state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.deps import Deps
from core.models import ExportRecord, utcnow
from core.settings import Settings
from export_service import build
from tests.fakes import FakeBroker, InMemorySource, InMemoryStore, seed
from topics.broker import KafkaBroker
from web.context import web_app_of

ROOT = Path(__file__).resolve().parents[2]

_IMPORT_EVERYTHING = textwrap.dedent(
    """
    import gc
    import importlib
    import pkgutil

    import faust
    from prometheus_client import REGISTRY

    before = set(REGISTRY._names_to_collectors)
    names = []
    for package in ("core", "topics", "exporters", "agents", "web"):
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    importlib.import_module("export_service")
    apps = [o for o in gc.get_objects() if isinstance(o, faust.App)]
    assert apps == [], apps
    gained = set(REGISTRY._names_to_collectors) - before
    assert gained == set(), sorted(gained)
    from web import asyncapi, ccpa, console, exports, health, identity, metrics, openapi
    for blueprint in (asyncapi, ccpa, console, exports, health, identity, metrics, openapi):
        assert blueprint.blueprint.routes, blueprint  # declared, registered nowhere
    print(len(names))
    """
)


def test_importing_every_module_creates_no_app_and_registers_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50  # the walk found the service's modules


def _deps() -> Deps:
    return Deps(source=InMemorySource({}), store=InMemoryStore(), broker=FakeBroker())


async def test_two_apps_built_in_one_process_share_no_state() -> None:
    first, second = build(Settings(), _deps()), build(Settings(), _deps())

    seed(
        first.declared.status_store,
        ExportRecord(id="only-1", campaign_id="c1", export_type="codes"),
    )
    assert first.declared.status_store.get("only-1") is not None
    assert second.declared.status_store.get("only-1") is None
    assert first.declared.status_table is not second.declared.status_table

    first.app.service_metrics.record_export_request("codes", "accepted")
    assert first.app.service_metrics.registry is not second.app.service_metrics.registry
    assert b'outcome="accepted"' in first.app.service_metrics.exposition()
    assert b'outcome="accepted"' not in second.app.service_metrics.exposition()

    assert first.runner._running is not second.runner._running
    assert first.web is not second.web
    assert first.web.authenticators is not second.web.authenticators
    assert web_app_of(first.app) is not web_app_of(second.app)
    assert first.intake_agent is not second.intake_agent
    for built in (first, second):  # each app has its own agent, task, views and middleware
        assert list(built.app.agents) == ["agents.intake.intake"]
        assert len(built.app._app_tasks) == 1
        paths = {r.resource.canonical for r in web_app_of(built.app).router.routes() if r.resource}
        assert "/campaigns/{campaign_id}/exports" in paths
        assert len(web_app_of(built.app).middlewares) == 1


async def test_without_fakes_the_root_wires_kafka_and_the_wall_clock() -> None:
    built = build(Settings())
    assert isinstance(built.broker, KafkaBroker)
    assert built.clock is utcnow
    assert built.runner.broker is built.broker
    assert built.web.broker is built.broker
    # The clients are opened when the app starts, not when it is built.
    with pytest.raises(RuntimeError, match="not open yet"):
        _ = built.app.deps
