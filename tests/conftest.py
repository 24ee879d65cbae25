"""Fixtures shared by the agent and view tests: a fresh app per test, built by the
composition root over fakes (no broker, memory tables)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from core.app import ExportApp
from core.deps import Clock, Deps
from core.settings import Settings
from export_service import Service, build
from tests.fakes import FakeBroker, InMemorySource, InMemoryStore
from tests.unit.hostile_data import dataset
from topics.status import StatusStore


@pytest.fixture
def settings() -> Settings:
    """The settings the test's app is built with (the environment's; the view tests add a
    JWT secret)."""
    return Settings()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def clock() -> Clock | None:
    """The clock the root is given (None: the wall clock); a test may parametrize it."""
    return None


@pytest.fixture
def deps(broker: FakeBroker, clock: Clock | None) -> Deps:
    return Deps(source=InMemorySource(dataset()), store=InMemoryStore(), broker=broker, clock=clock)


@pytest.fixture
async def service(settings: Settings, deps: Deps) -> AsyncIterator[Service]:
    """The service's app with its agent, task and views registered, built for this test
    (in its event loop: built outside one, Faust would make a loop of its own)."""
    built = build(settings, deps)
    app = built.app
    app.finalize()
    assert str(app.conf.store).startswith("memory:")
    # Without this, putting events into an agent's test context waits forever.
    app.flow_control.resume()
    # No broker here: the (empty) in-memory table counts as recovered.
    cast(Any, app.tables).recovery.completed.set()
    yield built
    _close_consumer_loop(app)


def _close_consumer_loop(app: ExportApp) -> None:
    """Faust's consumer, made when a stream first reads from it, owns an event loop for a
    thread that never starts without a broker; nothing else closes that loop."""
    thread = getattr(getattr(app, "_consumer", None), "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
        loop.close()


@pytest.fixture
def app(service: Service) -> ExportApp:
    return service.app


@pytest.fixture
def status_store(service: Service) -> StatusStore:
    return service.declared.status_store


@pytest.fixture
def spans() -> Any:
    """The service's spans, kept in memory for the test (tracing is off otherwise)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()
