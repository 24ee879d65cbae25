"""Operations (issue 6) on the real processes: metrics after real exports, consumer lag,
JSON logs without PII, readiness before and after recovery, SIGTERM during an export."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import LocalStack
from tests.e2e.conftest import (
    BIG,
    KafkaClient,
    Worker,
    dedicated_env,
    spawn_worker,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.e2e.expected import DATA

CAMPAIGN = "cmp-e2e"
STATUSES = {"PENDING", "TRIGGERED", "FINISHED", "FAILED", "EXPIRED", "DELETED", "CANCELLED"}
EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(worker: Worker) -> Samples:
    with urllib.request.urlopen(worker.base_url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_idle(worker: Worker) -> Samples:
    """Metrics once nothing is queued or running (earlier tests may have left work)."""

    def idle() -> Samples | None:
        samples = scrape(worker)
        busy = value(samples, "export_queue_depth") + value(
            samples, "exports_by_status", status="TRIGGERED"
        )
        return samples if busy == 0 and value(samples, "export_running_seconds") == 0 else None

    return wait_for(idle, timeout=110, what="the queue to drain", every=0.5)


def test_metrics_count_real_requests_and_exports(worker: Worker) -> None:
    before = wait_idle(worker)
    path = f"/campaigns/{CAMPAIGN}/exports"
    status, created = worker.request("POST", path, {"exportType": "codes"})
    assert status == 202, created
    # A duplicate while the first is PENDING or TRIGGERED; a new export if it already ended.
    second_status, second = worker.request("POST", path, {"exportType": "codes"})
    assert second_status in {200, 202}, second
    duplicates = 1 if second_status == 200 else 0
    assert duplicates == 0 or second["id"] == created["id"]
    status, _ = worker.request("POST", path, {"exportType": "nope"})
    assert status == 400
    status, _ = worker.request(
        "POST", "/campaigns/no-such-campaign/exports", {"exportType": "codes"}
    )
    assert status == 404
    runs = [
        worker.wait_terminal(CAMPAIGN, e["id"])
        for e in {created["id"]: created, second["id"]: second}.values()
    ]
    assert all(done["status"] == "FINISHED" and done["rowCount"] > 0 for done in runs)
    after = wait_idle(worker)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("export_requests_total", export_type="codes", outcome="accepted") == 2 - duplicates
    assert delta("export_requests_total", export_type="codes", outcome="duplicate") == duplicates
    assert delta("export_requests_total", export_type="codes", outcome="rejected") == 1
    assert delta("export_requests_total", export_type="unknown", outcome="rejected") == 1
    rows = sum(done["rowCount"] for done in runs)
    assert delta("export_rows_total", export_type="codes", bucket="exports") == rows
    size = sum(obj["size"] for done in runs for obj in done["objects"])
    assert delta("export_bytes_total", export_type="codes", bucket="exports") == size
    assert delta("export_duration_seconds_count", export_type="codes") == len(runs)
    assert delta("exports_by_status", status="FINISHED") == len(runs)
    # Every status is there from the start, zeros included.
    reported = {dict(labels)["status"] for name, labels in after if name == "exports_by_status"}
    assert reported == STATUSES
    assert value(after, "export_queue_depth") == 0
    assert value(after, "export_running_progress_rows") == 0
    assert value(after, "export_timeout_seconds") > 0
    # HTTP requests by route pattern, never by raw path.
    route = "/campaigns/{campaign_id}/exports"
    assert delta("http_requests_total", route=route, method="POST", status="202") == 1
    assert delta("http_requests_total", route=route, method="POST", status="404") == 1
    assert not any(
        CAMPAIGN in dict(labels).get("route", "")
        for name, labels in after
        if name.startswith("http")
    )
    # Faust's own sensors share the registry.
    assert any(name.startswith("faust_") for name, _ in after)


def test_consumer_lag_returns_to_zero_after_the_queue_drains(
    worker: Worker, kafka: KafkaClient
) -> None:
    ids = [f"lag-{uuid.uuid4().hex}" for _ in range(5)]
    for export_id in ids:
        event = {
            "type": "export.requested",
            "exportId": export_id,
            "campaignId": CAMPAIGN,
            "exportType": "codeWave",
            "params": {"waveId": export_id},
        }
        kafka.produce("exports", orjson.dumps(event))
    for export_id in ids:
        worker.wait_terminal(CAMPAIGN, export_id)

    def caught_up() -> Samples | None:
        samples = scrape(worker)
        lag = samples.get(("export_consumer_lag", (("partition", "0"), ("topic", "exports"))))
        return samples if lag == 0 else None

    caught_up_samples = wait_for(caught_up, timeout=60, what="consumer lag 0", every=0.5)
    assert value(caught_up_samples, "export_queue_depth") == 0


def _fixture_secrets() -> set[str]:
    secrets = set()
    for line in (DATA / "users.jsonl").read_text("utf-8").splitlines():
        user = orjson.loads(line)
        if user.get("email"):
            secrets.add(user["email"])
    return secrets


def check_json_log(log_path: Path, *, tokens: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every line of the worker's output is a JSON log entry; no PII or token in any."""
    text = log_path.read_text("utf-8")
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        entry = orjson.loads(line)  # fails the test on any non-JSON line
        assert {"ts", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    for secret in (*_fixture_secrets(), *tokens):
        assert secret not in text
    assert not EMAIL.search(text), EMAIL.search(text)
    return entries


def test_worker_logs_are_json_with_export_ids_and_no_pii(worker: Worker) -> None:
    status, created = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "fanlist"}
    )
    assert status in {200, 202}, created
    worker.wait_terminal(CAMPAIGN, created["id"])
    # A request carrying a token the worker refuses, and one of a caller without a token.
    worker.request("GET", f"/campaigns/{CAMPAIGN}/exports", token="Bearer.bad.token")
    time.sleep(0.5)
    entries = check_json_log(worker.log_path, tokens=(worker.token,))
    assert any(e["logger"].startswith(("faust", "mode", "aiokafka")) for e in entries)
    export_lines = [
        e
        for e in entries
        if created["id"] in e["message"] and e["logger"].startswith(("agents.", "exporters."))
    ]
    assert export_lines, "no log line about the export"
    for entry in export_lines:
        assert entry.get("export_id") == created["id"], entry
        assert entry.get("campaign_id") == CAMPAIGN, entry


