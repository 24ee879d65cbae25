"""core.metrics: names and labels as the README fixes them, bounded label values, helpers."""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.app import ExportApp
from core.metrics import ServiceMetrics, consumer_lag
from core.models import Status


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics()


def samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_documented_metric_is_in_the_registry(metrics: ServiceMetrics) -> None:
    names = {
        family.name for family in text_string_to_metric_families(metrics.exposition().decode())
    }
    documented = {
        "export_requests",
        "exports_by_status",
        "export_duration_seconds",
        "export_rows",
        "export_bytes",
        "export_queue_depth",
        "export_running_progress_rows",
        "export_running_seconds",
        "export_timeout_seconds",
        "export_consumer_lag",
        "ccpa_deletions",
        "http_requests",
        "http_request_duration_seconds",
        "process_cpu_seconds",
    }
    assert documented <= names


def test_every_status_is_exported_with_zeros(metrics: ServiceMetrics) -> None:
    metrics.set_status_counts({Status.PENDING: 2, Status.FAILED: 1})
    for status in Status:
        expected = {"PENDING": 2, "FAILED": 1}.get(status.value, 0)
        assert value(metrics, "exports_by_status", status=status.value) == expected
    assert value(metrics, "export_queue_depth") == 2
    metrics.set_status_counts({})
    assert value(metrics, "exports_by_status", status="PENDING") == 0


def test_export_type_labels_are_bounded(metrics: ServiceMetrics) -> None:
    metrics.register_export_types(["entries"])
    before = value(metrics, "export_requests_total", export_type="unknown", outcome="rejected")
    metrics.record_export_request("no such type; drop table", "rejected")
    metrics.record_export_request(None, "rejected")
    after = value(metrics, "export_requests_total", export_type="unknown", outcome="rejected")
    assert after == before + 2
    accepted = value(metrics, "export_requests_total", export_type="entries", outcome="accepted")
    metrics.record_export_request("entries", "accepted")
    assert (
        value(metrics, "export_requests_total", export_type="entries", outcome="accepted")
        == accepted + 1
    )


def test_a_finished_export_counts_rows_bytes_and_duration(metrics: ServiceMetrics) -> None:
    metrics.register_export_types(["codes"])
    rows = value(metrics, "export_rows_total", export_type="codes", bucket="exports")
    size = value(metrics, "export_bytes_total", export_type="codes", bucket="exports")
    runs = value(metrics, "export_duration_seconds_count", export_type="codes")
    metrics.export_started(60)
    metrics.export_progress(7)
    assert value(metrics, "export_running_progress_rows") == 7
    assert value(metrics, "export_running_seconds") > 0
    assert value(metrics, "export_timeout_seconds") == 60
    metrics.export_ended("codes", bucket="exports", rows=10, size_bytes=123, finished=True)
    assert value(metrics, "export_rows_total", export_type="codes", bucket="exports") == rows + 10
    assert value(metrics, "export_bytes_total", export_type="codes", bucket="exports") == size + 123
    assert value(metrics, "export_duration_seconds_count", export_type="codes") == runs + 1
    assert value(metrics, "export_running_seconds") == 0
    assert value(metrics, "export_running_progress_rows") == 0


def test_an_interrupted_export_counts_no_rows(metrics: ServiceMetrics) -> None:
    metrics.register_export_types(["codes"])
    rows = value(metrics, "export_rows_total", export_type="codes", bucket="exports")
    metrics.export_started()
    metrics.export_ended("codes")
    assert value(metrics, "export_rows_total", export_type="codes", bucket="exports") == rows
    assert value(metrics, "export_running_seconds") == 0


class FakeTP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))

    def __eq__(self, other: Any) -> bool:
        return (self.topic, self.partition) == (other.topic, other.partition)


class FakeConsumer:
    def __init__(self, highwaters: dict[FakeTP, int | None], committed: dict[FakeTP, int]) -> None:
        self._highwaters = highwaters
        self._committed_offset = committed

    def assignment(self) -> set[FakeTP]:
        return set(self._highwaters)

    def highwater(self, tp: FakeTP) -> int | None:
        return self._highwaters[tp]


def test_consumer_lag_is_highwater_minus_committed_for_the_exports_topic_only(
    metrics: ServiceMetrics,
) -> None:
    exports, other, unknown = FakeTP("exports", 0), FakeTP("changelog", 0), FakeTP("exports", 1)
    consumer = FakeConsumer({exports: 12, other: 99, unknown: None}, {exports: 9})
    assert consumer_lag(consumer, "exports") == {("exports", 0): 3}
    assert consumer_lag(FakeConsumer({exports: 4}, {}), "exports") == {("exports", 0): 4}

    class NotStarted:
        def assignment(self) -> set[FakeTP]:
            raise RuntimeError("consumer not started")

    assert consumer_lag(NotStarted(), "exports") == {}
    metrics.set_consumer_lag({("exports", 0): 3})
    assert value(metrics, "export_consumer_lag", topic="exports", partition="0") == 3
    metrics.set_consumer_lag({})
    assert ("export_consumer_lag", (("partition", "0"), ("topic", "exports"))) not in samples(
        metrics
    )


def test_http_labels_are_route_patterns_and_known_methods(metrics: ServiceMetrics) -> None:
    metrics.record_http_request(None, "BREW", 404, 0.01)
    metrics.record_http_request("/campaigns/{campaign_id}/exports", "POST", 202, 0.02)
    assert (
        value(metrics, "http_requests_total", route="unmatched", method="other", status="404") >= 1
    )
    route = "/campaigns/{campaign_id}/exports"
    assert value(metrics, "http_requests_total", route=route, method="POST", status="202") >= 1
    assert value(metrics, "http_request_duration_seconds_count", route=route, method="POST") >= 1


def test_ccpa_deletions_are_counted_by_outcome(metrics: ServiceMetrics) -> None:
    before = value(metrics, "ccpa_deletions_total", outcome="completed")
    metrics.record_ccpa_deletion("completed")
    assert value(metrics, "ccpa_deletions_total", outcome="completed") == before + 1


def test_fausts_sensor_metrics_share_the_registry(app: ExportApp) -> None:
    metrics = app.service_metrics
    assert cast(Any, app.monitor)._metrics is metrics.faust_monitor()._metrics
    names = {
        family.name for family in text_string_to_metric_families(metrics.exposition().decode())
    }
    assert "faust_messages_received" in names
