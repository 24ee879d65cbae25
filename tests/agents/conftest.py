"""Agent tests without a broker: Faust's test_context, fake deps (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agents.ccpa import CcpaDeletion
from agents.export_runner import ExportRunner
from core.settings import Settings
from export_service import Service
from tests.fakes import FakeBroker


@dataclass
class SentEvents:
    """What the runner published on export-events (no broker in agent tests)."""

    messages: list[dict[str, Any]]


@pytest.fixture
def sent_events(broker: FakeBroker, settings: Settings) -> SentEvents:
    return SentEvents(broker.on(settings.topic_export_events))


@pytest.fixture
def runner(service: Service) -> ExportRunner:
    return service.runner


@pytest.fixture
def ccpa(service: Service) -> CcpaDeletion:
    return service.runner.ccpa


@pytest.fixture
def intake(service: Service) -> Any:
    """The intake agent of the test's app (use `intake.test_context()`)."""
    return service.intake_agent
