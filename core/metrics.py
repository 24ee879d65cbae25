"""Prometheus metrics: one registry per app for the service's metrics and Faust's own sensors.

Names and labels are fixed by README "Metrics the dashboard and alerts use" (the Grafana
dashboard and the alert rules read them). Label values are bounded: export types are the
registry's names (else `unknown`), routes are route patterns (else `unmatched`), methods
the standard ones (else `other`), statuses the `Status` values.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
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

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

RequestOutcome = Literal["accepted", "duplicate", "rejected"]
UNKNOWN = "unknown"
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServiceMetrics:
    """The registry /metrics serves (these metrics, Faust's sensors, process_* and python_*)
    and the running export's clock; one per app, built by the composition root."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.export_requests = Counter(
            "export_requests_total",
            "Export requests by type and what became of them (accepted, duplicate, rejected)",
            ["export_type", "outcome"],
            registry=registry,
        )
        self.exports_by_status = Gauge(
            "exports_by_status",
            "Exports in the status table by status",
            ["status"],
            registry=registry,
        )
        self.export_duration = Histogram(
            "export_duration_seconds",
            "Run time of exports that reached a terminal status, by type",
            ["export_type"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf")),
            registry=registry,
        )
        self.export_rows = Counter(
            "export_rows_total",
            "Rows written by finished exports, by type and logical bucket",
            ["export_type", "bucket"],
            registry=registry,
        )
        self.export_bytes = Counter(
            "export_bytes_total",
            "Bytes stored by finished exports, by type and logical bucket",
            ["export_type", "bucket"],
            registry=registry,
        )
        self.queue_depth = Gauge("export_queue_depth", "PENDING exports", registry=registry)
        self.running_progress = Gauge(
            "export_running_progress_rows", "Rows of the running export so far", registry=registry
        )
        self.running_seconds = Gauge(
            "export_running_seconds", "Age of the running export; 0 when idle", registry=registry
        )
        self.timeout_seconds = Gauge(
            "export_timeout_seconds", "EXPORT_TIMEOUT_SECONDS", registry=registry
        )
        self.export_consumer_lag = Gauge(
            "export_consumer_lag",
            "High watermark minus committed offset of the exports topic, per assigned partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.dependency_retries = Counter(
            "dependency_retries_total",
            "Calls to MongoDB or S3 retried after a fault that may pass, by dependency and reason",
            ["dependency", "reason"],
            registry=registry,
        )
        self.ccpa_deletions = Counter(
            "ccpa_deletions_total",
            "CCPA deletion requests by outcome",
            ["outcome"],
            registry=registry,
        )
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by route pattern, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern and method",
            ["route", "method"],
            registry=registry,
        )
        self._running_since: float | None = None
        self._known_export_types: frozenset[str] = frozenset()
        self._faust_metrics: dict[str, Any] = {}
        self.running_seconds.set_function(self._running_for)
        for status in Status:
            self.exports_by_status.labels(status=status.value).set(0)

    def _running_for(self) -> float:
        started = self._running_since
        return 0.0 if started is None else time.monotonic() - started

    def register_export_types(self, names: Iterable[str]) -> None:
        """The export types the registry knows (core does not import exporters: layers)."""
        self._known_export_types = self._known_export_types | frozenset(names)

    def export_type_label(self, export_type: str | None) -> str:
        """The export type when the registry knows it, else `unknown` (bounded label values)."""
        if export_type is not None and export_type in self._known_export_types:
            return export_type
        return UNKNOWN

    def record_export_request(self, export_type: str | None, outcome: RequestOutcome) -> None:
        """An export request (REST or Kafka) was accepted, found a duplicate, or was refused."""
        label = self.export_type_label(export_type)
        self.export_requests.labels(export_type=label, outcome=outcome).inc()

    def record_ccpa_deletion(self, outcome: str) -> None:
        """A CCPA deletion request ended with `outcome` (a short, fixed word chosen by the
        caller)."""
        self.ccpa_deletions.labels(outcome=outcome).inc()

    def record_retry(self, dependency: str, reason: str) -> None:
        """A MongoDB or S3 call is tried again (labels: the adapters' fixed words)."""
        self.dependency_retries.labels(dependency=dependency, reason=reason).inc()

    def export_started(self, timeout_seconds: float | None = None) -> None:
        """The runner started an export: its age and progress are reported from now on."""
        self._running_since = time.monotonic()
        self.running_progress.set(0)
        if timeout_seconds is not None:
            self.timeout_seconds.set(timeout_seconds)

    def export_progress(self, rows: int) -> None:
        self.running_progress.set(rows)

    def export_ended(
        self,
        export_type: str,
        *,
        bucket: str | None = None,
        rows: int = 0,
        size_bytes: int = 0,
        finished: bool = False,
    ) -> None:
        """The running export reached a terminal status (or was interrupted: `finished` False
        and no bucket). Observes its duration; counts rows and bytes of a finished export."""
        started, self._running_since = self._running_since, None
        self.running_progress.set(0)
        label = self.export_type_label(export_type)
        if started is not None:
            self.export_duration.labels(export_type=label).observe(time.monotonic() - started)
        if finished and bucket is not None:
            self.export_rows.labels(export_type=label, bucket=bucket).inc(rows)
            self.export_bytes.labels(export_type=label, bucket=bucket).inc(size_bytes)

    def set_status_counts(self, counts: Mapping[Status, int]) -> None:
        """Set exports_by_status and export_queue_depth from the table's counts per status."""
        for status in Status:
            self.exports_by_status.labels(status=status.value).set(counts.get(status, 0))
        self.queue_depth.set(counts.get(Status.PENDING, 0))

    def set_timeout(self, timeout_seconds: float) -> None:
        self.timeout_seconds.set(timeout_seconds)

    def set_consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Replace the lag samples: only currently assigned partitions are reported."""
        self.export_consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            self.export_consumer_lag.labels(topic=topic, partition=str(partition)).set(max(lag, 0))

    def record_http_request(
        self, route: str | None, method: str, status: int, seconds: float
    ) -> None:
        route_value, method_value = route_label(route), method_label(method)
        self.http_requests.labels(route=route_value, method=method_value, status=str(status)).inc()
        self.http_duration.labels(route=route_value, method=method_value).observe(seconds)

    def faust_monitor(self, prefix: str = "faust") -> Any:
        """Faust's Prometheus sensor writing into this registry (its metrics are `{prefix}_*`).

        Faust's metric objects are made once per prefix: a second set would be refused by
        the registry as duplicates."""
        from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

        if prefix not in self._faust_metrics:
            self._faust_metrics[prefix] = FaustMetrics.create(self.registry, prefix)
        return PrometheusMonitor(metrics=self._faust_metrics[prefix])

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


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
