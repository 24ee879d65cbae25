"""Traces end to end: a worker with OTLP pointed at a receiver in this test, an upstream
request produced by confluent-kafka with a `traceparent`, and its `export.finished` event.

The receiver is a plain HTTP server that decodes OTLP/HTTP protobuf bodies with the
OpenTelemetry protocol's own message classes: what a collector would see.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from devstack.stack import LocalStack
from tests.e2e.conftest import (
    KafkaClient,
    Worker,
    dedicated_env,
    start_worker,
    stop_worker,
    wait_for,
)

CAMPAIGN = "cmp-e2e"
UPSTREAM_TRACE = uuid.uuid4().hex
UPSTREAM_SPAN = uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict[str, Any]
    events: list[str]
    service: str


@dataclass
class OtlpReceiver:
    """Spans posted to /v1/traces, decoded."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                service = next(
                    (a.value.string_value for a in resource_spans.resource.attributes
                     if a.key == "service.name"),
                    "",
                )  # fmt: skip
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append(
                            ReceivedSpan(
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                name=span.name,
                                attributes={a.key: _value(a.value) for a in span.attributes},
                                events=[e.name for e in span.events],
                                service=service,
                            )
                        )

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    received = OtlpReceiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 200
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != (
                "application/x-protobuf"
            ):
                status = 400
            else:
                received.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def traced_worker(
    stack: LocalStack, receiver: tuple[OtlpReceiver, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, dict[str, str]]]:
    env = dedicated_env("tracing") | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver[1],
        "OTEL_SERVICE_NAME": "export-service-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        # A progress report (and so a span event of the run) after every batch written.
        "PROGRESS_INTERVAL_ROWS": "1",
    }
    worker = start_worker(stack, tmp_path_factory.mktemp("tracing"), **env)
    yield worker, env
    stop_worker(worker)


def test_an_upstream_request_and_its_result_event_share_one_trace(
    traced_worker: tuple[Worker, dict[str, str]],
    receiver: tuple[OtlpReceiver, str],
    kafka: KafkaClient,
    tmp_path: Path,
) -> None:
    worker, env = traced_worker
    received, _ = receiver
    events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
    export_id = uuid.uuid4().hex
    request = {
        "type": "export.requested",
        "exportId": export_id,
        "campaignId": CAMPAIGN,
        "exportType": "entries",
        "params": {},
        "requestedBy": "upstream-system",
    }
    traceparent = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"
    kafka.produce(
        env["TOPIC_EXPORTS"], orjson.dumps(request), headers=[("traceparent", traceparent)]
    )

    finished = None
    for message in kafka.until_quiet(events, idle=90):
        body = orjson.loads(message.value())
        if body.get("exportId") == export_id:
            finished = (body, dict(message.headers() or []))
            break
    assert finished is not None, worker.log_tail()
    body, headers = finished
    assert body["type"] == "export.finished"
    assert body["traceId"] == UPSTREAM_TRACE
    version, trace_id, parent_id, flags = headers["traceparent"].decode().split("-")
    assert (version, trace_id, flags) == ("00", UPSTREAM_TRACE, "01")

    def whole_trace() -> list[Any] | None:
        spans = received.of_trace(UPSTREAM_TRACE)
        names = {s.name for s in spans}
        wanted = {
            "process exports",
            "export.queue_wait",
            "export.run",
            "export.prepare",
            "export.count",
            "s3.upload_part",
            "s3.complete_upload",
            "send export-events",
        }
        return spans if wanted <= names else None

    spans = wait_for(whole_trace, timeout=30, what="the export's spans at the receiver")
    by_id = {s.span_id: s for s in spans}
    named = {s.name: s for s in spans}
    # One tree, rooted at the upstream producer's span.
    roots = [s for s in spans if s.parent_span_id not in by_id]
    assert {s.parent_span_id for s in roots} == {UPSTREAM_SPAN}
    assert named["process exports"].parent_span_id == UPSTREAM_SPAN
    run = named["export.run"]
    assert by_id[run.parent_span_id].name == "process exports"
    for child in ("export.prepare", "export.count", "s3.complete_upload", "send export-events"):
        assert named[child].parent_span_id == run.span_id, child
    # The result event continues from the span that sent it.
    assert parent_id == named["send export-events"].span_id
    assert run.attributes["export.rows"] > 0
    assert "progress" in run.events
    assert run.attributes["export.status"] == "FINISHED"
    assert run.attributes["export.id"] == export_id
    assert {s.service for s in spans} == {"export-service-e2e"}
    # No personal data in any attribute: ids, types, counts and sizes only.
    for span in spans:
        for value in span.attributes.values():
            assert "@" not in str(value)

    # Logs and traces meet: the run's log lines carry the trace and their span.
    lines = [orjson.loads(line) for line in worker.log_path.read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    ours = [line for line in lines if line.get("export_id") == export_id]
    assert ours
    assert {line.get("trace_id") for line in ours} == {UPSTREAM_TRACE}
    assert {line["span_id"] for line in ours} <= set(by_id)


def test_a_rest_request_starts_a_trace_the_record_names(
    traced_worker: tuple[Worker, dict[str, str]], receiver: tuple[OtlpReceiver, str]
) -> None:
    worker, _ = traced_worker
    received, _ = receiver
    status, body = worker.request("POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "codes"})
    assert status in {200, 202}, body
    trace_id = body["traceId"]
    assert trace_id
    assert trace_id != UPSTREAM_TRACE
    done = worker.wait_terminal(CAMPAIGN, body["id"])
    assert done["status"] == "FINISHED"
    assert done["traceId"] == trace_id

    def rest_trace() -> list[Any] | None:
        spans = received.of_trace(trace_id)
        names = {s.name for s in spans}
        wanted = {"POST /campaigns/{campaign_id}/exports", "send exports", "export.run"}
        return spans if wanted <= names else None

    spans = wait_for(rest_trace, timeout=30, what="the REST request's trace")
    server = next(s for s in spans if s.name == "POST /campaigns/{campaign_id}/exports")
    assert server.parent_span_id == ""
    assert server.attributes["http.response.status_code"] == status
