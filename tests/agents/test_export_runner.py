"""The runner's preparation and settling: leftovers of a crashed try, a failed clean-up."""

from __future__ import annotations

import pytest

from agents.export_runner import ExportRunner
from core.app import ExportApp
from core.deps import Deps
from core.models import ErrorInfo, ExportRecord, PlannedUploads, Status
from exporters.registry import get_spec
from exporters.runner import load_context, planned_keys
from tests.agents.conftest import SentEvents
from tests.fakes import InMemorySource, InMemoryStore, seed
from topics.status import StatusStore


async def test_a_rerun_aborts_the_upload_a_crashed_attempt_left_behind(
    deps: Deps, runner: ExportRunner
) -> None:
    assert isinstance(deps.store, InMemoryStore)
    assert isinstance(deps.source, InMemorySource)
    record = ExportRecord(id="rerun-1", campaign_id="c1", export_type="entries", attempts=1)
    ctx = await load_context(
        get_spec("entries"), deps.source, export_id=record.id, campaign_id="c1", params={}
    )
    (key,) = planned_keys(get_spec("entries"), ctx)
    leftover = await deps.store.start_upload("exports", key, content_type="text/csv", acl=None)
    other = await deps.store.start_upload("exports", key + ".other", content_type="x", acl=None)

    prepared = await runner._prepare(record)

    assert prepared.total == 4
    assert leftover.aborted
    assert not other.aborted


async def test_a_failed_clean_up_is_tried_again_until_it_succeeds(
    deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    runner: ExportRunner,
    app: ExportApp,
) -> None:
    assert isinstance(deps.store, InMemoryStore)
    store = deps.store
    key = "entries/c1/failed-1/x.csv"
    leftover = await store.start_upload("exports", key, content_type="text/csv", acl=None)
    planned = PlannedUploads(bucket="exports", keys=(key,))
    record = ExportRecord(
        id="failed-1",
        campaign_id="c1",
        export_type="entries",
        status=Status.FAILED,
        planned=planned,
        error=ErrorInfo(code="UPLOAD_FAILED", message="S3 away"),
        announced=True,  # its result event is out (no broker here): the clean-up is left
    )
    seed(status_store, record)

    store.fail_on_abort = True
    settled = await runner.settle(record)
    assert settled.cleanup_pending
    assert [r.id for r in status_store.unsettled()] == ["failed-1"]
    assert not leftover.aborted

    store.fail_on_abort = False
    await runner._settle_pending_results()  # not due yet: nothing is tried
    assert not leftover.aborted
    monkeypatch.setattr(
        app, "settings", app.settings.model_copy(update={"cleanup_retry_seconds": 1e-9})
    )
    await runner._settle_pending_results()
    assert leftover.aborted
    stored = status_store.get("failed-1")
    assert stored is not None
    assert not stored.cleanup_pending
    assert stored.announced
    assert status_store.unsettled() == []


async def test_while_s3_is_away_one_pass_tries_one_clean_up(
    deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    runner: ExportRunner,
    app: ExportApp,
) -> None:
    assert isinstance(deps.store, InMemoryStore)
    store = deps.store
    pending = [
        ExportRecord(
            id=f"away-{n}",
            campaign_id="c1",
            export_type="entries",
            status=Status.FAILED,
            planned=PlannedUploads(bucket="exports", keys=(f"entries/c1/away-{n}/x.csv",)),
            cleanup_pending=True,
            announced=True,
        )
        for n in range(3)
    ]
    seed(status_store, *pending)
    monkeypatch.setattr(
        app, "settings", app.settings.model_copy(update={"cleanup_retry_seconds": 1e-9})
    )
    store.fail_on_abort = True
    calls = store.abort_calls
    await runner._settle_pending_results()
    assert store.abort_calls == calls + 1  # the first failure ends the pass's clean-ups
    store.fail_on_abort = False
    await runner._settle_pending_results()
    assert [r.id for r in status_store.unsettled()] == []


@pytest.mark.parametrize("export_type", ["entries", "fanlist"])
async def test_a_running_export_shows_its_rate_and_time_left(
    deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
    sent_events: SentEvents,
    export_type: str,
    status_store: StatusStore,
    runner: ExportRunner,
    app: ExportApp,
) -> None:
    """rowsPerSecond and etaSeconds are written with each progress report while TRIGGERED;
    the ended record keeps the run's average rate and no time left."""
    one_at_a_time = {
        "mongo_batch_size": 1,
        "export_columnar_batch_size": 1,
        "export_columnar_chunk_bytes": 0,
        "progress_interval_rows": 1,
    }
    settings = app.settings.model_copy(update=one_at_a_time)
    monkeypatch.setattr(app, "settings", settings)
    written: list[ExportRecord] = []
    put = status_store.put

    def recording(record: ExportRecord) -> None:
        written.append(record)
        put(record)

    monkeypatch.setattr(status_store, "put", recording)
    # fanlist folds a user's entries into one row: the time left still counts entries.
    assert isinstance(deps.source, InMemorySource)
    deps.source.batch_delay = 0.02  # a rate the estimate can round to more than 0.0 s left
    deps.source.collections["entries"] += [
        {"_id": f"e-more-{n}", "campaignId": "c1", "userId": "u1", "marketId": "m1"}
        for n in range(3)
    ]
    record = ExportRecord(id=f"rate-{export_type}", campaign_id="c1", export_type=export_type)
    seed(status_store, record)

    final = await runner.run_one(record)

    assert final.status == Status.FINISHED
    progress = [r for r in written if r.status == Status.TRIGGERED and r.row_count > 0]
    assert len(progress) >= 2
    assert all(r.rows_per_second is not None and r.rows_per_second > 0 for r in progress)
    etas = [r.eta_seconds for r in progress]
    assert all(eta is not None and eta >= 0 for eta in etas)
    if export_type == "entries":  # (the fold reads ahead: fanlist may be read at once)
        assert etas[0] is not None
        assert etas[0] > 0
    assert etas[-1] == 0.0  # every source document read, the folded ones included
    assert final.eta_seconds is None
    assert final.rows_per_second is not None
    assert final.rows_per_second > 0
    public = final.to_public()
    assert {"rowsPerSecond", "etaSeconds"} <= set(public)
    assert [m["key"] for m in sent_events.messages] == [record.id.encode()]
