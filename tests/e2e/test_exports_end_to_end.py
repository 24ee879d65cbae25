"""A real worker process, real Kafka, FerretDB and moto: exports requested over REST and Kafka."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import urllib.request
import uuid
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import KafkaClient, Worker
from tests.e2e.expected import codes_rows, entries_rows

CAMPAIGN = "cmp-e2e"
ENTRIES_HEADER = [
    "entryId",
    "userId",
    "email",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "countryCode",
    "locale",
    "marketId",
    "marketName",
    "marketCity",
    "marketState",
    "eventDate",
    "isPrimaryMarket",
    "verified",
    "artistOptIn",
    "smsOptIn",
    "livenationOptIn",
    "createdAt",
    "campaignId",
    "campaignName",
]
CODES_HEADER = [
    "code",
    "type",
    "status",
    "marketId",
    "marketName",
    "assignedUserId",
    "assignedAt",
    "waveId",
]


def parse_csv(body: bytes) -> list[list[str]]:
    assert not body.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert body.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True))


def no_uploads_in_progress(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_rest_entries_export_downloads_every_expected_row(worker: Worker, s3: Any) -> None:
    status, created = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "entries"}
    )
    assert status == 202, created
    assert created["status"] == "PENDING"
    assert created["source"] == "rest"

    done = worker.wait_terminal(CAMPAIGN, created["id"])
    assert done["status"] == "FINISHED", done
    (obj,) = done["objects"]
    assert (
        obj["key"]
        == f"entries/{CAMPAIGN}/{created['id']}/Tour Ünïcødé, 2026 🎶 Night Day - entries.csv"
    )
    assert done["bucket"] == "exports"

    # the presigned URL is a plain HTTP download, as an admin would use it
    (download,) = done["downloadUrls"]
    with urllib.request.urlopen(download["url"], timeout=10) as response:
        body = response.read()
    assert len(body) == obj["size"]
    assert hashlib.sha256(body).hexdigest() == obj["sha256"]

    rows = parse_csv(body)
    assert rows[0] == ENTRIES_HEADER
    expected = entries_rows(CAMPAIGN)
    assert sorted(rows[1:]) == sorted(expected)
    assert done["rowCount"] == len(expected) == 8  # 2 + 3 + 1 + 1 + 1 markets
    assert done["skippedCount"] == 1  # ent-5's user no longer exists
    assert done["totalCount"] == 6
    assert no_uploads_in_progress(s3, "exports")


def test_kafka_request_codes_export_is_announced_and_complete(
    worker: Worker, kafka: KafkaClient, s3: Any
) -> None:
    export_id = f"kafka-{uuid.uuid4().hex}"
    events = kafka.consumer("export-events")
    kafka.produce(
        "exports",
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": export_id,
                "campaignId": CAMPAIGN,
                "exportType": "codes",
                "params": {},
                "requestedBy": "ticketing",
                "requestedAt": dt.datetime.now(dt.UTC).isoformat(),
            }
        ),
    )
    event = kafka.find(events, lambda e: e.get("exportId") == export_id)
    assert event["type"] == "export.finished"
    assert event["status"] == "FINISHED"
    assert event["source"] == "kafka"
    assert event["requestedBy"] == "ticketing"
    (key,) = event["keys"]
    body = s3.get_object(Bucket=event["bucket"], Key=key)["Body"].read()
    rows = parse_csv(body)
    assert rows[0] == CODES_HEADER
    assert sorted(rows[1:]) == sorted(codes_rows(CAMPAIGN))
    assert event["rowCount"] == 5
    assert event["skippedCount"] == 0
    assert event["objects"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    # the REST view sees the same record
    record = worker.get_export(CAMPAIGN, export_id)
    assert record is not None
    assert record["status"] == "FINISHED"


def test_a_duplicate_rest_request_returns_the_active_export(worker: Worker) -> None:
    body = {"exportType": "codes", "params": {}}
    first_status, first = worker.request("POST", f"/campaigns/{CAMPAIGN}/exports", body)
    second_status, second = worker.request("POST", f"/campaigns/{CAMPAIGN}/exports", body)
    assert first_status == 202
    if second_status == 200:
        assert second["id"] == first["id"]
    else:
        # the first one had already finished: a new request is then a new export
        assert second_status == 202
        assert worker.get_export(CAMPAIGN, first["id"])["status"] == "FINISHED"  # type: ignore[index]
    worker.wait_terminal(CAMPAIGN, second["id"])


def test_an_export_of_an_unknown_campaign_fails_with_a_code_and_an_event(
    worker: Worker, kafka: KafkaClient
) -> None:
    export_id = f"kafka-{uuid.uuid4().hex}"
    events = kafka.consumer("export-events")
    kafka.produce(
        "exports",
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": export_id,
                "campaignId": "cmp-missing",
                "exportType": "entries",
            }
        ),
    )
    event = kafka.find(events, lambda e: e.get("exportId") == export_id)
    assert event["type"] == "export.failed"
    assert event["error"]["code"] == "CAMPAIGN_NOT_FOUND"
    assert worker.get_export("cmp-missing", export_id)["status"] == "FAILED"  # type: ignore[index]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "INVALID_JSON"),
        (b'{"type": "export.requested", "campaignId": "c"}', "INVALID_EVENT"),
        (b'{"type": "something.else"}', "INVALID_EVENT"),
        (
            b'{"type": "export.requested", "exportId": "e1", "campaignId": "c", '
            b'"exportType": "nope"}',
            "UNKNOWN_EXPORT_TYPE",
        ),
    ],
)
def test_unusable_events_go_to_the_dead_letter_topic_with_the_original_bytes(
    worker: Worker, kafka: KafkaClient, raw: bytes, reason: str
) -> None:
    marker = uuid.uuid4().hex.encode()
    # a unique marker in the bytes finds this test's message among earlier ones
    payload = (
        raw.replace(b"{", b'{"marker": "' + marker + b'", ', 1)
        if raw != b"{not json"
        else raw + marker
    )
    dlq = kafka.consumer("exports-dlq")
    kafka.produce("exports", payload, invalid=True)  # the AsyncAPI document refuses it too
    message = kafka.find(dlq, lambda m: bytes.fromhex(m["originalHex"]) == payload)
    assert message["reason"] == reason
    assert message["origin"]["topic"] == "exports"
    assert message["original"] == payload.decode()
