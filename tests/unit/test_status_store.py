"""Queue rules over the status table (SPEC §4): duplicates, order, interrupted exports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.models import ExportRecord, Status
from tests.fakes import seed
from topics.status import StatusStore

DAY = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


def rec(
    export_id: str, *, at: dt.datetime = DAY, status: Status = Status.PENDING, **kw: Any
) -> ExportRecord:
    fields: dict[str, Any] = {"campaign_id": "c1", "export_type": "entries", "params": {}}
    fields.update(kw)
    return ExportRecord(id=export_id, status=status, created_at=at, **fields)


def test_oldest_pending_runs_first() -> None:
    store = StatusStore({})
    seed(store, rec("b", at=DAY + dt.timedelta(seconds=2)))
    seed(store, rec("a", at=DAY + dt.timedelta(seconds=1), export_type="codes"))
    seed(store, rec("c", at=DAY, status=Status.FINISHED, export_type="x"))
    nxt = store.next_to_run()
    assert nxt is not None
    assert nxt.id == "a"


def test_an_interrupted_export_runs_before_pending_ones() -> None:
    store = StatusStore({})
    seed(store, rec("old", at=DAY))
    seed(
        store,
        rec(
            "crashed", at=DAY + dt.timedelta(hours=1), status=Status.TRIGGERED, export_type="codes"
        ),
    )
    nxt = store.next_to_run()
    assert nxt is not None
    assert nxt.id == "crashed"


def test_duplicates_match_campaign_type_params_and_utc_day_of_active_exports() -> None:
    store = StatusStore({})
    seed(store, rec("a", params={"x": 1, "y": 2}))
    same = rec("b", at=DAY + dt.timedelta(hours=11), params={"y": 2, "x": 1})
    assert store.accept(same) == (store.get("a"), False)
    assert store.get("b") == store.get("a")  # the duplicate's id points to the export
    next_day = rec("c", at=DAY + dt.timedelta(hours=12))
    assert store.accept(next_day)[1] is True
    other_params = rec("d", params={"x": 2})
    assert store.accept(other_params)[1] is True


def test_finished_exports_do_not_absorb_new_requests() -> None:
    store = StatusStore({})
    seed(store, rec("a", status=Status.FINISHED))
    assert store.accept(rec("b"))[1] is True


def test_campaign_listing_is_newest_first() -> None:
    store = StatusStore({})
    for i in range(3):
        seed(store, rec(f"r{i}", at=DAY + dt.timedelta(minutes=i), export_type=f"t{i}"))
    seed(store, rec("other", campaign_id="c2"))
    assert [r.id for r in store.for_campaign("c1")] == ["r2", "r1", "r0"]


def test_an_export_started_but_not_yet_triggered_counts_as_interrupted() -> None:
    store = StatusStore({})
    seed(store, rec("old", at=DAY))
    seed(store, rec("started", at=DAY + dt.timedelta(hours=1), attempts=1, export_type="codes"))
    nxt = store.next_to_run()
    assert nxt is not None
    assert nxt.id == "started"


def test_a_held_request_is_left_to_the_runner_until_released() -> None:
    store = StatusStore({})
    store.accept(rec("held", at=DAY), held=True)
    store.accept(rec("later", at=DAY + dt.timedelta(seconds=1), export_type="codes"))
    work = store.next_work()
    assert isinstance(work, ExportRecord)
    assert work.id == "later"  # the older request waits for its event's acknowledgement
    store.work_available.clear()
    store.release("held")
    assert store.work_available.is_set()
    work = store.next_work()
    assert isinstance(work, ExportRecord)
    assert work.id == "held"


def test_a_held_request_that_is_forgotten_is_never_run() -> None:
    store = StatusStore({})
    store.accept(rec("held", at=DAY), held=True)
    store.remove("held")
    store.release("held")
    assert store.next_work() is None
    store.accept(rec("held", at=DAY))  # the id may come again (a retried request)
    work = store.next_work()
    assert isinstance(work, ExportRecord)
    assert work.id == "held"
