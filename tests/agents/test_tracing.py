"""One trace per export, from the request to the result event (in-memory span exporter)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agents.export_runner import ExportRunner
from core import tracing
from core.app import ExportApp
from core.deps import Deps
from core.models import CcpaRequest, ExportRecord, Status, StoredObject, new_export_id
from tests.agents.conftest import SentEvents
from tests.fakes import seed
from topics.status import StatusStore

UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
UPSTREAM = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"
# What attributes may hold: ids, types, statuses, counts and sizes (no campaign data).
ALLOWED_ATTRIBUTES = {
    "export.id", "export.type", "campaign.id", "export.try", "export.total_count",
    "export.status", "export.rows", "export.skipped", "export.objects", "export.bytes",
    "export.documents_read", "error.code", "s3.part_number", "s3.part_bytes", "s3.parts",
    "s3.object_bytes", "s3.keys", "ccpa.request_id", "ccpa.try", "ccpa.status",
    "ccpa.deleted_objects", "messaging.kafka.offset", "messaging.message.id",
}  # fmt: skip


def _by_name(finished: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in finished:
        found.setdefault(span.name, []).append(span)
    return found


def _check_attributes(finished: Any) -> None:
    for span in finished:
        assert set(span.attributes or {}) <= ALLOWED_ATTRIBUTES, span.name
        for event in span.events:
            assert set(event.attributes or {}) <= ALLOWED_ATTRIBUTES, (span.name, event.name)
        for value in (span.attributes or {}).values():
            assert "@" not in str(value)


async def test_an_export_is_one_trace_from_the_request_to_its_result_event(
    deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
    spans: Any,
    sent_events: SentEvents,
    status_store: StatusStore,
    runner: ExportRunner,
    app: ExportApp,
) -> None:
    one_at_a_time = {"mongo_batch_size": 1, "export_columnar_batch_size": 1,
                     "export_columnar_chunk_bytes": 0, "progress_interval_rows": 1}  # fmt: skip
    monkeypatch.setattr(app, "settings", app.settings.model_copy(update=one_at_a_time))
    record = ExportRecord(
        id="traced-1",
        campaign_id="c1",
        export_type="entries",
        trace_id=UPSTREAM_TRACE,
        trace_parent=UPSTREAM,
    )
    seed(status_store, record)

    final = await runner.run_one(record)

    assert final.status == Status.FINISHED
    assert final.to_public()["traceId"] == UPSTREAM_TRACE
    assert "traceParent" not in final.to_public()
    finished = spans.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in finished} == {UPSTREAM_TRACE}
    named = _by_name(finished)
    (wait,) = named["export.queue_wait"]
    (run,) = named["export.run"]
    for top in (wait, run):
        assert format(top.parent.span_id, "016x") == UPSTREAM_SPAN
    assert wait.start_time <= wait.end_time <= run.start_time
    children = ("export.prepare", "export.count", "s3.complete_upload", "send export-events")
    for name in children:
        (child,) = named[name]
        assert child.parent.span_id == run.context.span_id, name
    assert all(p.parent.span_id == run.context.span_id for p in named["s3.upload_part"])
    assert named["export.count"][0].attributes["export.total_count"] == 4
    progress = [e for e in run.events if e.name == "progress"]
    assert len(progress) >= 2
    assert progress[-1].attributes["export.rows"] == final.row_count
    assert run.attributes["export.status"] == "FINISHED"
    assert run.attributes["export.rows"] == final.row_count
    _check_attributes(finished)

    # The result event carries the trace on to downstream consumers.
    (message,) = sent_events.messages
    headers = dict(message["headers"])
    sent_from = named["send export-events"][0].context
    assert headers["traceparent"] == (
        f"00-{UPSTREAM_TRACE}-{format(sent_from.span_id, '016x')}-01".encode()
    )
    assert orjson.loads(message["value"])["traceId"] == UPSTREAM_TRACE


async def test_a_kafka_request_continues_the_producers_trace(
    deps: Deps, spans: Any, status_store: StatusStore, intake: Any
) -> None:
    export_id = new_export_id()
    event = orjson.dumps(
        # A campaign of its own: the PENDING record must not be another test's duplicate.
        {"type": "export.requested", "exportId": export_id, "campaignId": f"c-{export_id}",
         "exportType": "entries"}
    )  # fmt: skip
    async with intake.test_context() as agent:
        await agent.put(event, headers=[("traceparent", UPSTREAM.encode())])
    record = status_store.get(export_id)
    assert record is not None
    assert record.trace_id == UPSTREAM_TRACE
    (consumed,) = [s for s in spans.get_finished_spans() if s.name == "process exports"]
    assert format(consumed.parent.span_id, "016x") == UPSTREAM_SPAN
    # The run continues from the intake's span.
    assert record.trace_parent == (
        f"00-{UPSTREAM_TRACE}-{format(consumed.context.span_id, '016x')}-01"
    )


async def test_a_ccpa_deletion_is_traced_the_same_way(
    deps: Deps,
    spans: Any,
    sent_events: SentEvents,
    status_store: StatusStore,
    runner: ExportRunner,
) -> None:
    finished = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="entries",
        status=Status.FINISHED,
        bucket="exports",
        objects=(StoredObject(key="entries/c1/x.csv", size=1, sha256="0" * 64),),
        announced=True,
    )
    request = CcpaRequest(
        request_id=new_export_id(), user_id="u1", trace_id=UPSTREAM_TRACE, trace_parent=UPSTREAM
    )
    seed(status_store, finished, request)

    done = await runner.ccpa.run(request)

    assert done.summary is not None
    assert done.summary.deleted_object_count >= 1
    named = _by_name(spans.get_finished_spans())
    (deletion,) = named["ccpa.deletion"]
    assert format(deletion.parent.span_id, "016x") == UPSTREAM_SPAN
    assert deletion.attributes["ccpa.status"] == "COMPLETED"
    assert all(d.parent.span_id == deletion.context.span_id for d in named["s3.delete_objects"])
    (sent,) = named["send export-events"]
    assert sent.parent.span_id == deletion.context.span_id
    assert dict(sent_events.messages[-1]["headers"])["traceparent"].startswith(
        f"00-{UPSTREAM_TRACE}-".encode()
    )
    _check_attributes(spans.get_finished_spans())
    assert "u1" not in str([s.attributes for s in spans.get_finished_spans()])


async def test_a_pending_export_cancelled_from_another_trace_announces_in_its_own(
    deps: Deps, spans: Any, sent_events: SentEvents, status_store: StatusStore, runner: ExportRunner
) -> None:
    record = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="entries",
        trace_id=UPSTREAM_TRACE,
        trace_parent=UPSTREAM,
    )
    seed(status_store, record)
    with tracing.span("DELETE /campaigns/{campaign_id}/exports/{export_id}") as cancel_span:
        cancelled = await runner.cancel_export("c1", record.id, "admin")
    assert cancelled.status == Status.CANCELLED
    named = _by_name(spans.get_finished_spans())
    (sent,) = named["send export-events"]
    assert format(sent.context.trace_id, "032x") == UPSTREAM_TRACE
    assert format(sent.parent.span_id, "016x") == UPSTREAM_SPAN
    header = dict(sent_events.messages[-1]["headers"])["traceparent"].decode()
    assert header.split("-")[1] == UPSTREAM_TRACE
    # The cancel request's span is not dressed as the export's run.
    (request_span,) = named["DELETE /campaigns/{campaign_id}/exports/{export_id}"]
    assert request_span.context.span_id == cancel_span.get_span_context().span_id
    assert "export.status" not in (request_span.attributes or {})


async def test_an_export_recorded_without_a_trace_gets_its_runs(
    deps: Deps, spans: Any, sent_events: SentEvents, status_store: StatusStore, runner: ExportRunner
) -> None:
    record = ExportRecord(id=new_export_id(), campaign_id="c1", export_type="codes")
    seed(status_store, record)
    final = await runner.run_one(record)
    named = _by_name(spans.get_finished_spans())
    (run,) = named["export.run"]
    assert final.trace_id == format(run.context.trace_id, "032x")
    (wait,) = named["export.queue_wait"]
    assert wait.parent.span_id == run.context.span_id
    assert named["send export-events"][0].parent.span_id == run.context.span_id
