"""The status store's indexes against a brute-force reading of its table, over random
histories; retention; and no question that iterates the table."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import orjson
import pytest

from core.lifecycle import EXPORT_TRANSITIONS
from core.models import CcpaRequest, CcpaStatus, ExportRecord, Status
from topics.status import StatusStore

DAY = dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)


# The reference: decode the whole table, as the store did before it had indexes.


def decoded(table: dict[bytes, bytes]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    exports, deletions = [], []
    for key, value in table.items():
        data = orjson.loads(value)
        if key.startswith(b"ccpa/"):
            deletions.append(data)
        elif not key.startswith(b"retired/") and "aliasOf" not in data:
            exports.append(data)
    return exports, deletions


def created(data: dict[str, Any]) -> tuple[dt.datetime, str]:
    return (dt.datetime.fromisoformat(data["createdAt"]), data.get("id") or data["requestId"])


def ref_next_work(table: dict[bytes, bytes]) -> str | None:
    exports, deletions = decoded(table)
    interrupted = [
        e
        for e in exports
        if e["status"] == "TRIGGERED" or (e["status"] == "PENDING" and e["attempts"] > 0)
    ] + [
        d
        for d in deletions
        if d["status"] == "RUNNING" or (d["status"] == "PENDING" and d["attempts"] > 0)
    ]
    queued = [e for e in exports if e["status"] == "PENDING" and e["attempts"] == 0] + [
        d for d in deletions if d["status"] == "PENDING" and d["attempts"] == 0
    ]
    candidates = interrupted or queued
    return created(min(candidates, key=created))[1] if candidates else None


def ref_page(
    table: dict[bytes, bytes], campaign: str, status: str | None, limit: int
) -> tuple[list[str], bool]:
    exports, _ = decoded(table)
    found = sorted(
        (
            e
            for e in exports
            if e["campaignId"] == campaign and (status is None or e["status"] == status)
        ),
        key=created,
        reverse=True,
    )
    return [e["id"] for e in found[:limit]], len(found) > limit


def ref_unsettled(table: dict[bytes, bytes]) -> list[str]:
    exports, _ = decoded(table)
    ended = {"FINISHED", "FAILED", "EXPIRED", "CANCELLED"}
    return sorted(
        e["id"]
        for e in exports
        if e["status"] in ended and (not e["announced"] or e.get("cleanupPending", False))
    )


def ref_counts(table: dict[bytes, bytes]) -> dict[Status, int]:
    exports, _ = decoded(table)
    return {s: sum(1 for e in exports if e["status"] == s.value) for s in Status}


def ref_duplicate(table: dict[bytes, bytes], candidate: ExportRecord) -> str | None:
    exports, _ = decoded(table)
    for e in sorted(exports, key=created):
        record = ExportRecord.from_store(e)
        if record.is_active and record.duplicate_key() == candidate.duplicate_key():
            return record.id
    return None


def agree(store: StatusStore, table: dict[bytes, bytes], rng: random.Random) -> None:
    work = store.next_work()
    work_id = (
        None if work is None else work.id if isinstance(work, ExportRecord) else work.request_id
    )
    assert work_id == ref_next_work(table)
    assert store.pending_count() == ref_counts(table)[Status.PENDING]
    assert store.status_counts() == ref_counts(table)
    assert [r.id for r in store.unsettled()] == ref_unsettled(table)
    for campaign in ("c0", "c1", "c2"):
        status = rng.choice([None, *Status])
        limit = rng.choice([1, 2, 5, 100])
        page = store.page(campaign, status=status, limit=limit)
        assert ([r.id for r in page.items], page.more) == ref_page(table, campaign, status, limit)
    probe = new_request(rng, "probe")
    found = store.find_duplicate(probe)
    assert (found.id if found else None) == ref_duplicate(table, probe)


def new_request(rng: random.Random, export_id: str) -> ExportRecord:
    return ExportRecord(
        id=export_id,
        campaign_id=f"c{rng.randrange(3)}",
        export_type=rng.choice(["entries", "codes"]),
        params=rng.choice([{}, {"a": 1}]),
        created_at=DAY + dt.timedelta(hours=rng.randrange(30), seconds=rng.randrange(3)),
    )


def random_write(
    store: StatusStore, table: dict[bytes, bytes], rng: random.Random, step: int
) -> None:
    exports = [store.get(k.decode()) for k in table if b"/" not in k]
    live = [r for r in exports if r is not None]
    op = rng.random()
    if op < 0.35 or not live:
        store.accept(new_request(rng, f"e{step}"))
    elif op < 0.75:
        record = rng.choice(live)
        moves = sorted(EXPORT_TRANSITIONS[record.status])
        if moves:
            new = rng.choice(moves)
            changes: dict[str, Any] = {"status": new, "attempts": record.attempts + 1}
            if new in {Status.FINISHED, Status.FAILED, Status.CANCELLED, Status.EXPIRED}:
                changes["finished_at"] = DAY + dt.timedelta(hours=rng.randrange(40))
            if new in {Status.FAILED, Status.CANCELLED, Status.EXPIRED} and rng.random() < 0.5:
                changes["cleanup_pending"] = True  # its clean-up failed
            store.put(record.evolve(**changes))
    elif op < 0.85:
        record = rng.choice(live)
        if record.is_terminal:  # announced, and its uploads cleaned up or not
            cleaned = rng.random() < 0.5
            pending = record.cleanup_pending and not cleaned
            store.put(record.evolve(announced=True, cleanup_pending=pending))
    elif op < 0.95:
        request = CcpaRequest(
            request_id=f"r{step}", user_id="u", created_at=DAY + dt.timedelta(hours=step % 7)
        )
        store.accept_ccpa(request)
        if rng.random() < 0.5:
            store.put_ccpa(request.evolve(status=CcpaStatus.RUNNING, attempts=1))
    else:
        store.retire(ended_before=DAY + dt.timedelta(hours=rng.randrange(40)), now=DAY)


@pytest.mark.parametrize("seed", range(8))
def test_the_indexes_answer_as_a_scan_of_the_table_would(seed: int) -> None:
    rng = random.Random(seed)
    table: dict[bytes, bytes] = {}
    store = StatusStore(table)
    for step in range(300):
        random_write(store, table, rng, step)
        agree(store, table, rng)
        if step % 50 == 0:
            again = StatusStore(dict(table))  # as after a recovery: indexes from the table
            agree(again, dict(table), random.Random(step))


def finished(export_id: str, *, ended: dt.datetime, announced: bool = True) -> ExportRecord:
    return ExportRecord(
        id=export_id,
        campaign_id="c1",
        export_type="codes",
        status=Status.FINISHED,
        created_at=ended - dt.timedelta(minutes=5),
        finished_at=ended,
        announced=announced,
    )


def store_with(*records: ExportRecord) -> tuple[StatusStore, dict[bytes, bytes]]:
    table = {r.id.encode(): orjson.dumps(r.to_store()) for r in records}
    return StatusStore(table), table


def test_retention_removes_announced_records_that_ended_before_the_cutoff() -> None:
    now = DAY + dt.timedelta(days=100)
    store, table = store_with(
        finished("old", ended=DAY),
        finished("old-unannounced", ended=DAY, announced=False),
        finished("recent", ended=now - dt.timedelta(days=1)),
    )
    store.put_alias("dup-of-old", "old")

    removed = store.retire(ended_before=now - dt.timedelta(days=90), now=now)

    assert removed == 1
    assert b"old" not in table
    assert b"dup-of-old" not in table
    assert store.get("old") is None
    assert store.get("old-unannounced") is not None  # its event has not been published
    assert store.get("recent") is not None
    for export_id in ("old", "dup-of-old"):
        marker = store.retired(export_id)
        assert marker is not None
        assert (marker.campaign_id, marker.retired_at) == ("c1", now)
    assert [r.id for r in store.for_campaign("c1")] == ["recent", "old-unannounced"]

    # The markers themselves go one retention period later; a rebuilt store knows them.
    assert StatusStore(dict(table)).retired("old") is not None
    later = now + dt.timedelta(days=91)
    store.retire(ended_before=later - dt.timedelta(days=90), now=later)
    assert store.retired("old") is None
    assert store.retired("dup-of-old") is None
    assert store.retired("recent") is not None  # ended 91 days before `later`: retired now


def test_retention_goes_in_bounded_steps() -> None:
    records = [finished(f"e{i}", ended=DAY + dt.timedelta(seconds=i)) for i in range(25)]
    store, _ = store_with(*records)
    cutoff = DAY + dt.timedelta(days=1)
    steps = []
    while removed := store.retire(ended_before=cutoff, now=cutoff, limit=10):
        steps.append(removed)
    assert steps[:3] == [10, 10, 5]
    assert len(store) == 0


class NoScanTable(dict[bytes, bytes]):
    """A table that refuses to be iterated once `sealed`."""

    sealed = False

    def _refuse(self) -> None:
        if self.sealed:
            raise AssertionError("the table was iterated")

    def items(self) -> Any:
        self._refuse()
        return super().items()

    def keys(self) -> Any:
        self._refuse()
        return super().keys()

    def values(self) -> Any:
        self._refuse()
        return super().values()

    def __iter__(self) -> Any:
        self._refuse()
        return super().__iter__()


def test_no_question_iterates_the_table() -> None:
    table = NoScanTable()
    for i in range(2000):
        record = finished(f"e{i}", ended=DAY + dt.timedelta(seconds=i))
        table[record.id.encode()] = orjson.dumps(record.to_store())
    store = StatusStore(table)
    table.sealed = True

    store.accept(new_request(random.Random(1), "new"))
    assert store.next_work() is not None
    assert store.pending_count() == 1
    assert store.unsettled() == []
    assert len(store.page("c1", limit=10).items) == 10
    assert store.find_duplicate(new_request(random.Random(1), "again")) is not None
    assert store.status_counts()[Status.FINISHED] == 2000
    assert (
        store.retire(ended_before=DAY + dt.timedelta(seconds=5), now=DAY + dt.timedelta(days=1))
        == 5
    )
