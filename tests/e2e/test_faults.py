"""Queue semantics under concurrency, faults and restarts (issue 4), on the real processes.

Tests that stop a service or kill a worker use a worker of their own (own consumer group,
changelog and topics, see `dedicated_env`) and restart what they stopped before they end.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.dataset import upload_sms_waves
from devstack.stack import MONGO, S3, LocalStack
from tests.e2e.conftest import (
    BIG,
    KafkaClient,
    Worker,
    dedicated_env,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.e2e.expected import DATA

CAMPAIGN = "cmp-e2e"
BUCKET = "exports"
REBALANCE_MARKERS = ("Revoking previously assigned partitions", "Restarting on rebalance")


def big_prefix(export_id: str) -> str:
    return f"entries/{BIG}/{export_id}/"


def objects_under(s3: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in response.get("Contents", []))


def uploads_under(s3: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    response = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [u["Key"] for u in response.get("Uploads", [])]


def post(worker: Worker, campaign: str, export_type: str) -> dict[str, Any]:
    status, body = worker.request(
        "POST", f"/campaigns/{campaign}/exports", {"exportType": export_type}
    )
    assert status == 202, body
    return dict(body)


def wait_running(worker: Worker, export_id: str, *, rows: int = 1) -> dict[str, Any]:
    """The big export once it is TRIGGERED and has written at least `rows` rows."""

    def running() -> dict[str, Any] | None:
        body = worker.get_export(BIG, export_id)
        if body and body["status"] == "TRIGGERED" and body["rowCount"] >= rows:
            return body
        if body and body["status"] not in {"PENDING", "TRIGGERED"}:
            raise AssertionError(f"the export ended before it wrote {rows} rows: {body}")
        return None

    return wait_for(running, timeout=120, what=f"export {export_id} to be running")


def rebalances(worker: Worker) -> int:
    text = worker.log_path.read_text(errors="replace")
    return sum(text.count(marker) for marker in REBALANCE_MARKERS)


@pytest.fixture
def own_worker(stack: LocalStack, tmp_path: Path) -> Iterator[tuple[Worker, dict[str, str]]]:
    env = dedicated_env("faults")
    w = start_worker(stack, tmp_path, **env)
    yield w, env
    stop_worker(w)


# 1 + 6: the duplicate rule under concurrency, and liveness during a long export


def test_duplicates_collapse_and_the_worker_stays_live_during_a_long_export(
    worker: Worker, kafka: KafkaClient, big_campaign: int
) -> None:
    rebalances_before = rebalances(worker)
    big = post(worker, BIG, "entries")
    wait_running(worker, big["id"])

    # Eight identical requests at once, while the queue is busy: one export.
    barrier = threading.Barrier(8)

    def request_codes(_: int) -> tuple[int, Any]:
        barrier.wait()
        return worker.request("POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "codes"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(request_codes, range(8)))
    assert sorted(status for status, _ in answers) == [200] * 7 + [202], answers
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 1
    (codes_id,) = ids

    # The same request from Kafka under a new id points to that export.
    kafka_id = f"dup-{uuid.uuid4().hex}"
    kafka.produce(
        "exports",
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": kafka_id,
                "campaignId": CAMPAIGN,
                "exportType": "codes",
            }
        ),
    )
    aliased = wait_for(
        lambda: worker.get_export(CAMPAIGN, kafka_id), timeout=30, what="the Kafka duplicate"
    )
    assert aliased["id"] == codes_id
    listed = worker.request("GET", f"/campaigns/{CAMPAIGN}/exports?exportType=codes&limit=200")[1]
    assert [r["id"] for r in listed["items"] if r["status"] in {"PENDING", "TRIGGERED"}] == [
        codes_id
    ]

    # Liveness: heartbeats answer quickly all along the export, and no rebalance happens.
    latencies = []
    while (worker.get_export(BIG, big["id"]) or {}).get("status") == "TRIGGERED":
        started = time.monotonic()
        assert worker.request("GET", "/heartbeat")[0] == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.25)
    done = worker.wait_terminal(BIG, big["id"], timeout=300)
    assert done["status"] == "FINISHED"
    duration = _seconds(done["finishedAt"]) - _seconds(done["triggeredAt"])
    print(f"\nbig export {duration:.1f} s; heartbeat max {max(latencies) * 1000:.0f} ms")
    assert latencies
    assert max(latencies) < 2.0
    # longer than the consumer's session timeout (6 s here): a blocked loop would be evicted
    assert duration > 6
    assert rebalances(worker) == rebalances_before, worker.log_tail()
    assert worker.wait_terminal(CAMPAIGN, codes_id)["status"] == "FINISHED"


def _seconds(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


# 3: timeout


def test_an_export_over_the_timeout_expires_leaves_nothing_and_the_next_one_runs(
    stack: LocalStack, tmp_path: Path, kafka: KafkaClient, s3: Any, big_campaign: int
) -> None:
    env = dedicated_env("timeout")
    events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
    # The limit counts from the pick: preparing (the count of 80k entries, checked twice by
    # the verifying FerretDB) takes ~6 s, writing the 160k rows ~20 s more: 14 s cancels the
    # export mid-upload.
    w = start_worker(stack, tmp_path, EXPORT_TIMEOUT_SECONDS="14", **env)
    try:
        big = post(w, BIG, "entries")
        after = post(w, CAMPAIGN, "codes")
        wait_running(w, big["id"], rows=2000)
        assert uploads_under(s3, big_prefix(big["id"])) != [], "no upload in progress to cancel"
        expired = w.wait_terminal(BIG, big["id"], timeout=120)
        assert expired["status"] == "EXPIRED"
        assert expired["error"]["code"] == "EXPORT_TIMEOUT"
        assert expired["objects"] == []
        event = kafka.find(events, lambda m: m.get("exportId") == big["id"])
        assert (event["type"], event["status"]) == ("export.expired", "EXPIRED")
        # no object and no in-progress multipart upload under the export's prefix
        assert objects_under(s3, big_prefix(big["id"])) == []
        assert uploads_under(s3, big_prefix(big["id"])) == []
        nxt = w.wait_terminal(CAMPAIGN, after["id"])
        assert nxt["status"] == "FINISHED"
        assert nxt["triggeredAt"] >= expired["finishedAt"]
        assert expired["rowCount"] >= 2000
        ran = _seconds(expired["finishedAt"]) - _seconds(expired["triggeredAt"])
        print(f"\nexpired {ran:.1f} s after its trigger, {expired['rowCount']} rows written")
    finally:
        stop_worker(w)


# 4: failure isolation


def test_database_and_s3_outages_fail_the_export_and_the_worker_goes_on(
    stack: LocalStack,
    own_worker: tuple[Worker, dict[str, str]],
    kafka: KafkaClient,
    s3: Any,
    big_campaign: int,
) -> None:
    w, env = own_worker

    # MongoDB goes away mid-export: FAILED, and S3 (still up, state kept) holds nothing.
    big = post(w, BIG, "entries")
    wait_running(w, big["id"], rows=2000)
    stack.stop_process(MONGO)
    try:
        failed = w.wait_terminal(BIG, big["id"], timeout=180)
    finally:
        stack.start_process(MONGO)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "SOURCE_UNAVAILABLE", failed["error"]
    assert objects_under(s3, big_prefix(big["id"])) == []
    assert uploads_under(s3, big_prefix(big["id"])) == []
    assert w.request("GET", "/heartbeat")[0] == 200

    # S3 goes away mid-export: FAILED with UPLOAD_FAILED; an export requested during the
    # outage fails too, and the worker goes on once S3 is back.
    big = post(w, BIG, "entries")
    wait_running(w, big["id"], rows=2000)
    stack.stop_process(S3)
    try:
        failed = w.wait_terminal(BIG, big["id"], timeout=300)
        during = post(w, CAMPAIGN, "codes")
        failed_during = w.wait_terminal(CAMPAIGN, during["id"], timeout=300)
    finally:
        _restart_s3(stack)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "UPLOAD_FAILED", failed["error"]
    assert failed["objects"] == []
    assert failed_during["status"] == "FAILED"
    assert failed_during["error"]["code"] == "UPLOAD_FAILED", failed_during["error"]
    # moto keeps no state over a restart: the listings only show nothing was re-created.
    assert objects_under(s3, big_prefix(big["id"])) == []
    assert uploads_under(s3, big_prefix(big["id"])) == []

    later = post(w, CAMPAIGN, "codes")
    done = w.wait_terminal(CAMPAIGN, later["id"], timeout=120)
    assert done["status"] == "FINISHED"
    assert [o["key"] for o in done["objects"]] == objects_under(
        s3, f"codes/{CAMPAIGN}/{later['id']}/"
    )
    events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
    got = kafka.collect(events, lambda m: True)
    assert [m["type"] for m in got] == ["export.failed"] * 3 + ["export.finished"]


def _restart_s3(stack: LocalStack) -> None:
    """Start moto again (buckets re-created) and put back the dataset's S3 files."""
    stack.start_process(S3)
    env = stack.env
    upload_sms_waves(
        DATA,
        s3_endpoint_url=stack.s3_endpoint_url,
        bucket=env["S3_BUCKET_VF_SCORING"],
        access_key=env["S3_ACCESS_KEY_ID"],
        secret_key=env["S3_SECRET_ACCESS_KEY"],
        region=env["S3_REGION"],
    )


