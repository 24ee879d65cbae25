"""Queue behaviour on the real stack: requests recorded while an export runs, one at a time."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import urllib.request
import uuid
from typing import Any

import orjson
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from devstack.stack import LocalStack
from tests.e2e.conftest import KafkaClient, Worker, wait_for

BIG = "cmp-big"
BIG_ENTRIES = 12_000  # FerretDB scans users per $in batch: ~10 s of export here


@pytest.fixture(scope="module")
def big_campaign(stack: LocalStack) -> int:
    """A generated campaign: every entry in two markets, so 2 rows per entry."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(stack.mongo_url) as client:
        db: Database[dict[str, Any]] = client[stack.env["MONGO_DATABASE"]]
        created = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        db.campaigns.insert_one({"_id": BIG, "name": "Big Tour"})
        db.markets.insert_many(
            [{"_id": f"{BIG}-m{i}", "campaignId": BIG, "name": f"Market {i}"} for i in (1, 2)]
        )
        for start in range(0, BIG_ENTRIES, 5000):
            ids = range(start, min(start + 5000, BIG_ENTRIES))
            db.users.insert_many(
                [{"_id": f"{BIG}-u{i}", "email": f"fan{i}@example.com"} for i in ids]
            )
            db.entries.insert_many(
                [
                    {
                        "_id": f"{BIG}-e{i}",
                        "campaignId": BIG,
                        "userId": f"{BIG}-u{i}",
                        "marketId": f"{BIG}-m1",
                        "additionalMarketIds": [f"{BIG}-m2"],
                        "createdAt": created,
                    }
                    for i in ids
                ]
            )
    return 2 * BIG_ENTRIES


def test_requests_are_recorded_while_an_export_runs_and_run_strictly_in_order(
    worker: Worker, kafka: KafkaClient, s3: Any, big_campaign: int
) -> None:
    status, big = worker.request("POST", f"/campaigns/{BIG}/exports", {"exportType": "entries"})
    assert status == 202, big

    def triggered() -> dict[str, Any] | None:
        body = worker.get_export(BIG, big["id"])
        return body if body and body["status"] == "TRIGGERED" else None

    running = wait_for(triggered, timeout=60, what="the big export to start")
    assert running["totalCount"] == BIG_ENTRIES

    # A Kafka request arriving now is visible as PENDING before the big export ends.
    queued_id = f"queued-{uuid.uuid4().hex}"
    kafka.produce(
        "exports",
        orjson.dumps(
            {
                "type": "export.requested",
                "exportId": queued_id,
                "campaignId": "cmp-e2e",
                "exportType": "entries",
            }
        ),
    )
    queued = wait_for(
        lambda: worker.get_export("cmp-e2e", queued_id), timeout=30, what="the queued request"
    )
    big_now = worker.get_export(BIG, big["id"])
    assert big_now is not None
    assert big_now["status"] == "TRIGGERED", "the big export ended too soon for this test"
    assert queued["status"] == "PENDING"

    # Progress is reported while it runs, and the web server keeps answering.
    wait_for(
        lambda: (worker.get_export(BIG, big["id"]) or {}).get("rowCount", 0) > 0,
        timeout=60,
        what="row progress on the running export",
    )
    started = time.monotonic()
    assert worker.request("GET", "/heartbeat")[0] == 200
    assert time.monotonic() - started < 5

    done = worker.wait_terminal(BIG, big["id"], timeout=300)
    after = worker.wait_terminal("cmp-e2e", queued_id, timeout=120)
    assert done["status"] == after["status"] == "FINISHED"
    # strictly one at a time: the queued export started only after the big one ended
    assert done["finishedAt"] <= after["triggeredAt"]

    # the big object spans several multipart parts and holds every row exactly once
    (obj,) = done["objects"]
    assert obj["size"] > 4 * 256 * 1024
    (download,) = done["downloadUrls"]
    with urllib.request.urlopen(download["url"], timeout=30) as response:
        rows = list(csv.reader(io.TextIOWrapper(response, encoding="utf-8", newline="")))
    assert len(rows) - 1 == done["rowCount"] == big_campaign
    pairs = {(r[0], r[9]) for r in rows[1:]}
    assert len(pairs) == big_campaign
    assert {r[14] for r in rows[1:]} == {"true", "false"}
