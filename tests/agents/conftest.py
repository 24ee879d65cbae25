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