# 5: crash safety


def test_a_worker_killed_mid_export_is_replaced_and_the_export_ends_once(
    stack: LocalStack, tmp_path: Path, kafka: KafkaClient, s3: Any, big_campaign: int
) -> None:
    env = dedicated_env("crash")
    first = start_worker(stack, tmp_path, **env)
    try:
        big = post(first, BIG, "entries")
        wait_running(first, big["id"], rows=4000)
        # parts of the first attempt are in S3, not yet an object
        assert uploads_under(s3, big_prefix(big["id"])) != []
        first.process.kill()
        first.process.wait(10)
    finally:
        stop_worker(first)

    started = time.monotonic()
    second = start_worker(stack, tmp_path, **env)
    try:
        done = second.wait_terminal(BIG, big["id"], timeout=300)
        print(f"\nreplacement worker finished the export {time.monotonic() - started:.1f} s later")
        assert done["status"] == "FINISHED"
        assert done["rowCount"] == big_campaign
        keys = objects_under(s3, big_prefix(big["id"]))
        assert keys == [o["key"] for o in done["objects"]]
        assert len(keys) == 1
        assert uploads_under(s3, big_prefix(big["id"])) == []
        listed = second.request("GET", f"/campaigns/{BIG}/exports?limit=200")[1]["items"]
        assert not [r for r in listed if r["status"] in {"TRIGGERED", "PENDING"}]

        # Redelivery of the finished request does not run it again: a request sent after
        # it finishes first, and the finished export is unchanged.
        kafka.produce(
            env["TOPIC_EXPORTS"],
            orjson.dumps(
                {
                    "type": "export.requested",
                    "exportId": big["id"],
                    "campaignId": BIG,
                    "exportType": "entries",
                }
            ),
        )
        marker_id = f"marker-{uuid.uuid4().hex}"
        kafka.produce(
            env["TOPIC_EXPORTS"],
            orjson.dumps(
                {
                    "type": "export.requested",
                    "exportId": marker_id,
                    "campaignId": CAMPAIGN,
                    "exportType": "codes",
                }
            ),
        )
        assert second.wait_terminal(CAMPAIGN, marker_id)["status"] == "FINISHED"
        again = second.get_export(BIG, big["id"])
        assert again is not None
        assert (again["status"], again["finishedAt"]) == ("FINISHED", done["finishedAt"])

        events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
        terminal = kafka.collect(events, lambda m: m.get("exportId") == big["id"])
        assert [m["type"] for m in terminal] == ["export.finished"]
    finally:
        stop_worker(second)


# 9: standby failover


def test_a_standby_worker_takes_over_when_the_active_one_is_killed(
    stack: LocalStack, tmp_path: Path, s3: Any, big_campaign: int
) -> None:
    env = dedicated_env("standby")
    first = start_worker(stack, tmp_path, **env)
    workers = [first]
    try:
        second = start_worker(stack, tmp_path, ready_path="/heartbeat", **env)
        workers.append(second)
        big = post(first, BIG, "entries")

        def runner() -> Worker | None:
            for w in workers:
                if f"export {big['id']} TRIGGERED" in w.log_path.read_text(errors="replace"):
                    return w
            return None

        active = wait_for(runner, timeout=120, what="one of the two workers to run the export")
        (standby,) = [w for w in workers if w is not active]
        wait_running(active, big["id"], rows=2000)
        # The standby's web server answers, and its table reads are routed to the owner.
        assert standby.request("GET", "/heartbeat")[0] == 200
        path = f"/campaigns/{BIG}/exports/{big['id']}"
        status, on_standby = standby.request("GET", path)
        assert status == 200, on_standby
        status, on_active = active.request("GET", path)
        assert status == 200, on_active
        assert on_standby["id"] == on_active["id"] == big["id"]
        assert on_standby["createdAt"] == on_active["createdAt"]
        assert on_standby["status"] == on_active["status"] == "TRIGGERED"
        status, listed = standby.request("GET", f"/campaigns/{BIG}/exports?exportType=entries")
        assert status == 200, listed
        assert big["id"] in [item["id"] for item in listed["items"]]
        # the owner still checks the token
        assert standby.request("GET", path, token="")[0] == 401
        active.process.kill()
        active.process.wait(10)

        started = time.monotonic()
        done = standby.wait_terminal(BIG, big["id"], timeout=300)
        print(
            f"\nthe standby finished the export {time.monotonic() - started:.1f} s after the kill"
        )
        assert done["status"] == "FINISHED"
        assert done["rowCount"] == big_campaign
        assert objects_under(s3, big_prefix(big["id"])) == [o["key"] for o in done["objects"]]
        assert uploads_under(s3, big_prefix(big["id"])) == []
        # and it goes on with new requests
        assert (
            standby.wait_terminal(CAMPAIGN, post(standby, CAMPAIGN, "codes")["id"])["status"]
            == "FINISHED"
        )
    finally:
        for w in workers:
            stop_worker(w)
