"""OpenTelemetry traces: off unless the standard `OTEL_*` variables ask for them.

One trace follows an export from the request (a REST call, or the upstream producer's
`traceparent` header) through the queue, its run and S3 parts to the result event. The W3C
trace context travels in Kafka headers and, between the request and the run (which may be
another process after a crash), in the export record (`trace_parent`).

With no exporter configured the OpenTelemetry API stays on its no-op provider: spans cost a
function call and carry the caller's context through, nothing is recorded or sent.
Attributes hold ids, types, counts and sizes only, never campaign data or personal data.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

TRACER_NAME = "export-service"

KafkaHeaders = list[tuple[str, bytes]]

_OTLP_PROTOCOLS = {"http/protobuf"}

# W3C trace context only: a caller's `baggage` is not copied onto the service's events.
_PROPAGATOR = TraceContextTextMapPropagator()


class _Provider:
    """The provider spans go to when one is given (tests give an in-memory one); else the
    OpenTelemetry global, which `configure_tracing` sets and which can be set only once."""

    given: trace.TracerProvider | None = None


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send the service's spans to `provider` (None: back to the global provider)."""
    _Provider.given = provider


def tracer() -> trace.Tracer:
    """The service's tracer (the global provider's: a no-op one until tracing is set up)."""
    provider = _Provider.given or trace.get_tracer_provider()
    return provider.get_tracer(TRACER_NAME)


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for an exporter: `OTEL_TRACES_EXPORTER` other
    than `none`, or an OTLP endpoint; `OTEL_SDK_DISABLED=true` wins over both."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure_tracing(environ: Mapping[str, str] | None = None) -> Any:
    """Install the SDK's provider with a batching OTLP/HTTP exporter when asked for
    (`tracing_requested`); returns it, or None when tracing stays off.

    The exporter, the batch processor and the resource read their own standard variables
    (`OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).
    Spans are exported from the processor's thread, never on the event loop.
    """
    env = os.environ if environ is None else environ
    if not tracing_requested(env):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    problems = []
    for name in names:
        if name == "otlp" and protocol not in _OTLP_PROTOCOLS:
            problems.append(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: this service sends OTLP over HTTP "
                "(http/protobuf); point it at the collector's HTTP port (4318)"
            )
        elif name not in ("otlp", "console", "none"):
            problems.append(f"OTEL_TRACES_EXPORTER={name}: only otlp, console or none")
    if problems:
        # An observability setting must not keep exports from running: tracing stays off.
        logger.error("tracing stays off: %s", "; ".join(problems))
        return None
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: TRACER_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    logger.info("tracing on: exporters %s", ",".join(names))
    return provider


# -- W3C trace context in Kafka headers and in the record ------------------------------


def kafka_headers(context: Context | None = None) -> KafkaHeaders:
    """`traceparent` (and `tracestate`) of `context` (default: the current one), as the
    headers of a Kafka message; empty when there is no span to continue."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return [(name, value.encode()) for name, value in carrier.items()]


HeaderValues = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]


def context_from_headers(headers: HeaderValues | None) -> Context:
    """The trace context a message's (or a request's) headers carry; empty when none."""
    carrier: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if value is None:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        carrier[name.lower()] = text
    return _PROPAGATOR.extract(carrier)


def traceparent(context: Context | None = None) -> str | None:
    """The `traceparent` string of `context` (default: the current span), or None."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier.get("traceparent")


def context_from_traceparent(value: str | None) -> Context | None:
    """The context a stored `traceparent` names; None for none (or one not W3C)."""
    if not value:
        return None
    extracted = _PROPAGATOR.extract({"traceparent": value})
    span_context = trace.get_current_span(extracted).get_span_context()
    return extracted if span_context.is_valid else None


def trace_id_of(context: Context | None = None) -> str | None:
    """The 32-hex-digit trace id of `context` (default: the current span), or None."""
    span_context = trace.get_current_span(context).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def in_trace(trace_id: str | None) -> bool:
    """Whether the current span belongs to the trace `trace_id` (an export's own run span,
    not the span of a cancel request that ends the export from elsewhere)."""
    return trace_id is not None and trace_id_of() == trace_id


def record_ids() -> dict[str, str | None]:
    """`trace_id` and `trace_parent` for a record made in the current span (both None
    outside one): what its run and its result event continue."""
    return {"trace_id": trace_id_of(), "trace_parent": traceparent()}


def parent_of(trace_id: str | None, trace_parent: str | None) -> Context | None:
    """The parent for a span about a record: None (the current span) inside the record's
    own trace, else the request's context stored on the record (an announcement retried by
    the idle runner, an export cancelled by a request of another trace)."""
    return None if in_trace(trace_id) else context_from_traceparent(trace_parent)


def log_ids() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, for log lines; empty outside one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": format(span_context.trace_id, "032x"),
        "span_id": format(span_context.span_id, "016x"),
    }


# -- spans -------------------------------------------------------------------------------


def _nanoseconds(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@contextmanager
def span(
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span under `parent` (default: the current context); an exception ends it
    with an error status and is re-raised."""
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=_attributes(attributes)
    ) as current:
        yield current


@contextmanager
def attached(context: Context | None) -> Iterator[None]:
    """Make `context` current for the block (no-op for None)."""
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def record_interval(
    name: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    parent: Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """A span that already happened (a wait measured from stored timestamps)."""
    started = tracer().start_span(
        name, context=parent, attributes=_attributes(attributes), start_time=_nanoseconds(start)
    )
    started.end(end_time=max(_nanoseconds(end), _nanoseconds(start)))


def _attributes(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not values:
        return None
    return {k: v for k, v in values.items() if v is not None}
