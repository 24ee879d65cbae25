"""Queue behaviour on the real stack: requests recorded while an export runs, one at a time."""

from __future__ import annotations

import csv
import io
import time
import urllib.request
import uuid
from typing import Any

import orjson

from tests.e2e.conftest import BIG, BIG_ENTRIES, KafkaClient, Worker, wait_for


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
