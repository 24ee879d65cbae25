"""Fixtures shared by the agent and view tests: the finalized app and fake deps."""

from __future__ import annotations

from typing import Any, cast

import pytest

from core.deps import Deps
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.hostile_data import dataset


@pytest.fixture(scope="session")
def finalized_app() -> object:
    """The service app with agents and views registered, no broker, memory tables."""
    import export_service  # registers the agents and views on the app
    from core.app import app

    app.finalize()
    assert str(app.conf.store).startswith("memory:")
    # Without this, putting events into an agent's test context waits forever.
    app.flow_control.resume()
    # No broker here: the (empty) in-memory table counts as recovered.
    cast(Any, app.tables).recovery.completed.set()
    return export_service.app


@pytest.fixture
def deps(finalized_app: object) -> Deps:
    from core.app import app

    fakes = Deps(source=InMemorySource(dataset()), store=InMemoryStore())
    app.deps = fakes
    return fakes


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
