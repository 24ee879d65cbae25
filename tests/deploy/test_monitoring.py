"""The Grafana dashboard and the Prometheus alert rules ask only for metrics the service has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART
from tests.deploy.promql import (
    CONTRACT,
    balanced,
    base_metric,
    grouping_labels,
    metric_names,
    unknown_labels,
    unknown_metrics,
)

DASHBOARD = CHART / "dashboards" / "export-service.json"
RULES = CHART / "alerts" / "export-service.rules.yaml"
ALERTS = {
    "ExportServiceConsumerLagGrowing",
    "ExportServiceDependencyRetrying",
    "ExportServiceExportsFailing",
    "ExportServiceExportNearTimeout",
    "ExportServiceNoReadyWorker",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text("utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target


# -- unit tests of the PromQL reader the checks below rely on --------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (status) (exports_by_status{job=~"$job"})', {"exports_by_status"}),
        (
            "histogram_quantile(0.95, sum by (le, route) "
            "(rate(http_request_duration_seconds_bucket[$__rate_interval])))",
            {"http_request_duration_seconds_bucket"},
        ),
        (
            "export_running_seconds > 0.8 * export_timeout_seconds",
            {"export_running_seconds", "export_timeout_seconds"},
        ),
        ('absent(up{job="x", ready!="false"} == 1)', {"up"}),
        ("a and on (pod) b offset 5m unless c > 1e3", {"a", "b", "c"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_unknown_names_and_labels_are_found() -> None:
    assert unknown_metrics("rate(export_requests_count[5m]) + up") == {"export_requests_count"}
    assert unknown_metrics("export_duration_seconds_bucket + process_cpu_seconds_total") == set()
    assert unknown_labels("sum by (type) (export_rows_total)") == {"type"}
    assert unknown_labels('sum by (le) (rate(export_duration_seconds_bucket{x="1"}[1m]))') == {"x"}
    assert not balanced("sum(rate(x[5m])")


# -- the dashboard ------------------------------------------------------------------------------


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "export-service"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]


def test_dashboard_queries_use_only_the_service_metrics(dashboard: dict[str, Any]) -> None:
    for title, target in targets(dashboard):
        expr = target["expr"]
        assert balanced(expr), f"{title}: {expr}"
        assert unknown_metrics(expr) == set(), f"{title}: {expr}"
        assert unknown_labels(expr) == set(), f"{title}: {expr}"
        # Every panel is scoped to the selected job and namespace.
        for name in metric_names(expr):
            assert re.search(rf'{name}\{{job=~"\$job", namespace=~"\$namespace"', expr), expr
        # Legends name only labels the query keeps.
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        kept = grouping_labels(expr) or {"instance", "job", "namespace"}
        assert legend <= kept | {"instance"}, f"{title}: legend {legend} vs {kept}"


def test_dashboard_shows_every_metric_of_the_contract(dashboard: dict[str, Any]) -> None:
    shown = {base_metric(n) for _, t in targets(dashboard) for n in metric_names(t["expr"])}
    assert set(CONTRACT) - shown == set()


def test_dashboard_variables_query_contract_metrics(dashboard: dict[str, Any]) -> None:
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, query
        selector, label = match.groups()
        assert unknown_metrics(selector) == set()
        assert label in {"job", "namespace"}


# -- the alert rules ----------------------------------------------------------------------------


def test_rules_file_has_the_five_alerts(rules: list[dict[str, Any]]) -> None:
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_alert_expressions_use_only_the_service_metrics(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        expr = rule["expr"]
        assert balanced(expr), rule["alert"]
        assert metric_names(expr), rule["alert"]
        assert unknown_metrics(expr) == set(), rule["alert"]
        assert unknown_labels(expr) == set(), rule["alert"]
        # The chart replaces this job selector with metrics.jobName.
        for name in metric_names(expr):
            assert re.search(rf'{name}\{{job="export-service"', expr), (rule["alert"], name)


def test_each_alert_watches_what_its_name_says(rules: list[dict[str, Any]]) -> None:
    by_name = {rule["alert"]: rule["expr"] for rule in rules}
    assert "export_consumer_lag" in metric_names(by_name["ExportServiceConsumerLagGrowing"])
    assert "delta(export_consumer_lag" in by_name["ExportServiceConsumerLagGrowing"]
    assert 'status=~"FAILED|EXPIRED"' in by_name["ExportServiceExportsFailing"]
    near_timeout = by_name["ExportServiceExportNearTimeout"]
    assert metric_names(near_timeout) == {"export_running_seconds", "export_timeout_seconds"}
    assert "0.8 *" in near_timeout
    assert metric_names(by_name["ExportServiceNoReadyWorker"]) == {"up"}
    assert by_name["ExportServiceNoReadyWorker"].strip().startswith("absent(")


def test_annotations_use_only_labels_the_expression_keeps(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        text = " ".join(rule["annotations"].values())
        used = set(re.findall(r"\$labels\.(\w+)", text))
        kept = grouping_labels(rule["expr"]) or {"instance", "job", "namespace", "pod"}
        assert used <= kept, (rule["alert"], used, kept)
