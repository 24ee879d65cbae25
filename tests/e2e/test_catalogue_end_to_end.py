"""Every export type on the real stack, requested over REST or Kafka, read back from S3."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zipfile
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import KafkaClient, Worker

CAMPAIGN = "cmp-e2e"
NAME = 'Tour "Ünïcødé", 2026 🎶\nNight/Day'

HEADERS = {
    "scoring": "userId,entryId,email,marketId,score,rank,tier,verified,selected",
    "waitlist": "userId,email,firstName,lastName,phone,marketId,marketName,score,rank",
    "fanlist": "userId,email,firstName,lastName,phone,postalCode,countryCode,locale,marketCount,"
    "firstEntryAt",
    "optIn": "email,firstName,lastName,postalCode,countryCode,locale,optInAt",
    "reminder": "SubscriberKey,EmailAddress,FirstName,Locale,MarketName,EventDate,PresaleCode,"
    "CampaignName",
    "entries": "entryId,userId,email,firstName,lastName,phone,postalCode,countryCode,locale,"
    "marketId,marketName,marketCity,marketState,eventDate,isPrimaryMarket,verified,artistOptIn,"
    "smsOptIn,livenationOptIn,createdAt,campaignId,campaignName",
}

# type -> (params, bucket, header, {file: row count}) worked out by hand from tests/e2e/data
CATALOGUE: dict[str, tuple[dict[str, Any], str, str, dict[str, int]]] = {
    "verifiedEntries": ({}, "vf-scoring", HEADERS["entries"], {"csv": 4}),
    "codes": (
        {},
        "exports",
        "code,type,status,marketId,marketName,assignedUserId,assignedAt,waveId",
        {"csv": 5},
    ),
    "codeAssignments": (
        {},
        "exports",
        "code,marketId,marketName,userId,email,firstName,lastName,entryId,assignedAt,waveId",
        {"csv": 2},
    ),
    "codeWave": (
        {"waveId": "wave-1"},
        "exports",
        "code,userId,email,phone,firstName,marketId,marketName,waveId",
        {"csv": 2},
    ),
    "scoring": ({}, "scoring", HEADERS["scoring"], {"csv": 4}),
    "optInScoring": ({}, "scoring", HEADERS["scoring"], {"csv": 3}),
    "vfScoring": ({}, "vf-scoring", HEADERS["scoring"], {"csv": 2}),
    "waitlist": ({}, "exports", HEADERS["waitlist"], {"csv": 1}),
    "fanlist": ({}, "exports", HEADERS["fanlist"], {"csv": 5}),
    "artistOptIn": ({}, "exports", HEADERS["optIn"], {"csv": 2}),
    "smsOptIn": ({}, "exports", "phone,firstName,lastName,countryCode,marketName", {"csv": 1}),
    "promoterOptIn": (
        {},
        "exports",
        "email,firstName,lastName,postalCode,countryCode,promoterId,promoterName",
        {"p1.csv": 1},
    ),
    "livenationOptIn": ({}, "exports", HEADERS["optIn"], {"csv": 2}),
    "reminderEmail": (
        {},
        "exports",
        HEADERS["reminder"],
        {"NA/en-us_1.csv": 1, "UK/en-gb_1.csv": 1},
    ),
    "reminderEmailSample": (
        {"sampleSize": 5},
        "exports",
        HEADERS["reminder"],
        {"NA/en-us_1.csv": 1, "UK/en-gb_1.csv": 1},
    ),
    "autoReminderEmail": ({}, "sfmc", HEADERS["reminder"], {"NA": 1, "UK": 1}),
}


def parse(body: bytes) -> list[list[str]]:
    assert body.endswith(b"\r\n")
    assert not body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True))


def files_of(record: dict[str, Any], s3: Any) -> dict[str, list[list[str]]]:
    """Every CSV of a finished export: its objects, or the members of its ZIP."""
    files: dict[str, list[list[str]]] = {}
    for obj in record["objects"]:
        body = s3.get_object(Bucket=record["bucket"], Key=obj["key"])["Body"].read()
        if obj["key"].endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                assert archive.testzip() is None
                files.update({n: parse(archive.read(n)) for n in archive.namelist()})
        elif record["exportType"] == "autoReminderEmail":
            files[obj["key"].split("/", 1)[0]] = parse(body)
        else:
            files["csv"] = parse(body)
    return files


def request_over_kafka(kafka: KafkaClient, export_type: str, params: dict[str, Any]) -> str:
    export_id = f"cat-{uuid.uuid4().hex}"
    kafka.produce(
        "exports",
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": export_id,
                "campaignId": CAMPAIGN,
                "exportType": export_type,
                "params": params,
                "requestedBy": "e2e",
            }
        ),
    )
    return export_id


@pytest.mark.parametrize("export_type", sorted(CATALOGUE))
def test_every_type_over_rest_and_kafka(
    worker: Worker, kafka: KafkaClient, s3: Any, export_type: str
) -> None:
    params, bucket, header, counts = CATALOGUE[export_type]
    status, created = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": export_type, "params": params}
    )
    assert status in (200, 202), created
    by_kafka = request_over_kafka(kafka, export_type, params)
    for export_id in (created["id"], by_kafka):
        done = worker.wait_terminal(CAMPAIGN, export_id)
        assert done["status"] == "FINISHED", done
        assert done["bucket"] == bucket
        files = files_of(done, s3)
        assert {name: len(rows) - 1 for name, rows in files.items()} == counts
        assert all(rows[0] == header.split(",") for rows in files.values())
        assert done["rowCount"] == sum(counts.values())
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert not [u for u in uploads if export_id in u["Key"]]


def test_reminder_rows_join_codes_markets_and_locales(worker: Worker, s3: Any) -> None:
    _, created = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "reminderEmail"}
    )
    done = worker.wait_terminal(CAMPAIGN, created["id"])
    files = files_of(done, s3)
    assert files["NA/en-us_1.csv"][1] == [
        "usr-1",
        "ana@example.com",
        "Ana",
        "en-us",
        "New York, NY",
        "2026-05-01T23:30:00Z",
        "NYC-0001",
        NAME,
    ]
    assert files["UK/en-gb_1.csv"][1] == [
        "usr-2",
        "bob@example.com",
        'Bob, "Bobby"',
        "en-gb",
        'London "O2"',
        "2026-06-01T19:00:00Z",
        'LDN,"0002"',
        NAME,
    ]
    (obj,) = done["objects"]
    assert obj["key"].endswith(
        "/Combined - Tour Ünïcødé, 2026 🎶 Night Day ASU - Reminder Email Data.zip"
    )


def test_waitlist_and_fanlist_rows(worker: Worker, s3: Any) -> None:
    rows = {}
    for export_type in ("waitlist", "fanlist"):
        _, created = worker.request(
            "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": export_type}
        )
        rows[export_type] = files_of(worker.wait_terminal(CAMPAIGN, created["id"]), s3)["csv"][1:]
    # usr-3 is in the scheduled SMS wave, usr-deleted is gone
    assert rows["waitlist"] == [
        ["usr-5", "zoe@example.com", "Zoë", "=SUM(A1)", "", "mk-nyc", "New York, NY", "40.0", "5"]
    ]
    fans = {r[0]: r for r in rows["fanlist"]}
    assert sorted(fans) == ["usr-1", "usr-2", "usr-3", "usr-4", "usr-5"]
    assert fans["usr-2"][8:] == ["3", "2026-02-01T10:00:00Z"]  # ldn, nyc, tlv
    assert fans["usr-2"][7] == "en_GB"  # entry locale null: the user's
    assert fans["usr-1"][8:] == ["2", "2026-02-01T10:00:00Z"]


def test_auto_reminder_objects_sit_where_sfmc_looks(worker: Worker, s3: Any) -> None:
    _, created = worker.request(
        "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "autoReminderEmail"}
    )
    done = worker.wait_terminal(CAMPAIGN, created["id"])
    day = dt.datetime.fromisoformat(done["triggeredAt"]).strftime("%Y%m%d")
    assert sorted(o["key"] for o in done["objects"]) == [
        f"NA/{CAMPAIGN}_{day}.csv",
        f"UK/{CAMPAIGN}_{day}.csv",
    ]
