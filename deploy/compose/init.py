"""One-shot set-up of the compose stack: topics, buckets and the demo dataset.

Runs in the service image (`docker compose run init`), so it uses only libraries the service
already ships: aiokafka, pymongo (bson) and botocore. It reads the service's own environment
variables (core/settings.py) plus DEMO_DATA_DIR, and can be run again at any time: topics and
buckets that exist are kept, each demo collection is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import botocore.session
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from bson import json_util
from pymongo import ASCENDING, MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger("compose-init")

T = TypeVar("T")

BATCH_SIZE = 1000
# Every exporter filters these collections by campaign.
INDEXED_COLLECTIONS = ("entries", "scoring", "codes", "markets")
SMS_WAVES_DIR = "sms-waves"
# The dependencies' healthchecks pass before this runs; this covers what they do not see.
WAIT_SECONDS = float(os.environ.get("INIT_WAIT_SECONDS", "120"))
_JSON_OPTIONS = json_util.JSONOptions(tz_aware=True, tzinfo=UTC)


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
        except InitError:
            raise
        except Exception as exc:  # any client error while a dependency starts: try again
            if time.monotonic() >= deadline:
                raise InitError(f"{what}: gave up after {WAIT_SECONDS:.0f}s: {exc}") from exc
            log.info("%s: %s; retrying", what, exc)
            time.sleep(2)


# -- Kafka ------------------------------------------------------------------------------------


def bootstrap_servers(broker_url: str) -> list[str]:
    """`kafka://h1:9092;h2:9092` (Faust's broker URL) as host:port pairs."""
    parts = broker_url.replace(",", ";").split(";")
    return [p.strip().split("://", 1)[-1].rstrip("/") for p in parts if p.strip()]


def _partition_counts(described: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in described:
        if isinstance(topic, dict):
            counts[topic["topic"]] = len(topic.get("partitions", []))
        else:  # older aiokafka: (error_code, name, is_internal, partitions)
            counts[topic[1]] = len(topic[3])
    return counts


async def _create_topics(servers: list[str], names: list[str], replication: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        missing = [n for n in names if n not in set(await admin.list_topics())]
        if missing:
            await admin.create_topics(
                [NewTopic(n, num_partitions=1, replication_factor=replication) for n in missing]
            )
            log.info("created topics %s", missing)
        counts = _partition_counts(await admin.describe_topics(names))
    finally:
        await admin.close()
    # The exports topic is the serial queue: a second partition would run exports in parallel.
    wrong = {n: counts.get(n, 0) for n in names if counts.get(n, 0) != 1}
    if wrong:
        raise InitError(f"topics must have exactly 1 partition, found {wrong}")


def create_topics() -> list[str]:
    names = [env("TOPIC_EXPORTS", "exports"), env("TOPIC_EXPORT_EVENTS", "export-events")]
    names.append(env("TOPIC_DLQ", "exports-dlq"))
    servers = bootstrap_servers(env("KAFKA_BROKER_URL"))
    replication = int(env("KAFKA_REPLICATION_FACTOR", "1"))
    retry("creating topics", lambda: asyncio.run(_create_topics(servers, names, replication)))
    return names


# -- S3 ---------------------------------------------------------------------------------------


def s3_client() -> Any:
    session = botocore.session.get_session()
    addressing_style: Any = env("S3_ADDRESSING_STYLE", "path")  # auto | path | virtual
    return session.create_client(
        "s3",
        endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        region_name=env("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY") or None,
        config=Config(s3={"addressing_style": addressing_style}),
    )


def bucket_names() -> list[str]:
    return [
        env("S3_BUCKET_EXPORTS", "exports"),
        env("S3_BUCKET_SCORING", "scoring"),
        env("S3_BUCKET_VF_SCORING", "vf-scoring"),
        env("S3_BUCKET_SFMC", "sfmc"),
    ]


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


def create_buckets(client: Any) -> list[str]:
    names = bucket_names()
    rules = lifecycle_rules(float(env("STATUS_RETENTION_DAYS", "90")))
    vf_scoring = env("S3_BUCKET_VF_SCORING", "vf-scoring")
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


def upload_sms_waves(client: Any, data_dir: Path) -> list[str]:
    """Every file under `data_dir/sms-waves/` into the vf-scoring bucket, same relative key."""
    waves = data_dir / SMS_WAVES_DIR
    files = sorted(p for p in waves.rglob("*") if p.is_file()) if waves.is_dir() else []
    bucket = env("S3_BUCKET_VF_SCORING", "vf-scoring")
    keys = []
    for path in files:
        key = path.relative_to(data_dir).as_posix()
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="text/csv")
        keys.append(key)
    log.info("uploaded %d SMS-wave files to s3://%s/%s/", len(keys), bucket, SMS_WAVES_DIR)
    return keys


# -- MongoDB ----------------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The documents of a mongoexport file: Extended JSON, relaxed or canonical, one per line."""
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                document = json_util.loads(line, json_options=_JSON_OPTIONS)
            except Exception as exc:  # json and bson raise several types for a bad line
                raise InitError(f"{path}:{number}: invalid Extended JSON: {exc}") from exc
            if not isinstance(document, dict):
                raise InitError(f"{path}:{number}: expected one JSON object per line")
            yield document


def load_collections(data_dir: Path) -> dict[str, int]:
    """Replace each `<collection>.jsonl`'s collection with its documents."""
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        raise InitError(f"{data_dir} holds no <collection>.jsonl files")
    client: MongoClient[dict[str, Any]] = MongoClient(
        env("MONGO_URL"), tz_aware=True, serverSelectionTimeoutMS=5000
    )
    counts: dict[str, int] = {}
    with client:
        retry("connecting to MongoDB", lambda: client.admin.command("ping"))
        db = client[env("MONGO_DATABASE", "verifiedfan")]
        for path in files:
            collection = db[path.stem]
            collection.drop()
            documents = read_jsonl(path)
            count = 0
            while batch := list(islice(documents, BATCH_SIZE)):
                collection.insert_many(batch, ordered=True)
                count += len(batch)
            counts[path.stem] = count
            log.info("loaded %d documents into %s.%s", count, db.name, path.stem)
        for name in INDEXED_COLLECTIONS:
            db[name].create_index([("campaignId", ASCENDING)])
    return counts


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="init: %(message)s", stream=sys.stdout)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        topics = create_topics()
        log.info("topics ready: %s", ", ".join(topics))
        client = s3_client()
        log.info("buckets ready: %s", ", ".join(create_buckets(client)))
        data = os.environ.get("DEMO_DATA_DIR", "")
        if data:
            data_dir = Path(data)
            counts = load_collections(data_dir)
            log.info("demo data: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
            upload_sms_waves(client, data_dir)
    except (InitError, PyMongoError, BotoCoreError, ClientError) as exc:
        log.error("failed: %s", exc)
        return 1
    log.info("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
