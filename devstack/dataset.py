"""Loading a dataset directory into the local stack's MongoDB and S3 (core/dataset.py does
the loading; the compose init uses the same code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config as BotoConfig
from pymongo import MongoClient

from core.dataset import DatasetError, load_collections, read_jsonl, upload_sms_waves

__all__ = ["DatasetError", "load_dataset", "read_jsonl"]


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

    Returns the number of documents per collection (core.dataset.load_collections).
    """
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, tz_aware=True)
    with client:
        counts = load_collections(directory, client[database])
    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=s3_endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )
    upload_sms_waves(directory, s3, vf_scoring_bucket)
    return counts
