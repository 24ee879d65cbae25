"""The metric contract the dashboard and alerts are written against, and a small PromQL reader.

The service exposes exactly these names (README, "Metrics the dashboard and alerts use"); a
dashboard panel or alert that asks for anything else would show nothing or never fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    kind: str  # counter | gauge | histogram
    labels: frozenset[str]


def _m(kind: str, *labels: str) -> Metric:
    return Metric(kind, frozenset(labels))


CONTRACT: dict[str, Metric] = {
    "export_requests_total": _m("counter", "export_type", "outcome"),
    "exports_by_status": _m("gauge", "status"),
    "export_duration_seconds": _m("histogram", "export_type"),
    "export_rows_total": _m("counter", "export_type", "bucket"),
    "export_bytes_total": _m("counter", "export_type", "bucket"),
    "export_queue_depth": _m("gauge"),
    "export_running_progress_rows": _m("gauge"),
    "export_running_seconds": _m("gauge"),
    "export_timeout_seconds": _m("gauge"),
    "export_consumer_lag": _m("gauge", "topic", "partition"),
    "ccpa_deletions_total": _m("counter", "outcome"),
    "dependency_retries_total": _m("counter", "dependency", "reason"),
    "http_requests_total": _m("counter", "route", "method", "status"),
    "http_request_duration_seconds": _m("histogram", "route", "method"),
}
# Labels Prometheus adds to every series of a target (the chart's ServiceMonitor adds `ready`).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "ready"})
STANDARD = frozenset({"up"})
STANDARD_PREFIXES = ("process_",)

_KEYWORDS = frozenset(
    {
        # aggregation operators
        "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
        "quantile", "count_values", "group", "limitk", "limit_ratio",
        # modifiers and binary operators
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
        "and", "or", "unless", "offset", "atan2", "inf", "nan",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (functions, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(r"\1()", text)
    names = set()
    for match in _IDENT.finditer(text):
        word, start = match.group(0), match.start()
        if word in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator, or a function / aggregation call
        if start and (text[start - 1].isdigit() or text[start - 1] in ".$"):
            continue  # the exponent of 1e3, or a $variable outside braces
        names.add(word)
    return names


def matcher_labels(expr: str) -> set[str]:
    """Label names used in `{...}` selectors."""
    labels: set[str] = set()
    for body in _MATCHERS.findall(_STRING.sub('""', expr)):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    return labels


def grouping_labels(expr: str) -> set[str]:
    """Label names in by / without / on / ignoring / group_* clauses."""
    labels: set[str] = set()
    for _, body in _GROUPING.findall(_STRING.sub('""', expr)):
        labels.update(part.strip() for part in body.split(",") if part.strip())
    return labels


def base_metric(name: str) -> str | None:
    """The contract metric a series name belongs to (histograms expose _bucket/_sum/_count)."""
    if name in CONTRACT:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in CONTRACT and CONTRACT[base].kind == "histogram":
            return base
    return None


def unknown_metrics(expr: str) -> set[str]:
    """Series names in `expr` that are neither in the contract nor standard ones."""
    return {
        name
        for name in metric_names(expr)
        if base_metric(name) is None
        and name not in STANDARD
        and not name.startswith(STANDARD_PREFIXES)
    }


def unknown_labels(expr: str) -> set[str]:
    """Labels `expr` uses that none of its contract metrics (nor the target) has."""
    known = set(TARGET_LABELS)
    for name in metric_names(expr):
        base = base_metric(name)
        if base is not None:
            known |= CONTRACT[base].labels
            if CONTRACT[base].kind == "histogram" and name.endswith("_bucket"):
                known.add("le")
    return (matcher_labels(expr) | grouping_labels(expr)) - known


def balanced(expr: str) -> bool:
    """Brackets pair up (outside strings)."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in _STRING.sub('""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack
