"""Queue semantics under concurrency, faults and restarts (issue 4), on the real processes.

Tests that stop a service or kill a worker use a worker of their own (own consumer group,
changelog and topics, see `dedicated_env`) and restart what they stopped before they end.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.stack import KAFKA, MONGO, S3, LocalStack
from tests.e2e.conftest import (
    BIG,
    KafkaClient,
    Worker,
    dedicated_env,
    start_worker,
    stop_worker,
    wait_for,
)

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
    stack: LocalStack, tmp_path: Path, kafka: KafkaClient, big_campaign: int
) -> None:
    env = dedicated_env("liveness")
    # The row engine with small batches: the big export must outlast the consumer's session
    # timeout (6 s, the broker's least) however fast the machine is (the columnar engine
    # wrote it in 5.5 s on a fast one).
    worker = start_worker(stack, tmp_path, EXPORT_ENGINE="rows", MONGO_BATCH_SIZE="50", **env)
    try:
        _duplicates_collapse_and_the_worker_stays_live(worker, kafka, env)
    finally:
        stop_worker(worker)


def _duplicates_collapse_and_the_worker_stays_live(
    worker: Worker, kafka: KafkaClient, env: dict[str, str]
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
        env["TOPIC_EXPORTS"],
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
    # The export is frozen mid-upload (MongoDB stopped with SIGSTOP: reads hang, nothing
    # fails), so the 14 s limit ends it however fast the machine writes rows.
    w = start_worker(stack, tmp_path, EXPORT_TIMEOUT_SECONDS="14", **env)
    try:
        big = post(w, BIG, "entries")
        after = post(w, CAMPAIGN, "codes")
        wait_running(w, big["id"], rows=2000)
        stack.kill_process(MONGO, signal.SIGSTOP)
        try:
            assert uploads_under(s3, big_prefix(big["id"])) != [], "no upload to cancel"
            expired = w.wait_terminal(BIG, big["id"], timeout=120)
            assert uploads_under(s3, big_prefix(big["id"])) == []
        finally:
            stack.kill_process(MONGO, signal.SIGCONT)
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


def _ready_check(worker: Worker, name: str) -> str:
    """What /ready says of one check: "ok", or its failure while /ready answers 503."""
    status, body = worker.request("GET", "/ready")
    assert isinstance(body, dict), body
    said = str(body["checks"][name])
    assert (status == 200) == all(v == "ok" for v in body["checks"].values()), body
    return said


def _reports_outage(worker: Worker, name: str) -> bool:
    return _ready_check(worker, name) != "ok"


def _outage(stack: LocalStack, worker: Worker, name: str, check: str) -> None:
    """Stop one dependency, see /ready report it, start it again, see /ready recover."""
    stack.stop_process(name)
    try:
        wait_for(
            lambda: _reports_outage(worker, check),
            timeout=60,
            what=f"/ready to report the {name} outage",
        )
    finally:
        stack.start_process(name)
    wait_for(
        lambda: _ready_check(worker, check) == "ok",
        timeout=120,
        what=f"/ready to see {name} again",
    )


def _assert_whole(s3: Any, record: dict[str, Any], rows: int) -> None:
    """FINISHED with every row, its objects as recorded, nothing else under its prefix."""
    assert record["status"] == "FINISHED", record
    assert record["rowCount"] == rows
    prefix = big_prefix(record["id"])
    assert objects_under(s3, prefix) == sorted(o["key"] for o in record["objects"])
    for obj in record["objects"]:
        body = s3.get_object(Bucket=BUCKET, Key=obj["key"])["Body"].read()
        assert len(body) == obj["size"]
        assert hashlib.sha256(body).hexdigest() == obj["sha256"]
    assert uploads_under(s3, prefix) == []


def test_outages_of_mongodb_s3_and_the_broker_mid_export_end_finished(
    stack: LocalStack,
    own_worker: tuple[Worker, dict[str, str]],
    kafka: KafkaClient,
    s3: Any,
    big_campaign: int,
) -> None:
    w, env = own_worker

    # MongoDB goes away and comes back while one export runs, S3 while the next one runs;
    # requests made before the outages wait in the queue.
    big = post(w, BIG, "entries")
    queued = [post(w, CAMPAIGN, "codes"), post(w, CAMPAIGN, "fanlist")]
    wait_running(w, big["id"], rows=2000)
    _outage(stack, w, MONGO, "mongodb")
    during = w.get_export(BIG, big["id"])
    assert during is not None
    assert during["status"] == "TRIGGERED", during  # retried, not failed
    _assert_whole(s3, w.wait_terminal(BIG, big["id"], timeout=300), big_campaign)
    second = post(w, BIG, "entries")
    wait_running(w, second["id"], rows=2000)
    _outage(stack, w, S3, "s3")
    _assert_whole(s3, w.wait_terminal(BIG, second["id"], timeout=300), big_campaign)

    # The broker goes away mid-export: REST refuses new work with 503 in the spec's shape,
    # /ready says why, and both recover by themselves once it is back.
    again = post(w, BIG, "entries")
    wait_running(w, again["id"], rows=2000)
    stack.stop_process(KAFKA)
    try:
        wait_for(lambda: _reports_outage(w, "kafka"), timeout=60, what="/ready: kafka")
        refused = wait_for(
            lambda: _refused(w),
            timeout=60,
            what="a POST refused with 503 while the broker is down",
        )
        assert set(refused["error"]) == {"code", "message", "details"}, refused
        assert refused["error"]["code"] == "QUEUE_UNAVAILABLE", refused
    finally:
        stack.start_process(KAFKA)
    after = wait_for(lambda: _accepted(w), timeout=180, what="a POST accepted again")
    _assert_whole(s3, w.wait_terminal(BIG, again["id"], timeout=300), big_campaign)
    for request in [*queued, after]:
        done = w.wait_terminal(CAMPAIGN, request["id"], timeout=180)
        assert done["status"] == "FINISHED", done
    assert _ready_check(w, "kafka") == "ok"
    events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
    results = kafka.collect(events, lambda m: m["type"].startswith("export."))
    by_export = {m["exportId"]: m["type"] for m in results}
    ids = [big["id"], second["id"], again["id"], *(r["id"] for r in queued), after["id"]]
    assert {i: by_export.get(i) for i in ids} == dict.fromkeys(ids, "export.finished")


def _refused(worker: Worker) -> dict[str, Any] | None:
    status, body = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "codes", "params": {}}
    )
    if status == 202:
        raise AssertionError(f"accepted with the broker down: {body}")
    return dict(body) if status == 503 and isinstance(body, dict) else None


def _accepted(worker: Worker) -> dict[str, Any] | None:
    status, body = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "waitlist", "params": {}}
    )
    # 200: a request kept while the broker was away, and this one its duplicate.
    return dict(body) if status in (200, 202) else None


def _fails_while_away(stack: LocalStack, worker: Worker, name: str) -> dict[str, Any]:
    """A big export with `name` stopped mid-run until the export has ended; its record."""
    big = post(worker, BIG, "entries")
    wait_running(worker, big["id"], rows=2000)
    stack.stop_process(name)
    try:
        return worker.wait_terminal(BIG, big["id"], timeout=120)
    finally:
        stack.start_process(name)


def test_outages_longer_than_the_retry_budget_fail_and_leave_nothing(
    stack: LocalStack, tmp_path: Path, kafka: KafkaClient, s3: Any, big_campaign: int
) -> None:
    env = dedicated_env("budget")
    w = start_worker(stack, tmp_path, RETRY_BUDGET_SECONDS="3", CLEANUP_RETRY_SECONDS="2", **env)
    try:
        # MongoDB stays away past the budget: FAILED, and S3 holds nothing of it.
        failed = _fails_while_away(stack, w, MONGO)
        assert failed["status"] == "FAILED"
        assert failed["error"]["code"] == "SOURCE_UNAVAILABLE", failed["error"]
        assert objects_under(s3, big_prefix(failed["id"])) == []
        assert uploads_under(s3, big_prefix(failed["id"])) == []

        # S3 stays away: FAILED UPLOAD_FAILED; once S3 is back, the clean-up the outage
        # refused is done again (SeaweedFS kept the upload), and the next export runs.
        failed = _fails_while_away(stack, w, S3)
        assert failed["status"] == "FAILED"
        assert failed["error"]["code"] == "UPLOAD_FAILED", failed["error"]
        assert failed["objects"] == []
        wait_for(
            lambda: uploads_under(s3, big_prefix(failed["id"])) == [],
            timeout=120,
            what="the failed export's upload to be aborted once S3 is back",
        )
        assert objects_under(s3, big_prefix(failed["id"])) == []

        later = post(w, CAMPAIGN, "codes")
        done = w.wait_terminal(CAMPAIGN, later["id"], timeout=120)
        assert done["status"] == "FINISHED"
        events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
        got = kafka.collect(events, lambda m: True)
        assert [m["type"] for m in got] == ["export.failed"] * 2 + ["export.finished"]
    finally:
        stop_worker(w)


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
