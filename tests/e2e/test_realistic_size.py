"""An entries export of a realistic size through the real worker and the local stack.

A generated hostile dataset (devstack.generate: 100k+ entries in the big campaign, names with
quotes, CR/LF and emoji, numeric and missing phones, deleted users, vanished markets, lone and
repeated additional market ids) is loaded into a database of its own; a dedicated worker
exports it over REST; every row of the CSV read back from S3 is compared with the rows
tests/e2e/expected.py computes from the dataset files by its own reading of SPEC §3.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.dataset import load_dataset
from devstack.generate import BIG_CAMPAIGN_ID, write_generated_dataset
from devstack.stack import LocalStack
from tests.e2e.conftest import dedicated_env, start_worker, stop_worker
from tests.e2e.expected import entries_rows

# 1.2 entries per user in the big campaign: 85k users give 102k entries, ~145k rows.
USERS = 85_000
HEADER = [
    *("entryId", "userId", "email", "firstName", "lastName", "phone", "postalCode"),
    *("countryCode", "locale", "marketId", "marketName", "marketCity", "marketState"),
    *("eventDate", "isPrimaryMarket", "verified", "artistOptIn", "smsOptIn"),
    *("livenationOptIn", "createdAt", "campaignId", "campaignName"),
]


@pytest.mark.timeout(900)
def test_entries_export_of_100k_entries_matches_the_dataset_row_by_row(
    stack: LocalStack, tmp_path: Path, s3: Any
) -> None:
    data = tmp_path / "data"
    counts = write_generated_dataset(data, users=USERS, seed=20261201)
    assert counts.big_entries >= 100_000
    # The entries export reads neither: loading them would only add a third to the load time.
    for unread in ("scoring", "codes"):
        (data / f"{unread}.jsonl").unlink()
    database = "realistic-size"
    env = stack.env
    load_dataset(
        data,
        mongo_url=stack.mongo_url,
        database=database,
        s3_endpoint_url=stack.s3_endpoint_url,
        vf_scoring_bucket=env["S3_BUCKET_VF_SCORING"],
        access_key=env["S3_ACCESS_KEY_ID"],
        secret_key=env["S3_SECRET_ACCESS_KEY"],
        region=env["S3_REGION"],
    )
    worker = start_worker(
        stack, tmp_path, MONGO_DATABASE=database, **dedicated_env("realistic-size")
    )
    try:
        status, export = worker.request(
            "POST", f"/campaigns/{BIG_CAMPAIGN_ID}/exports", {"exportType": "entries"}
        )
        assert status == 202, export
        started = time.monotonic()
        final = worker.wait_terminal(BIG_CAMPAIGN_ID, export["id"], timeout=600)
        elapsed = time.monotonic() - started
    finally:
        stop_worker(worker)
    assert final["status"] == "FINISHED", (final, worker.log_tail())

    expected = entries_rows(BIG_CAMPAIGN_ID, data)
    (stored,) = final["objects"]
    body = s3.get_object(Bucket=final["bucket"], Key=stored["key"])["Body"].read()
    assert len(body) == stored["size"]
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    assert next(reader) == HEADER
    rows = list(reader)
    assert final["rowCount"] == len(rows) == len(expected)
    assert final["totalCount"] == counts.big_entries
    # Row order is not part of the contract: compare the rows as a multiset.
    missing = Counter(map(tuple, expected)) - Counter(map(tuple, rows))
    unexpected = Counter(map(tuple, rows)) - Counter(map(tuple, expected))
    assert not missing, list(missing)[:3]
    assert not unexpected, list(unexpected)[:3]
    deleted_users = sum(1 for e in _big_entries(data) if e["userId"].startswith("deleted-"))
    assert final["skippedCount"] == deleted_users > 0
    print(f"\n{len(rows)} rows in {elapsed:.1f}s ({len(rows) / elapsed:.0f} rows/s incl. polling)")


def _big_entries(data: Path) -> list[dict[str, Any]]:
    # Only plain string fields are read: orjson parses them as json_util would, 15x faster.
    with (data / "entries.jsonl").open("rb") as lines:
        entries = [orjson.loads(line) for line in lines if line.strip()]
    return [e for e in entries if e["campaignId"] == BIG_CAMPAIGN_ID]
