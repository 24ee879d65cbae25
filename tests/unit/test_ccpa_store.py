"""CCPA requests in the status table: kept apart from exports, queued with them in order."""

from __future__ import annotations

import datetime as dt

from core.models import CcpaRequest, CcpaStatus, ExportRecord, Status
from tests.fakes import seed
from topics.status import StatusStore

DAY = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


def export(export_id: str, at: dt.datetime, **kw: object) -> ExportRecord:
    return ExportRecord(id=export_id, campaign_id="c1", export_type="entries", created_at=at, **kw)


def ccpa(request_id: str, at: dt.datetime, user_id: str = "u1", **kw: object) -> CcpaRequest:
    return CcpaRequest(request_id=request_id, user_id=user_id, created_at=at, **kw)


def test_ccpa_requests_are_not_export_records() -> None:
    store = StatusStore({})
    seed(store, export("e1", DAY))
    seed(store, ccpa("r1", DAY))
    assert [r.id for r in store.records()] == ["e1"]
    assert [r.request_id for r in store.ccpa_requests()] == ["r1"]
    assert store.get("r1") is None
    got = store.get_ccpa("r1")
    assert got is not None
    assert got.deleted_by == "ccpa:r1"


def test_exports_and_deletions_run_in_one_queue_oldest_first() -> None:
    store = StatusStore({})
    seed(store, export("late", DAY + dt.timedelta(seconds=2)))
    seed(store, ccpa("r1", DAY + dt.timedelta(seconds=1)))
    seed(store, export("early", DAY))
    order = []
    while (work := store.next_work()) is not None:
        if isinstance(work, CcpaRequest):
            order.append(work.request_id)
            seed(store, work.evolve(status=CcpaStatus.COMPLETED))
        else:
            order.append(work.id)
            seed(store, work.evolve(status=Status.FINISHED))
    assert order == ["early", "r1", "late"]


def test_an_interrupted_deletion_runs_before_older_pending_exports() -> None:
    store = StatusStore({})
    seed(store, export("old", DAY))
    seed(store, ccpa("crashed", DAY + dt.timedelta(hours=1), status=CcpaStatus.RUNNING))
    work = store.next_work()
    assert isinstance(work, CcpaRequest)
    assert work.request_id == "crashed"


def test_an_interrupted_export_runs_before_a_pending_deletion() -> None:
    store = StatusStore({})
    seed(store, ccpa("r1", DAY))
    seed(store, export("crashed", DAY + dt.timedelta(hours=1), status=Status.TRIGGERED))
    work = store.next_work()
    assert isinstance(work, ExportRecord)
    assert work.id == "crashed"


def test_a_replayed_request_changes_nothing_unless_it_failed() -> None:
    store = StatusStore({})
    first, queued = store.accept_ccpa(ccpa("r1", DAY))
    assert queued
    done = first.evolve(status=CcpaStatus.COMPLETED, announced=True)
    seed(store, done)
    again, queued = store.accept_ccpa(ccpa("r1", DAY + dt.timedelta(days=1), user_id="other"))
    assert not queued
    assert again == done
    seed(store, done.evolve(status=CcpaStatus.FAILED, attempts=3))
    retry, queued = store.accept_ccpa(ccpa("r1", DAY))
    assert queued
    assert (retry.status, retry.attempts) == (CcpaStatus.PENDING, 0)


def test_finished_unannounced_deletions_are_announced_again() -> None:
    store = StatusStore({})
    seed(store, ccpa("done", DAY, status=CcpaStatus.COMPLETED))
    seed(store, ccpa("sent", DAY, status=CcpaStatus.COMPLETED, announced=True))
    seed(store, ccpa("running", DAY, status=CcpaStatus.RUNNING))
    assert [r.request_id for r in store.unannounced_ccpa()] == ["done"]
