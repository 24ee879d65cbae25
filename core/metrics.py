"""Prometheus metrics: one registry for the service's metrics and Faust's own sensors.

Names and labels are fixed by README "Metrics the dashboard and alerts use" (the Grafana
dashboard and the alert rules read them). Label values are bounded: export types are the
registry's names (else `unknown`), routes are route patterns (else `unmatched`), methods
the standard ones (else `other`), statuses the `Status` values.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from core.models import Status

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY"]

REGISTRY = CollectorRegistry(auto_describe=True)
"""The one registry /metrics serves: these metrics, Faust's sensors, process_* and python_*."""

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RequestOutcome = Literal["accepted", "duplicate", "rejected"]
UNKNOWN = "unknown"
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

EXPORT_REQUESTS = Counter(
    "export_requests_total",
    "Export requests by type and what became of them (accepted, duplicate, rejected)",
    ["export_type", "outcome"],
    registry=REGISTRY,
)
EXPORTS_BY_STATUS = Gauge(
    "exports_by_status",
    "Exports in the status table by status",
    ["status"],
    registry=REGISTRY,
)
EXPORT_DURATION = Histogram(
    "export_duration_seconds",
    "Run time of exports that reached a terminal status, by type",
    ["export_type"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf")),
    registry=REGISTRY,
)
EXPORT_ROWS = Counter(
    "export_rows_total",
    "Rows written by finished exports, by type and logical bucket",
    ["export_type", "bucket"],
    registry=REGISTRY,
)
EXPORT_BYTES = Counter(
    "export_bytes_total",
    "Bytes stored by finished exports, by type and logical bucket",
    ["export_type", "bucket"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("export_queue_depth", "PENDING exports", registry=REGISTRY)
RUNNING_PROGRESS = Gauge(
    "export_running_progress_rows", "Rows of the running export so far", registry=REGISTRY
)
RUNNING_SECONDS = Gauge(
    "export_running_seconds", "Age of the running export; 0 when idle", registry=REGISTRY
)
TIMEOUT_SECONDS = Gauge("export_timeout_seconds", "EXPORT_TIMEOUT_SECONDS", registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "export_consumer_lag",
    "High watermark minus committed offset of the exports topic, per assigned partition",
    ["topic", "partition"],
    registry=REGISTRY,
)
DEPENDENCY_RETRIES = Counter(
    "dependency_retries_total",
    "Calls to MongoDB or S3 retried after a fault that may pass, by dependency and reason",
    ["dependency", "reason"],
    registry=REGISTRY,
)
CCPA_DELETIONS = Counter(
    "ccpa_deletions_total", "CCPA deletion requests by outcome", ["outcome"], registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route pattern, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route pattern and method",
    ["route", "method"],
    registry=REGISTRY,
)

_running_since: float | None = None


def _running_seconds() -> float:
    started = _running_since
    return 0.0 if started is None else time.monotonic() - started


RUNNING_SECONDS.set_function(_running_seconds)
for _status in Status:
    EXPORTS_BY_STATUS.labels(status=_status.value).set(0)


_known_export_types: frozenset[str] = frozenset()


def register_export_types(names: Iterable[str]) -> None:
    """The export types the registry knows (core does not import exporters: layers)."""
    global _known_export_types
    _known_export_types = _known_export_types | frozenset(names)


def export_type_label(export_type: str | None) -> str:
    """The export type when the registry knows it, else `unknown` (bounded label values)."""
    if export_type is not None and export_type in _known_export_types:
        return export_type
    return UNKNOWN


def record_export_request(export_type: str | None, outcome: RequestOutcome) -> None:
    """An export request (REST or Kafka) was accepted, found a duplicate, or was refused."""
    EXPORT_REQUESTS.labels(export_type=export_type_label(export_type), outcome=outcome).inc()


def record_ccpa_deletion(outcome: str) -> None:
    """A CCPA deletion request ended with `outcome` (a short, fixed word chosen by the caller)."""
    CCPA_DELETIONS.labels(outcome=outcome).inc()


def record_retry(dependency: str, reason: str) -> None:
    """A MongoDB or S3 call is tried again (labels: the adapters' fixed words)."""
    DEPENDENCY_RETRIES.labels(dependency=dependency, reason=reason).inc()


def export_started(timeout_seconds: float | None = None) -> None:
    """The runner started an export: its age and progress are reported from now on."""
    global _running_since
    _running_since = time.monotonic()
    RUNNING_PROGRESS.set(0)
    if timeout_seconds is not None:
        TIMEOUT_SECONDS.set(timeout_seconds)


def export_progress(rows: int) -> None:
    RUNNING_PROGRESS.set(rows)


def export_ended(
    export_type: str,
    *,
    bucket: str | None = None,
    rows: int = 0,
    size_bytes: int = 0,
    finished: bool = False,
) -> None:
    """The running export reached a terminal status (or was interrupted: `finished` False
    and no bucket). Observes its duration; counts rows and bytes of a finished export."""
    global _running_since
    started, _running_since = _running_since, None
    RUNNING_PROGRESS.set(0)
    label = export_type_label(export_type)
    if started is not None:
        EXPORT_DURATION.labels(export_type=label).observe(time.monotonic() - started)
    if finished and bucket is not None:
        EXPORT_ROWS.labels(export_type=label, bucket=bucket).inc(rows)
        EXPORT_BYTES.labels(export_type=label, bucket=bucket).inc(size_bytes)


def set_status_counts(counts: Mapping[Status, int]) -> None:
    """Set exports_by_status and export_queue_depth from the table's counts per status."""
    for status in Status:
        EXPORTS_BY_STATUS.labels(status=status.value).set(counts.get(status, 0))
    QUEUE_DEPTH.set(counts.get(Status.PENDING, 0))


def set_timeout(timeout_seconds: float) -> None:
    TIMEOUT_SECONDS.set(timeout_seconds)


def set_consumer_lag(lags: Mapping[tuple[str, int], int]) -> None:
    """Replace the lag samples: only currently assigned partitions are reported."""
    CONSUMER_LAG.clear()
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))


def consumer_lag(consumer: Any, topic: str) -> dict[tuple[str, int], int]:
    """High watermark minus committed offset for each assigned partition of `topic`.

    Faust keeps the last committed offset (the next offset to read) per partition; none
    committed yet counts as 0. A partition whose high watermark is not known yet (no fetch
    so far) is left out.
    """
    lags: dict[tuple[str, int], int] = {}
    try:
        assignment = consumer.assignment()
    except Exception:  # consumer not started: nothing assigned
        return lags
    committed_offsets: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    for tp in assignment:
        if tp.topic != topic:
            continue
        with contextlib.suppress(Exception):
            highwater = consumer.highwater(tp)
            if highwater is not None:
                committed = committed_offsets.get(tp) or 0
                lags[(tp.topic, tp.partition)] = int(highwater) - int(committed)
    return lags


def route_label(route_pattern: str | None) -> str:
    return route_pattern if route_pattern else UNMATCHED


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def record_http_request(route: str | None, method: str, status: int, seconds: float) -> None:
    route_value, method_value = route_label(route), method_label(method)
    HTTP_REQUESTS.labels(route=route_value, method=method_value, status=str(status)).inc()
    HTTP_DURATION.labels(route=route_value, method=method_value).observe(seconds)


@cache
def _faust_metrics(prefix: str) -> Any:
    from faust.sensors.prometheus import FaustMetrics

    return FaustMetrics.create(REGISTRY, prefix)


def faust_monitor(prefix: str = "faust") -> Any:
    """Faust's Prometheus sensor writing into REGISTRY (its metrics are `{prefix}_*`)."""
    from faust.sensors.prometheus import PrometheusMonitor

    return PrometheusMonitor(metrics=_faust_metrics(prefix))


def exposition() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
