"""A recovery's changelog replay does not undo this worker's writes it did not contain.

Faust replays the changelog over the table it holds up to the highwater it read; writes
still on their way then (or landed past it) are not in the replay. Here the replay is
played by hand: the older value is put in the store as the replay would, and Faust's
recovery records which changelog partition it replayed and how far.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import pytest
from faust.types import TP

from core.app import ExportApp
from core.models import ExportRecord, Status, utcnow
from export_service import Service
from topics.definitions import Declared
from topics.status import StatusStore


@pytest.fixture
def declared(service: Service) -> Declared:
    return service.declared


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, app: ExportApp, declared: Declared) -> Any:
    """Faust's recovery as it is once the status changelog was replayed up to offset 41."""
    recovery = cast(Any, app.tables).recovery
    changelog = TP(declared.status_table.changelog_topic_name, 0)
    monkeypatch.setattr(recovery, "active_tps", {changelog})
    monkeypatch.setattr(recovery, "active_offsets", {changelog: 41})
    return declared.status_table.data


class _Stored:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def _landed_at(offset: int) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(_Stored(offset))
    return future


def _record(status: Status) -> ExportRecord:
    triggered = utcnow() if status != Status.PENDING else None
    return ExportRecord(
        id="replayed-1",
        campaign_id="c1",
        export_type="entries",
        status=status,
        triggered_at=triggered,
    )


async def test_a_write_on_its_way_survives_a_replay_of_the_older_value(
    replay: Any, status_store: StatusStore, declared: Declared
) -> None:
    status_store.put(_record(Status.PENDING))
    older = replay[b"replayed-1"]
    status_store.put(_record(Status.TRIGGERED))

    replay[b"replayed-1"] = older  # the replay ends before the TRIGGERED write
    await declared.reindex_after_recovery()

    assert status_store.status_of("replayed-1") == Status.TRIGGERED
    assert orjson.loads(declared.status_table[b"replayed-1"])["status"] == "TRIGGERED"


async def test_a_write_the_replay_contained_leaves_the_replayed_value(
    replay: Any,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    app: ExportApp,
    declared: Declared,
) -> None:
    status_store.put(_record(Status.PENDING))
    status_store.put(_record(Status.TRIGGERED))
    monkeypatch.setattr(app, "rebalancing", True)
    # The write landed at offset 40, during the rebalance; the replay went to 41, where
    # another worker had cancelled the export.
    declared.status_table._landed(b"replayed-1", 2, _landed_at(40))
    cancelled = _record(Status.TRIGGERED).evolve(status=Status.CANCELLED, finished_at=utcnow())
    replay[b"replayed-1"] = orjson.dumps(cancelled.to_store())
    await declared.reindex_after_recovery()

    assert status_store.status_of("replayed-1") == Status.CANCELLED
    assert len(declared.status_table.unreplayed) == 0  # settled: no replay to come can miss it


async def test_a_write_landed_past_the_replayed_offset_is_put_back(
    replay: Any,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    app: ExportApp,
    declared: Declared,
) -> None:
    status_store.put(_record(Status.PENDING))
    older = replay[b"replayed-1"]
    status_store.put(_record(Status.TRIGGERED))
    monkeypatch.setattr(app, "rebalancing", True)
    declared.status_table._landed(b"replayed-1", 2, _landed_at(42))

    replay[b"replayed-1"] = older
    await declared.reindex_after_recovery()

    assert status_store.status_of("replayed-1") == Status.TRIGGERED


async def test_a_new_export_the_replay_did_not_contain_is_not_lost(
    replay: Any, status_store: StatusStore, declared: Declared
) -> None:
    status_store.put(_record(Status.PENDING))
    del replay[b"replayed-1"]  # the replay knew nothing of it
    await declared.reindex_after_recovery()

    work = status_store.next_work()
    assert isinstance(work, ExportRecord)
    assert work.id == "replayed-1"
