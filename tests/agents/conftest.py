"""Agent tests without a broker: Faust's test_context, fake deps (tests/conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class SentEvents:
    """What the runner published on export-events (no broker in agent tests)."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **message: Any) -> asyncio.Future[None]:
        self.messages.append(message)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
def sent_events(monkeypatch: pytest.MonkeyPatch) -> SentEvents:
    from topics.definitions import export_events_topic

    sent = SentEvents()
    monkeypatch.setattr(export_events_topic, "send", sent.send)
    return sent


@pytest.fixture(autouse=True)
def empty_status_table(finalized_app: object) -> None:
    """Each agent test starts from an empty status table: records other tests left (views
    seed terminal records that were never announced) must not become this test's work."""
    from topics.definitions import status_store

    status_store._table.clear()
    status_store.rebuild()
