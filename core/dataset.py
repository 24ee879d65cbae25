"""Loading a dataset directory into MongoDB and S3: Extended JSON per collection, SMS-wave
files. One implementation for the local stack (devstack) and the compose init
(deploy/compose/init.py), which runs in the service image."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from bson import json_util
from bson.errors import BSONError
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

__all__ = [
    "BATCH_SIZE",
    "INDEXED_COLLECTIONS",
    "LOOKUP_INDEXES",
    "SMS_WAVES_DIR",
    "DatasetError",
    "load_collections",
    "read_jsonl",
    "upload_sms_waves",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
# Every exporter filters these collections by campaign.
INDEXED_COLLECTIONS = ("entries", "scoring", "codes", "markets")
# The other fields the service looks documents up by: a code by the entry it was assigned to
# (reminder e-mails), a user's entries (CCPA deletion).
LOOKUP_INDEXES = (("codes", "assignedEntryId"), ("entries", "userId"))
SMS_WAVES_DIR = "sms-waves"
# Parsed batches waiting for the inserting thread: parsing overlaps the server's inserts.
_QUEUED_BATCHES = 2

# 19 digits or more may not fit a signed 64-bit integer.
_LONG_DIGITS = re.compile(r"[0-9]{19}")

# Dates come back as aware UTC datetimes, as the service's motor client sees them.
_JSON_OPTIONS = json_util.JSONOptions(tz_aware=True, tzinfo=UTC)


class DatasetError(ValueError):
    """A dataset file cannot be read; the message names the file and line."""


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the documents of a mongoexport file: Extended JSON (relaxed or canonical) per line.

    Blank lines are skipped. Raises DatasetError naming the file and line for invalid JSON or
    a line that is not a JSON object.
    """
    with path.open(encoding="utf-8-sig") as handle:  # -sig: tolerate a BOM from Windows tools
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                document = _parse_line(line)
            except (ValueError, TypeError, KeyError, OverflowError, BSONError) as exc:
                # Syntax errors are json's ValueErrors; a malformed $-type raises any of the rest.
                raise DatasetError(f"{path}:{line_number}: invalid Extended JSON: {exc}") from exc
            if not isinstance(document, dict):
                raise DatasetError(
                    f"{path}:{line_number}: expected one JSON object per line, "
                    f"got {type(document).__name__}"
                )
            yield document


def _parse_line(line: str) -> Any:
    # orjson is many times faster than json_util; Extended JSON's $-wrappers are then turned
    # into BSON values by json_util's own hook, bottom-up as json_util.loads applies it. What
    # orjson refuses (NaN) or reads differently (integers beyond 64 bits become floats) goes
    # to json_util whole.
    if _LONG_DIGITS.search(line):
        return json_util.loads(line, json_options=_JSON_OPTIONS)
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json_util.loads(line, json_options=_JSON_OPTIONS)
    # A key may start with "$" written as \u0024; only lines with neither are plain JSON.
    return _extended(value) if '"$' in line or "\\u0024" in line else value


def _extended(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _extended(item) for key, item in value.items()}
        if any(key.startswith("$") for key in converted):
            return json_util.object_hook(converted, _JSON_OPTIONS)
        return converted
    if isinstance(value, list):
        return [_extended(item) for item in value]
    return value


def _insert_all(collection: Collection[dict[str, Any]], documents: Iterator[dict[str, Any]]) -> int:
    """Insert in batches from a second thread, so parsing and inserting overlap; the count."""
    batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=_QUEUED_BATCHES)
    failure: list[BaseException] = []

    def insert() -> None:
        while (batch := batches.get()) is not None:
            if not failure:
                try:
                    collection.insert_many(batch, ordered=True)
                except BaseException as exc:  # handed to the parsing thread, raised there
                    failure.append(exc)

    inserter = threading.Thread(target=insert, name=f"insert-{collection.name}", daemon=True)
    inserter.start()
    count = 0
    try:
        while not failure and (batch := list(islice(documents, BATCH_SIZE))):
            batches.put(batch)
            count += len(batch)
    finally:
        batches.put(None)
        inserter.join()
    if failure:
        raise failure[0]
    return count


def load_collections(directory: Path, db: Database[dict[str, Any]]) -> dict[str, int]:
    """Replace each `<collection>.jsonl`'s collection in `db` with its documents, then index.

    Returns the number of documents per collection. Files are streamed in batches; a bad line
    stops the load with a DatasetError, and since every collection is dropped before it is
    loaded, running the load again after fixing the file gives a clean database.
    """
    if not directory.is_dir():
        raise DatasetError(f"{directory} is not a directory")
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise DatasetError(f"{directory} holds no <collection>.jsonl files")
    counts: dict[str, int] = {}
    for path in files:
        collection = db[path.stem]
        collection.drop()
        started = time.monotonic()
        counts[path.stem] = _insert_all(collection, read_jsonl(path))
        log.info(
            "loaded %d documents into %s.%s in %.1fs",
            counts[path.stem],
            db.name,
            path.stem,
            time.monotonic() - started,
        )
    # After the load: building an index once is faster than keeping it up to date.
    started = time.monotonic()
    for name in INDEXED_COLLECTIONS:
        db[name].create_index([("campaignId", ASCENDING)])
    for name, field in LOOKUP_INDEXES:
        db[name].create_index([(field, ASCENDING)])
    log.info("indexed %s in %.1fs", db.name, time.monotonic() - started)
    return counts


def upload_sms_waves(directory: Path, s3: Any, bucket: str) -> list[str]:
    """Upload every file under `directory/sms-waves/` to `bucket` under the same relative key,
    with `s3` a botocore S3 client (the image has botocore, not boto3)."""
    waves = directory / SMS_WAVES_DIR
    files = sorted(p for p in waves.rglob("*") if p.is_file()) if waves.is_dir() else []
    keys = []
    for path in files:
        key = path.relative_to(directory).as_posix()
        content_type = "text/csv" if path.suffix == ".csv" else "application/octet-stream"
        with path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        keys.append(key)
    if keys:
        log.info("uploaded %d SMS-wave files to s3://%s/%s/", len(keys), bucket, SMS_WAVES_DIR)
    return keys
