"""One-shot set-up of the compose stack: topics, buckets and the demo dataset.

Runs in the service image (`docker compose run init`), so it uses the service's own code for
what the service also does: its settings (core/settings.py, the same environment variables),
its topic creation (core/topic_admin.py) and the dataset loading the local stack uses
(core/dataset.py). Bucket creation with lifecycle rules is this script's own. It reads
DEMO_DATA_DIR besides, and can be run again at any time: topics and buckets that exist are
kept, each demo collection is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from core.dataset import DatasetError, load_collections, upload_sms_waves
from core.settings import Settings
from core.topic_admin import TopicLayoutError, ensure_topics

log = logging.getLogger("compose-init")

T = TypeVar("T")

# The dependencies' healthchecks pass before this runs; this covers what they do not see.
WAIT_SECONDS = float(os.environ.get("INIT_WAIT_SECONDS", "120"))


class InitError(RuntimeError):
    """The stack cannot be set up; the message says what is wrong."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise InitError(f"environment variable {name} is not set")
    return value


def retry(what: str, action: Callable[[], T]) -> T:
    """Run `action` until it succeeds or WAIT_SECONDS pass (a service may still be starting)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return action()
        except (InitError, TopicLayoutError):
            raise
        except Exception as exc:  # any client error while a dependency starts: try again
            if time.monotonic() >= deadline:
                raise InitError(f"{what}: gave up after {WAIT_SECONDS:.0f}s: {exc}") from exc
            log.info("%s: %s; retrying", what, exc)
            time.sleep(2)


# -- Kafka ------------------------------------------------------------------------------------


def create_topics(settings: Settings) -> list[str]:
    """The service's topics, one partition each, as the worker itself makes them."""
    names = list(settings.topics())
    retry(
        "creating topics",
        lambda: asyncio.run(
            ensure_topics(
                settings.kafka_broker_url,
                names,
                replication_factor=settings.kafka_replication_factor,
            )
        ),
    )
    return names


# -- S3 ---------------------------------------------------------------------------------------


def s3_client(settings: Settings) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        **settings.s3_client_options(),
        config=Config(s3={"addressing_style": settings.s3_addressing_style}),
    )


def _create_bucket(client: Any, name: str) -> bool:
    try:
        client.head_bucket(Bucket=name)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    client.create_bucket(Bucket=name)
    return True


def lifecycle_rules(retention_days: float) -> dict[str, Any]:
    """Export objects expire with their status records (STATUS_RETENTION_DAYS, rounded up to
    whole days as S3 counts them); incomplete multipart uploads go after a day."""
    rules: list[dict[str, Any]] = [
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    if retention_days > 0:
        rules.append(
            {
                "ID": "export-retention",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": max(1, math.ceil(retention_days))},
            }
        )
    return {"Rules": rules}


def create_buckets(client: Any, settings: Settings) -> list[str]:
    names = list(dict.fromkeys(settings.bucket_map().values()))
    rules = lifecycle_rules(settings.status_retention_days)
    vf_scoring = settings.s3_bucket_vf_scoring
    for name in names:
        if retry(f"creating bucket {name}", partial(_create_bucket, client, name)):
            log.info("created bucket %s", name)
        # The SMS waves the service reads live in the vf-scoring bucket: uploads are still
        # cleaned up there, but nothing expires.
        wanted = rules if name != vf_scoring else {"Rules": rules["Rules"][:1]}
        retry(
            f"setting the lifecycle of bucket {name}",
            partial(
                client.put_bucket_lifecycle_configuration,
                Bucket=name,
                LifecycleConfiguration=wanted,
            ),
        )
    return names


# -- MongoDB ----------------------------------------------------------------------------------


def load_demo(settings: Settings, data_dir: Path) -> dict[str, int]:
    """Replace each `<collection>.jsonl`'s collection with its documents (core.dataset)."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, serverSelectionTimeoutMS=5000
    )
    with client:
        retry("connecting to MongoDB", lambda: client.admin.command("ping"))
        return load_collections(data_dir, client[settings.mongo_database])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="init: %(message)s", stream=sys.stdout)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        env("KAFKA_BROKER_URL")  # the settings' default broker is never the compose one
        settings = Settings()
        topics = create_topics(settings)
        log.info("topics ready: %s", ", ".join(topics))
        client = s3_client(settings)
        log.info("buckets ready: %s", ", ".join(create_buckets(client, settings)))
        data = os.environ.get("DEMO_DATA_DIR", "")
        if data:
            data_dir = Path(data)
            counts = load_demo(settings, data_dir)
            log.info("demo data: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
            upload_sms_waves(data_dir, client, settings.s3_bucket_vf_scoring)
    except (
        InitError,
        TopicLayoutError,
        DatasetError,
        ValidationError,
        PyMongoError,
        BotoCoreError,
        ClientError,
    ) as exc:
        log.error("failed: %s", exc)
        return 1
    log.info("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
