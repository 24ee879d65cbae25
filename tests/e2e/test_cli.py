"""`exportctl` against the live worker, run as a user runs it: a subprocess with the
service's URL and token in its environment."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.exit_codes import ExitCode
from tests.e2e.conftest import BIG, JWT_SECRET, Worker, wait_for
from web.devtoken import mint_token

CAMPAIGN = "cmp-e2e"
EXPORTCTL = Path(sys.executable).with_name("exportctl")


def run(
    worker: Worker, *args: str, token: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "EXPORT_SERVICE_URL": worker.base_url,
        "EXPORT_SERVICE_TOKEN": worker.token if token is None else token,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(EXPORTCTL), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def run_json(worker: Worker, *args: str, expect: ExitCode = ExitCode.OK, **kw: Any) -> Any:
    done = run(worker, *args, "--json", **kw)
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return orjson.loads(done.stdout)


def test_whoami_and_types(worker: Worker) -> None:
    me = run_json(worker, "whoami")
    assert me == {"sub": "e2e-admin", "supreme": True, "campaigns": []}
    types = run_json(worker, "types")
    names = [t["exportType"] for t in types]
    assert len(names) == 17
    assert "entries" in names
    sample = next(t for t in types if t["exportType"] == "reminderEmailSample")
    assert sample["params"]["properties"]["sampleSize"]["type"] == "integer"


def test_request_watch_list_and_download_verified(worker: Worker, s3: Any, tmp_path: Path) -> None:
    record = run_json(
        worker,
        "request",
        "reminderEmailSample",
        "-c",
        CAMPAIGN,
        "--param",
        "sampleSize=3",
        "--watch",
        "--interval",
        "0.3",
        "--timeout",
        "120",
    )
    assert record["status"] == "FINISHED"
    assert record["params"] == {"sampleSize": 3}  # typed by the schema, not the string "3"
    assert record["rowsPerSecond"] is None or record["rowsPerSecond"] > 0
    assert record["etaSeconds"] is None

    listed = run_json(worker, "list", "-c", CAMPAIGN, "--status", "FINISHED", "--all")
    assert record["id"] in [r["id"] for r in listed]
    assert all(r["status"] == "FINISHED" for r in listed)

    results = run_json(worker, "download", record["id"], "-c", CAMPAIGN, "--dir", str(tmp_path))
    assert [r["key"] for r in results] == [o["key"] for o in record["objects"]]
    for obj, result in zip(record["objects"], results, strict=True):
        data = Path(result["path"]).read_bytes()
        stored = s3.get_object(Bucket=record["bucket"], Key=obj["key"])["Body"].read()
        assert data == stored
        assert hashlib.sha256(data).hexdigest() == obj["sha256"]
        assert result["verified"] is True
    # Downloading again finds the files in place and verified.
    again = run_json(worker, "download", record["id"], "-c", CAMPAIGN, "--dir", str(tmp_path))
    assert all(r["skipped"] and r["verified"] for r in again)

    people = run(worker, "status", record["id"], "-c", CAMPAIGN)
    assert people.returncode == 0
    assert "FINISHED" in people.stdout
    assert record["objects"][0]["sha256"] in people.stdout


def test_a_download_whose_checksum_is_wrong_is_removed_and_refused(
    worker: Worker, s3: Any, tmp_path: Path
) -> None:
    record = run_json(worker, "request", "codes", "-c", CAMPAIGN, "--watch", "--interval", "0.3")
    assert record["status"] == "FINISHED"
    obj = record["objects"][0]
    original = s3.get_object(Bucket=record["bucket"], Key=obj["key"])["Body"].read()
    # Same size, other bytes: only the digest can tell.
    tampered = bytes([original[0] ^ 1]) + original[1:]
    s3.put_object(Bucket=record["bucket"], Key=obj["key"], Body=tampered)
    try:
        done = run(worker, "download", record["id"], "-c", CAMPAIGN, "--dir", str(tmp_path))
        assert done.returncode == ExitCode.VERIFY_FAILED, (done.stdout, done.stderr)
        assert "sha256" in done.stdout
        assert "failed verification" in done.stderr
        assert list(tmp_path.rglob("*")) == [p for p in tmp_path.rglob("*") if p.is_dir()]
    finally:
        s3.put_object(Bucket=record["bucket"], Key=obj["key"], Body=original)


def test_progress_shows_rate_and_eta_then_cancel(worker: Worker, big_campaign: int) -> None:
    record = run_json(worker, "request", "entries", "-c", BIG)
    export_id = record["id"]

    def running_with_estimate() -> dict[str, Any] | None:
        body = worker.get_export(BIG, export_id)
        if body and body["status"] == "TRIGGERED" and body["etaSeconds"] is not None:
            return body
        if body and body["status"] not in {"PENDING", "TRIGGERED"}:
            raise AssertionError(f"export ended before any estimate: {body}")
        return None

    running = wait_for(running_with_estimate, timeout=120, what="a TRIGGERED export with ETA")
    assert running["rowsPerSecond"] > 0
    assert running["etaSeconds"] >= 0
    assert 0 < running["rowCount"] < big_campaign

    gave_up = run(worker, "watch", export_id, "-c", BIG, "--timeout", "0.5")
    assert gave_up.returncode == ExitCode.TIMED_OUT, gave_up.stderr
    assert "still TRIGGERED" in gave_up.stderr or "still PENDING" in gave_up.stderr

    cancelled = run_json(worker, "cancel", export_id, "-c", BIG)
    assert cancelled["status"] == "CANCELLED"
    final = run_json(
        worker, "watch", export_id, "-c", BIG, "--interval", "0.3", expect=ExitCode.CANCELLED
    )
    assert final["status"] == "CANCELLED"
    refused = run(worker, "cancel", export_id, "-c", BIG)
    assert refused.returncode == ExitCode.REJECTED
    assert "EXPORT_NOT_CANCELLABLE" in refused.stderr


def test_exit_codes_for_auth_not_found_and_bad_input(worker: Worker) -> None:
    other = mint_token(
        JWT_SECRET, sub="someone", permissions={"cmp-other": ["REPORT"]}, expires_in=600
    )
    unknown = uuid.uuid4().hex
    denied = run(worker, "list", "-c", CAMPAIGN, token=other)
    assert denied.returncode == ExitCode.AUTH
    assert "FORBIDDEN" in denied.stderr
    assert run(worker, "list", "-c", CAMPAIGN, token="not-a-jwt").returncode == ExitCode.AUTH
    missing = run(worker, "status", unknown, "-c", CAMPAIGN)
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "EXPORT_NOT_FOUND" in missing.stderr

    bad = run(worker, "request", "reminderEmailSample", "-c", CAMPAIGN, "-p", "sampleSize=0")
    assert bad.returncode == ExitCode.REJECTED
    assert "INVALID_PARAMS" in bad.stderr
    assert "sampleSize" in bad.stderr  # the field the error is about, from details.errors
    not_int = run(worker, "request", "reminderEmailSample", "-c", CAMPAIGN, "-p", "sampleSize=x")
    assert not_int.returncode == ExitCode.USAGE
    error = run_json(worker, "request", "nope", "-c", CAMPAIGN, expect=ExitCode.REJECTED)
    assert error["error"]["code"] == "UNKNOWN_EXPORT_TYPE"
    offline = subprocess.run(
        [str(EXPORTCTL), "--url", "http://127.0.0.1:9", "whoami"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"EXPORT_SERVICE_TOKEN": "x"},
    )
    assert offline.returncode == ExitCode.UNAVAILABLE


def test_ccpa_delete_status_and_list(worker: Worker) -> None:
    user = f"cli-nobody-{uuid.uuid4().hex[:8]}"  # in no campaign: deletes nothing of others
    done = run_json(
        worker, "ccpa", "delete", user, "--watch", "--interval", "0.3", "--timeout", "120"
    )
    assert done["status"] == "COMPLETED"
    assert done["summary"]["deletedObjectCount"] == 0
    again = run_json(worker, "ccpa", "status", done["requestId"])
    assert again["requestId"] == done["requestId"]
    listed = run_json(worker, "ccpa", "list", "--status", "COMPLETED")
    assert done["requestId"] in [r["requestId"] for r in listed]
    reporter = mint_token(JWT_SECRET, sub="r", permissions={CAMPAIGN: ["REPORT"]}, expires_in=600)
    assert run(worker, "ccpa", "list", token=reporter).returncode == ExitCode.AUTH


@pytest.mark.parametrize("args", [("--help",), ("ccpa", "--help"), ("request", "--help")])
def test_help_works_without_a_service(args: tuple[str, ...]) -> None:
    done = subprocess.run([str(EXPORTCTL), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Usage" in done.stdout
