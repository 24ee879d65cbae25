"""Loading a dataset directory (Extended JSON per collection, SMS-wave CSVs) into the stack."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC
from itertools import islice
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from bson import json_util
from bson.errors import BSONError
from pymongo import ASCENDING, MongoClient

__all__ = [
    "BATCH_SIZE",
    "INDEXED_COLLECTIONS",
    "DatasetError",
    "load_dataset",
    "read_jsonl",
    "upload_sms_waves",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
# Every exporter filters these collections by campaign.
INDEXED_COLLECTIONS = ("entries", "scoring", "codes", "markets")
SMS_WAVES_DIR = "sms-waves"

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
                document = json_util.loads(line, json_options=_JSON_OPTIONS)
            except (ValueError, TypeError, KeyError, OverflowError, BSONError) as exc:
                # Syntax errors are json's ValueErrors; a malformed $-type raises any of the rest.
                raise DatasetError(f"{path}:{line_number}: invalid Extended JSON: {exc}") from exc
            if not isinstance(document, dict):
                raise DatasetError(
                    f"{path}:{line_number}: expected one JSON object per line, "
                    f"got {type(document).__name__}"
                )
            yield document


def load_dataset(
    directory: Path,
    *,
    mongo_url: str,
    database: str,
    s3_endpoint_url: str,
    vf_scoring_bucket: str,
    access_key: str,
    secret_key: str,
    region: str,
) -> dict[str, int]:
    """Replace each `<collection>.jsonl`'s collection with its documents; upload SMS waves.

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
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, tz_aware=True)
    with client:
        db = client[database]
        for path in files:
            collection = db[path.stem]
            collection.drop()
            count = 0
            documents = read_jsonl(path)
            while batch := list(islice(documents, BATCH_SIZE)):
                collection.insert_many(batch, ordered=True)
                count += len(batch)
            counts[path.stem] = count
            log.info("loaded %d documents into %s.%s", count, database, path.stem)
        for name in INDEXED_COLLECTIONS:
            db[name].create_index([("campaignId", ASCENDING)])

    upload_sms_waves(
        directory,
        s3_endpoint_url=s3_endpoint_url,
        bucket=vf_scoring_bucket,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
    )
    return counts


def upload_sms_waves(
    directory: Path,
    *,
    s3_endpoint_url: str,
    bucket: str,
    access_key: str,
    secret_key: str,
    region: str,
) -> list[str]:
    """Upload every file under `directory/sms-waves/` to `bucket` under the same relative key."""
    waves = directory / SMS_WAVES_DIR
    files = sorted(p for p in waves.rglob("*") if p.is_file()) if waves.is_dir() else []
    if not files:
        return []
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )
    keys = []
    for path in files:
        key = path.relative_to(directory).as_posix()
        content_type = "text/csv" if path.suffix == ".csv" else "application/octet-stream"
        client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
        keys.append(key)
    log.info("uploaded %d SMS-wave files to s3://%s/%s/", len(keys), bucket, SMS_WAVES_DIR)
    return keys
