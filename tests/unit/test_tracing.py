"""core/tracing.py: when tracing turns on, W3C context in Kafka headers, ids on log lines."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from core import tracing
from core.logging import JsonFormatter

UPSTREAM = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_on_only_when_the_standard_variables_ask(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing.tracing_requested(environ) is on


def test_off_installs_nothing_and_grpc_leaves_it_off_with_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert tracing.configure_tracing({}) is None
    grpc = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with caplog.at_level(logging.ERROR, logger="core.tracing"):
        assert tracing.configure_tracing(grpc) is None  # the worker still starts
        assert tracing.configure_tracing({"OTEL_TRACES_EXPORTER": "zipkin"}) is None
    assert "http/protobuf" in caplog.text
    assert "zipkin" in caplog.text


def test_only_the_w3c_trace_context_is_carried_not_baggage(spans: Any) -> None:
    parent = tracing.context_from_headers(
        [("traceparent", UPSTREAM.encode()), ("baggage", b"user=someone@example.com")]
    )
    with tracing.span("step", parent=parent):
        assert {name for name, _ in tracing.kafka_headers()} == {"traceparent"}


def test_an_upstream_traceparent_is_continued_and_carried_on(spans: Any) -> None:
    parent = tracing.context_from_headers([("traceparent", UPSTREAM.encode()), ("other", b"x")])
    with tracing.span("step", parent=parent) as span:
        headers = dict(tracing.kafka_headers())
        assert tracing.trace_id_of() == "0af7651916cd43dd8448eb211c80319c"
        stored = tracing.traceparent()
    (finished,) = spans.get_finished_spans()
    assert finished.parent is not None
    assert finished.parent.span_id == 0xB7AD6B7169203331
    span_id = format(span.get_span_context().span_id, "016x")
    assert headers["traceparent"] == f"00-0af7651916cd43dd8448eb211c80319c-{span_id}-01".encode()
    assert stored == headers["traceparent"].decode()
    again = tracing.context_from_traceparent(stored)
    assert tracing.trace_id_of(again) == "0af7651916cd43dd8448eb211c80319c"
    # Headers as a mapping (aiohttp's, Faust's) read the same.
    assert tracing.trace_id_of(tracing.context_from_headers({"TraceParent": UPSTREAM})) == (
        "0af7651916cd43dd8448eb211c80319c"
    )


def test_without_a_trace_there_is_nothing_to_carry() -> None:
    assert tracing.kafka_headers() == []
    assert tracing.traceparent() is None
    assert tracing.trace_id_of() is None
    assert tracing.context_from_traceparent(None) is None
    assert tracing.context_from_traceparent("not-a-traceparent") is None


def test_tracing_off_still_passes_an_upstream_trace_through() -> None:
    """No SDK provider: nothing is recorded, but the result event keeps the caller's trace."""
    parent = tracing.context_from_headers([("traceparent", UPSTREAM.encode())])
    with tracing.span("step", parent=parent):
        assert dict(tracing.kafka_headers())["traceparent"] == UPSTREAM.encode()


def _line(message: str) -> dict[str, Any]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    return dict(orjson.loads(JsonFormatter().format(record)))


def test_log_lines_carry_the_current_trace_and_span(spans: Any) -> None:
    assert "trace_id" not in _line("outside")
    with tracing.span("step") as span:
        line = _line("inside")
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
