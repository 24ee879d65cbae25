"""The intake agent records each request as PENDING at once, idempotently."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from core.app import ExportApp
from core.deps import Deps
from core.models import Status, new_export_id
from core.settings import Settings
from tests.fakes import FakeBroker
from topics.status import StatusStore


def request(export_id: str, **overrides: object) -> bytes:
    body = {
        "type": "export.requested",
        "exportId": export_id,
        "campaignId": "c1",
        "exportType": "entries",
        "params": {},
        "requestedBy": "upstream-system",
        **overrides,
    }
    return orjson.dumps(body)


async def test_a_request_is_recorded_pending_with_its_source(
    deps: Deps, status_store: StatusStore, intake: Any
) -> None:
    export_id = new_export_id()
    async with intake.test_context() as agent:
        await agent.put(request(export_id, campaignId=f"c-{export_id}"))
    record = status_store.get(export_id)
    assert record is not None
    assert record.status == Status.PENDING
    assert (record.source, record.requested_by) == ("kafka", "upstream-system")


async def test_redelivery_of_the_same_event_keeps_one_record(
    deps: Deps, status_store: StatusStore, intake: Any
) -> None:
    export_id = new_export_id()
    campaign = f"c-{export_id}"
    async with intake.test_context() as agent:
        await agent.put(request(export_id, campaignId=campaign))
        first = status_store.get(export_id)
        await agent.put(request(export_id, campaignId=campaign))
    assert status_store.get(export_id) == first
    assert len(status_store.for_campaign(campaign)) == 1


async def test_a_duplicate_request_points_to_the_active_export(
    deps: Deps, status_store: StatusStore, intake: Any
) -> None:
    first_id, second_id = new_export_id(), new_export_id()
    campaign = f"c-{first_id}"
    async with intake.test_context() as agent:
        await agent.put(request(first_id, campaignId=campaign))
        await agent.put(request(second_id, campaignId=campaign))
        await agent.put(request(new_export_id(), campaignId=campaign, exportType="codes"))
    duplicate = status_store.get(second_id)
    assert duplicate is not None
    assert duplicate.id == first_id
    assert {r.export_type for r in status_store.for_campaign(campaign)} == {"entries", "codes"}


def _requests(app: ExportApp, outcome: str) -> float:
    value = app.service_metrics.registry.get_sample_value(
        "export_requests_total", {"export_type": "entries", "outcome": outcome}
    )
    return value or 0.0


async def test_kafka_requests_are_counted_once_each(
    deps: Deps, intake: Any, app: ExportApp
) -> None:
    first_id = new_export_id()
    campaign = f"c-{first_id}"
    before = {o: _requests(app, o) for o in ("accepted", "duplicate", "rejected")}
    async with intake.test_context() as agent:
        await agent.put(request(first_id, campaignId=campaign))
        await agent.put(request(first_id, campaignId=campaign))  # redelivered: not counted
        await agent.put(request(new_export_id(), campaignId=campaign))  # a duplicate
    after = {o: _requests(app, o) for o in ("accepted", "duplicate", "rejected")}
    assert after["accepted"] - before["accepted"] == 1
    assert after["duplicate"] - before["duplicate"] == 1
    assert after["rejected"] == before["rejected"]


async def test_a_producers_own_event_id_of_any_type_is_not_a_reason_to_refuse(
    deps: Deps, status_store: StatusStore, intake: Any
) -> None:
    """eventId and requestedAt were ignored before they were documented; they still are."""
    export_id = new_export_id()
    async with intake.test_context() as agent:
        await agent.put(request(export_id, campaignId=f"c-{export_id}", eventId=42))
    assert status_store.get(export_id) is not None


FIXED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("clock", [lambda: FIXED])
async def test_the_clock_given_to_the_root_stamps_records_and_dead_letters(
    status_store: StatusStore, intake: Any, broker: FakeBroker, settings: Settings
) -> None:
    export_id = new_export_id()
    async with intake.test_context() as agent:
        await agent.put(request(export_id, campaignId=f"c-{export_id}"))
        await agent.put(b"{not json")
    record = status_store.get(export_id)
    assert record is not None
    assert record.created_at == FIXED
    (letter,) = broker.on(settings.topic_dlq)
    assert orjson.loads(letter["value"])["rejectedAt"].startswith("2026-01-02T03:04:05")
