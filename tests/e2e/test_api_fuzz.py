"""Property-based API run: schemathesis against the running worker, from its own /openapi.json.

Every documented operation gets generated requests, sent with a supreme token: the schema's
examples, the coverage phase (boundary values, every negative variant of each parameter and
body field, undocumented methods, missing auth), random positive and negative fuzzing, and
stateful sequences. Every answer must pass schemathesis' checks: no 5xx; status code, content
type, headers and body as documented; invalid input rejected with 4xx; auth enforced;
unknown methods answered 405 with `Allow`.

Schemathesis' engine (the Python API its CLI runs on) drives the run: its pytest plugin reaches
into pytest internals that pytest 9 no longer has.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.engine import Status, StopReason, events, from_schema

from tests.e2e.conftest import Worker

MAX_EXAMPLES = 100  # per operation and phase: about 15 s against the local stack
STATEFUL_MAX_STEPS = 6
SEED = 20260501  # a fixed seed: a failure here reproduces


@dataclass
class RunReport:
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: StopReason | None = None

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def record(self, recorder: Any) -> None:
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
                self.by_operation[recorder.label] += 1
        for nodes in recorder.checks.values():
            for node in nodes:
                self.checks[f"{node.name}:{node.status.value}"] += 1
                if node.status == Status.FAILURE and node.failure_info is not None:
                    failure = node.failure_info.failure
                    self.failures.append(
                        f"{recorder.label}: {failure.title}\n{failure.message}\n"
                        f"{node.failure_info.code_sample}"
                    )


def run_schemathesis(worker: Worker, document: dict[str, Any]) -> RunReport:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # No "max-time": with one, schemathesis repeats fuzzing and stateful phases until
            # it runs out; without, each phase runs once and the test's timeout bounds it.
            "base-url": worker.base_url,
            "headers": {"Authorization": f"Bearer {worker.token}"},
            "request-timeout": 10,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # Sequences inferred from the schema (POST -> GET by id, ...): short and few.
            "phases": {
                "stateful": {"max-steps": STATEFUL_MAX_STEPS, "generation": {"max-examples": 10}}
            },
            # positive_data_acceptance wants every schema-valid request accepted, but a
            # well-formed `cursor` the API never issued is rightly a 400: off for the listings.
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
                for name in ("GET /campaigns/{campaignId}/exports", "GET /ccpa/requests")
            ],
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    report = RunReport()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            report.record(event.recorder)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            report.stop_reason = event.stop_reason
    return report


def test_the_api_answers_as_documented_under_generated_requests(worker: Worker) -> None:
    status, document = worker.request("GET", "/openapi.json", token="")
    assert status == 200, document
    report = run_schemathesis(worker, document)
    print(f"\nschemathesis: {report.requests} requests")
    print(f"  by status {dict(sorted(report.statuses.items()))}")
    print(f"  by operation {dict(report.by_operation)}")
    print(f"  checks {dict(sorted(report.checks.items()))}")
    assert report.errors == []
    assert report.failures == [], "\n\n".join(report.failures[:10])
    server_errors = {s: n for s, n in report.statuses.items() if s >= 500}
    assert server_errors == {}
    documented = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented <= set(report.by_operation), "every operation was exercised"
    assert report.stop_reason == StopReason.COMPLETED
    assert report.requests >= 100
