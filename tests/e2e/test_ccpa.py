"""CCPA deletion on the real stack: REST and Kafka requests, S3 objects gone, replays idempotent.

A worker of its own (own status table and topics), so that the deletion touches only the
exports made here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from devstack.stack import LocalStack
from tests.e2e.conftest import (
    KafkaClient,
    Worker,
    dedicated_env,
    start_worker,
    stop_worker,
    supreme_token,
    wait_for,
)

CAMPAIGN = "cmp-e2e"
USER = "usr-1"  # has entries in cmp-e2e
DELETED_TYPES = ("entries", "codes")
EXEMPT_TYPES = ("verifiedEntries", "scoring")


@pytest.fixture(scope="module")
def ccpa_worker(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, dict[str, str]]]:
    env = dedicated_env("ccpa")
    w = start_worker(stack, tmp_path_factory.mktemp("ccpa"), **env)
    yield w, env
    stop_worker(w)


def finished_exports(w: Worker) -> dict[str, dict[str, Any]]:
    """One FINISHED export of each type, by type."""
    done = {}
    for export_type in DELETED_TYPES + EXEMPT_TYPES:
        status, body = w.request(
            "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": export_type}
        )
        assert status in {200, 202}, body
        done[export_type] = body
    for export_type, body in done.items():
        done[export_type] = w.wait_terminal(CAMPAIGN, body["id"])
        assert done[export_type]["status"] == "FINISHED", done[export_type]
        assert done[export_type]["objects"]
    return done


def keys_exist(s3: Any, record: dict[str, Any]) -> list[bool]:
    found = []
    for obj in record["objects"]:
        try:
            s3.head_object(Bucket=record["bucket"], Key=obj["key"])
            found.append(True)
        except s3.exceptions.ClientError:
            found.append(False)
    return found


def wait_completed(w: Worker, request_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status, body = w.request("GET", f"/ccpa/requests/{request_id}")
        assert status == 200, body
        return body if body["status"] in {"COMPLETED", "FAILED"} else None

    return wait_for(done, timeout=120, what=f"CCPA request {request_id}")


def test_ccpa_needs_a_supreme_token(ccpa_worker: tuple[Worker, dict[str, str]]) -> None:
    w, _ = ccpa_worker
    reporter = supreme_token(sub="reporter", supreme=False, permissions={CAMPAIGN: ["REPORT"]})
    status, body = w.request("DELETE", f"/ccpa/users/{USER}", token=reporter)
    assert status == 403, body
    assert body["error"]["code"] == "FORBIDDEN"
    assert w.request("GET", "/ccpa/requests/whatever", token=reporter)[0] == 403
    assert w.request("DELETE", f"/ccpa/users/{USER}", token="")[0] == 401
    status, body = w.request("GET", f"/ccpa/requests/{uuid.uuid4().hex}")
    assert (status, body["error"]["code"]) == (404, "CCPA_REQUEST_NOT_FOUND")


def test_deletion_removes_non_exempt_exports_and_replays_change_nothing(
    ccpa_worker: tuple[Worker, dict[str, str]], kafka: KafkaClient, s3: Any
) -> None:
    w, env = ccpa_worker
    exports = finished_exports(w)
    for record in exports.values():
        assert all(keys_exist(s3, record))

    status, accepted = w.request("DELETE", f"/ccpa/users/{USER}")
    assert status == 202, accepted
    assert accepted["status"] == "PENDING"
    assert accepted["userId"] == USER
    request_id = accepted["requestId"]

    result = wait_completed(w, request_id)
    assert result["status"] == "COMPLETED", result
    summary = result["summary"]
    assert CAMPAIGN in summary["campaignIds"]
    deleted = {d["exportId"]: d for d in summary["deleted"]}
    exempt = {e["exportId"]: e for e in summary["exempt"]}
    for export_type in DELETED_TYPES:
        record = exports[export_type]
        assert deleted[record["id"]]["objectCount"] == len(record["objects"])
        assert deleted[record["id"]]["exportType"] == export_type
        assert not any(keys_exist(s3, record)), export_type
        now = w.get_export(CAMPAIGN, record["id"])
        assert now is not None
        assert now["status"] == "DELETED"
        assert now["deletedBy"] == f"ccpa:{request_id}"
        assert now["deletedAt"]
        assert "downloadUrls" not in now
    for export_type in EXEMPT_TYPES:
        record = exports[export_type]
        assert record["id"] in exempt
        assert record["id"] not in deleted
        assert all(keys_exist(s3, record)), export_type
        now = w.get_export(CAMPAIGN, record["id"])
        assert now is not None
        assert now["status"] == "FINISHED"
    assert summary["deletedObjectCount"] == sum(len(exports[t]["objects"]) for t in DELETED_TYPES)

    events = kafka.consumer(env["TOPIC_EXPORT_EVENTS"])
    event = kafka.find(events, lambda m: m.get("requestId") == request_id)
    assert event["type"] == "ccpa.deletion_completed"
    assert event["summary"] == summary

    # Replayed from upstream: nothing new happens. A Kafka request behind it shows when
    # the replay has been consumed.
    kafka.produce(
        env["TOPIC_EXPORTS"],
        orjson.dumps({"type": "ccpa.deletion_requested", "requestId": request_id, "userId": USER}),
    )
    marker = f"marker-{uuid.uuid4().hex}"
    kafka.produce(
        env["TOPIC_EXPORTS"],
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": marker,
                "campaignId": "cmp-other",
                "exportType": "codes",
            }
        ),
    )
    w.wait_terminal("cmp-other", marker)
    assert w.request("GET", f"/ccpa/requests/{request_id}")[1] == result
    replay_events = kafka.collect(events, lambda m: m.get("requestId") == request_id)
    assert replay_events == []


def test_upstream_can_publish_a_deletion_directly(
    ccpa_worker: tuple[Worker, dict[str, str]], kafka: KafkaClient, s3: Any
) -> None:
    w, env = ccpa_worker
    exports = finished_exports(w)
    request_id = f"upstream-{uuid.uuid4().hex}"
    kafka.produce(
        env["TOPIC_EXPORTS"],
        orjson.dumps(
            {
                "type": "ccpa.deletion_requested",
                "requestId": request_id,
                "userId": USER,
                "requestedBy": "privacy-portal",
            }
        ),
    )

    def completed() -> dict[str, Any] | None:
        status, body = w.request("GET", f"/ccpa/requests/{request_id}")
        return body if status == 200 and body["status"] == "COMPLETED" else None

    result = wait_for(completed, timeout=120, what="the upstream deletion")
    assert (result["source"], result["requestedBy"]) == ("kafka", "privacy-portal")
    # only what this request deleted: exports deleted by an earlier request are not listed
    assert {d["exportId"] for d in result["summary"]["deleted"]} == {
        exports[t]["id"] for t in DELETED_TYPES
    }
    assert {exports[t]["id"] for t in EXEMPT_TYPES} <= {
        e["exportId"] for e in result["summary"]["exempt"]
    }
    for export_type in DELETED_TYPES:
        assert not any(keys_exist(s3, exports[export_type]))