def test_readiness_is_false_until_the_table_is_recovered(stack: LocalStack, tmp_path: Path) -> None:
    w = spawn_worker(stack, tmp_path, **dedicated_env("ready"))
    answers: list[tuple[int, Any]] = []
    try:

        def ready() -> bool:
            if w.process.poll() is not None:
                raise AssertionError(f"worker exited:\n{w.log_tail()}")
            try:
                answer = w.request("GET", "/ready")
            except OSError:
                return False
            answers.append(answer)
            return answer[0] == 200

        wait_for(ready, timeout=110, what="the dedicated worker to be ready", every=0.05)
        assert w.request("GET", "/heartbeat")[0] == 200
    finally:
        stop_worker(w)
    not_ready = [body for status, body in answers if status == 503]
    assert not_ready, "the worker never answered 503 before it was ready"
    assert any(body["checks"]["statusTable"] != "ok" for body in not_ready), not_ready
    for body in not_ready:
        assert body["status"] == "not ready"
        assert any(check != "ok" for check in body["checks"].values())
    status, body = answers[-1]
    assert status == 200
    assert body["checks"] == {
        "statusTable": "ok",
        "exportsPartition": "ok",
        "kafka": "ok",
        "mongodb": "ok",
        "s3": "ok",
    }
    assert w.process.returncode == 0


@pytest.mark.timeout(300)
def test_sigterm_during_an_export_leaves_no_partial_object_and_exits_0(
    stack: LocalStack, tmp_path: Path, s3: Any, big_campaign: int
) -> None:
    env = {**dedicated_env("sigterm"), "SHUTDOWN_GRACE_SECONDS": "1"}
    w = start_worker(stack, tmp_path, **env)
    try:
        status, big = w.request("POST", f"/campaigns/{BIG}/exports", {"exportType": "entries"})
        assert status == 202, big
        prefix = f"entries/{BIG}/{big['id']}/"

        def uploading() -> bool:
            body = w.get_export(BIG, big["id"]) or {}
            uploads = s3.list_multipart_uploads(Bucket="exports", Prefix=prefix)
            return body.get("status") == "TRIGGERED" and bool(uploads.get("Uploads"))

        wait_for(uploading, timeout=90, what="the big export to be uploading")
        w.process.send_signal(signal.SIGTERM)
        try:
            code = w.process.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit after SIGTERM:\n{w.log_tail()}") from None
    finally:
        stop_worker(w)
    assert code == 0, w.log_tail()
    assert not s3.list_objects_v2(Bucket="exports", Prefix=prefix).get("Contents")
    assert not s3.list_multipart_uploads(Bucket="exports", Prefix=prefix).get("Uploads")
    entries = check_json_log(w.log_path, tokens=(w.token,))
    cancelled = [e for e in entries if "cancelled by shutdown" in e["message"]]
    assert cancelled, w.log_tail()
    assert cancelled[0]["export_id"] == big["id"]

    # The next start runs it again (it was neither left TRIGGERED for good nor FINISHED).
    again = start_worker(stack, tmp_path, **env)
    try:
        done = again.wait_terminal(BIG, big["id"], timeout=150)
        assert done["status"] == "FINISHED", done
        assert done["rowCount"] == big_campaign
    finally:
        stop_worker(again)
    assert again.process.returncode == 0
