"""The real adapters, topic set-up and worker against Kafka, MongoDB and MinIO in containers.

Expected rows come from tests/e2e/expected.py (read from the JSONL files, not from exporters/);
objects are read back with boto3 as a downstream consumer would.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import time
import urllib.request
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from core.deps import Deps, Doc, DocumentSource
from core.errors import SourceUnavailable, UploadFailed
from core.metrics import ServiceMetrics
from core.settings import Settings
from core.topic_admin import TopicLayoutError, ensure_topics
from core.wiring import open_deps
from exporters.registry import get_spec
from exporters.runner import count_source, load_context, run_export
from tests.e2e.conftest import KafkaClient, Worker, contract_of
from tests.e2e.expected import codes_rows, entries_rows, load
from tests.integration.conftest import run_options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CAMPAIGN = "cmp-e2e"
# The campaign's name made safe for a key (SPEC §3): quotes dropped, newline and "/" -> space.
FILE_STEM = "Tour Ünïcødé, 2026 🎶 Night Day"
# Column lists as SPEC §3 writes them.
ENTRIES_HEADER = [
    *("entryId", "userId", "email", "firstName", "lastName", "phone", "postalCode"),
    *("countryCode", "locale", "marketId", "marketName", "marketCity", "marketState"),
    *("eventDate", "isPrimaryMarket", "verified", "artistOptIn", "smsOptIn", "livenationOptIn"),
    *("createdAt", "campaignId", "campaignName"),
]
CODES_HEADER = [
    *("code", "type", "status", "marketId", "marketName", "assignedUserId", "assignedAt"),
    "waveId",
]


def parse_csv(body: bytes) -> list[list[str]]:
    assert not body.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert body.endswith(b"\r\n"), "CRLF rows"
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True))


def keys_under(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for obj in response.get("Contents", [])]


def uploads_of(s3: S3Client, bucket: str, key: str) -> list[str]:
    """Ids of the multipart uploads of `key` still in progress.

    By the exact key: MinIO lists multipart uploads only for a whole object name, never for a
    shorter prefix (minio/minio#20989), and some versions list nothing without one.
    """
    response = s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
    return [u["UploadId"] for u in response.get("Uploads", []) if u["Key"] == key]


def source_docs(collection: str) -> list[dict[str, Any]]:
    return [doc for doc in load(collection) if doc.get("campaignId") == CAMPAIGN]


def docs_without_user(collection: str) -> int:
    users = {user["_id"] for user in load("users")}
    return sum(1 for doc in source_docs(collection) if doc.get("userId") not in users)


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    """The real MongoSource and S3ObjectStore, built by the composition root."""
    async with AsyncExitStack() as stack:
        yield await open_deps(settings, stack, ServiceMetrics().record_retry)


# -- exports through the real adapters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("export_type", "header", "expected_rows", "skipped"),
    [
        pytest.param("entries", ENTRIES_HEADER, entries_rows, docs_without_user, id="entries"),
        pytest.param("codes", CODES_HEADER, codes_rows, lambda _: 0, id="codes"),
    ],
)
async def test_an_export_through_mongodb_and_minio_holds_every_expected_row(
    export_type: str,
    header: list[str],
    expected_rows: Callable[[str], list[list[str]]],
    skipped: Callable[[str], int],
    deps: Deps,
    settings: Settings,
    s3: S3Client,
) -> None:
    spec = get_spec(export_type)
    export_id = f"it-{uuid.uuid4().hex}"
    ctx = await load_context(
        spec, deps.source, export_id=export_id, campaign_id=CAMPAIGN, params={}
    )
    total = await count_source(spec, ctx, deps.source)
    result = await run_export(
        spec, ctx, source=deps.source, store=deps.store, options=run_options(settings)
    )

    expected = expected_rows(CAMPAIGN)
    assert total == len(source_docs(export_type))
    assert result.row_count == len(expected)
    assert result.skipped_count == skipped(export_type)
    assert result.bucket == settings.s3_bucket_exports
    (stored,) = result.objects
    prefix = f"{export_type}/{CAMPAIGN}/{export_id}/"
    assert stored.key == f"{prefix}{FILE_STEM} - {export_type}.csv"
    assert keys_under(s3, result.bucket, prefix) == [stored.key]

    head = s3.head_object(Bucket=result.bucket, Key=stored.key)
    assert head["ContentLength"] == stored.size
    assert head["ContentType"] == "text/csv; charset=utf-8"
    body = s3.get_object(Bucket=result.bucket, Key=stored.key)["Body"].read()
    assert len(body) == stored.size
    assert hashlib.sha256(body).hexdigest() == stored.sha256
    rows = parse_csv(body)
    assert rows[0] == header
    assert sorted(rows[1:]) == sorted(expected)
    assert uploads_of(s3, result.bucket, stored.key) == []


class FailingSource:
    """The real source, except that reading `collection` fails at its second batch.

    `before_failing` runs first, so a test can look at S3 while the upload is still open.
    """

    def __init__(
        self,
        inner: DocumentSource,
        collection: str,
        before_failing: Callable[[], Awaitable[None]],
    ) -> None:
        self._inner = inner
        self._collection = collection
        self._before_failing = before_failing

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        batches = self._inner.find(
            collection, query, projection=projection, batch_size=batch_size, sort=sort
        )
        async with aclosing(batches):
            seen = 0
            async for batch in batches:
                if collection == self._collection and seen == 1:
                    await self._before_failing()
                    raise SourceUnavailable("injected: the source went away mid-export")
                seen += 1
                yield batch

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        return await self._inner.find_in(collection, field, values, projection=projection)

    async def find_by_ids(
        self,
        collection: str,
        ids: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, Doc]:
        return await self._inner.find_by_ids(collection, ids, projection=projection)

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None:
        return await self._inner.find_one(collection, query)

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return await self._inner.count(collection, query)

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        return await self._inner.distinct(collection, field, query)

    async def ping(self) -> None:
        await self._inner.ping()


async def test_a_failure_mid_export_aborts_the_multipart_upload_in_minio(
    deps: Deps, settings: Settings, s3: S3Client
) -> None:
    spec = get_spec("entries")
    export_id = f"it-{uuid.uuid4().hex}"
    bucket = settings.s3_bucket_exports
    prefix = f"entries/{CAMPAIGN}/{export_id}/"
    key = f"{prefix}{FILE_STEM} - entries.csv"
    seen_before_failing: dict[str, int] = {}

    async def parts_are_in_minio() -> None:
        # Part uploads run as tasks on this loop: ask S3 from a thread so that they progress.
        deadline = time.monotonic() + 30
        while True:
            upload_ids = await asyncio.to_thread(uploads_of, s3, bucket, key)
            parts = []
            if len(upload_ids) == 1:
                listed = await asyncio.to_thread(
                    s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_ids[0]
                )
                parts = listed.get("Parts", [])
            if parts or time.monotonic() > deadline:
                seen_before_failing["uploads"] = len(upload_ids)
                seen_before_failing["parts"] = len(parts)
                return
            await asyncio.sleep(0.1)

    source = FailingSource(deps.source, "entries", parts_are_in_minio)
    ctx = await load_context(spec, source, export_id=export_id, campaign_id=CAMPAIGN, params={})
    # Parts far below S3's 5 MiB minimum: MinIO stores them and only a completion would refuse
    # them, so the upload holds real parts when the source fails.
    options = replace(run_options(settings), batch_size=2, part_size=256, max_in_flight=1)

    with pytest.raises(SourceUnavailable, match="injected"):
        await run_export(spec, ctx, source=source, store=deps.store, options=options)

    assert seen_before_failing["uploads"] == 1
    assert seen_before_failing["parts"] >= 1
    assert uploads_of(s3, bucket, key) == []
    assert keys_under(s3, bucket, prefix) == []


async def test_an_export_into_a_missing_bucket_fails_and_leaves_nothing(
    deps: Deps, settings: Settings, s3: S3Client
) -> None:
    spec = get_spec("codes")
    export_id = f"it-{uuid.uuid4().hex}"
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    options = replace(
        run_options(settings), bucket_names={**settings.bucket_map(), "exports": missing}
    )
    ctx = await load_context(
        spec, deps.source, export_id=export_id, campaign_id=CAMPAIGN, params={}
    )

    with pytest.raises(UploadFailed) as failed:
        await run_export(spec, ctx, source=deps.source, store=deps.store, options=options)

    assert failed.value.code == "UPLOAD_FAILED"
    prefix = f"codes/{CAMPAIGN}/{export_id}/"
    for bucket in settings.all_buckets():
        assert keys_under(s3, bucket, prefix) == []
        assert uploads_of(s3, bucket, f"{prefix}{FILE_STEM} - codes.csv") == []


async def test_abort_uploads_finds_the_upload_of_an_interrupted_attempt(
    deps: Deps, settings: Settings, s3: S3Client
) -> None:
    bucket = settings.s3_bucket_exports
    prefix = f"entries/{CAMPAIGN}/it-{uuid.uuid4().hex}/"
    key = f"{prefix}{FILE_STEM} - entries.csv"
    upload = await deps.store.start_upload(bucket, key, content_type="text/csv", acl=None)
    await upload.upload_part(1, b"entryId\r\n")
    # The worker died here. On restart the export runner aborts the export's keys first
    # (exact keys: MinIO lists in-progress uploads only by object name, minio/minio#20989).
    aborted = await deps.store.abort_uploads(bucket, [key])

    assert aborted == 1
    assert uploads_of(s3, bucket, key) == []


# -- topics on a real broker ---------------------------------------------------------------------


def partition_counts(bootstrap: str, names: Collection[str]) -> dict[str, int]:
    """Partitions per topic as librdkafka sees them (not the service's aiokafka)."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
    return {
        name: len(metadata.topics[name].partitions) for name in names if name in metadata.topics
    }


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient

    # NewTopic is defined in cimpl; confluent_kafka.admin imports it without re-exporting it.
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=30
    )
    futures[name].result(timeout=30)


def fresh_topic_settings(bootstrap: str) -> Settings:
    suffix = uuid.uuid4().hex[:10]
    return Settings(
        kafka_broker_url=f"kafka://{bootstrap}",
        topic_exports=f"exports-{suffix}",
        topic_export_events=f"export-events-{suffix}",
        topic_dlq=f"exports-dlq-{suffix}",
    )


async def test_ensure_topics_creates_the_three_topics_with_one_partition(
    kafka_bootstrap: str,
) -> None:
    settings = fresh_topic_settings(kafka_bootstrap)
    names = settings.topics()
    assert await asyncio.to_thread(partition_counts, kafka_bootstrap, names) == {}

    await ensure_topics(settings.kafka_broker_url, names, replication_factor=1)

    counts = await asyncio.to_thread(partition_counts, kafka_bootstrap, names)
    assert counts == dict.fromkeys(names, 1)
    # A restarted worker finds them in place and accepts them.
    await ensure_topics(settings.kafka_broker_url, names, replication_factor=1)


async def test_ensure_topics_refuses_an_existing_topic_with_three_partitions(
    kafka_bootstrap: str,
) -> None:
    settings = fresh_topic_settings(kafka_bootstrap)
    wrong = settings.topic_exports
    await asyncio.to_thread(create_topic, kafka_bootstrap, wrong, 3)

    with pytest.raises(TopicLayoutError, match=re.escape(f"'{wrong}': 3")):
        await ensure_topics(settings.kafka_broker_url, settings.topics(), replication_factor=1)

    # Refused, not "repaired": the topic keeps its partitions for an operator to look at.
    counts = await asyncio.to_thread(partition_counts, kafka_bootstrap, [wrong])
    assert counts == {wrong: 3}


# -- the worker process ----------------------------------------------------------------------


def test_the_worker_exports_entries_requested_over_http(
    worker: Worker, s3: S3Client, kafka_bootstrap: str
) -> None:
    kafka = KafkaClient(kafka_bootstrap, contract_of(worker))
    try:
        events = kafka.consumer("export-events")
        status, created = worker.request(
            "POST", f"/campaigns/{CAMPAIGN}/exports", {"exportType": "entries"}
        )
        assert status == 202, created
        assert created["status"] == "PENDING"

        done = worker.wait_terminal(CAMPAIGN, created["id"], timeout=180)
        assert done["status"] == "FINISHED", done
        assert done["bucket"] == "exports"
        (stored,) = done["objects"]
        assert stored["key"] == f"entries/{CAMPAIGN}/{created['id']}/{FILE_STEM} - entries.csv"

        body = s3.get_object(Bucket=done["bucket"], Key=stored["key"])["Body"].read()
        assert len(body) == stored["size"]
        assert hashlib.sha256(body).hexdigest() == stored["sha256"]
        rows = parse_csv(body)
        assert rows[0] == ENTRIES_HEADER
        expected = entries_rows(CAMPAIGN)
        assert sorted(rows[1:]) == sorted(expected)
        assert done["rowCount"] == len(expected)
        assert done["skippedCount"] == docs_without_user("entries")
        assert done["totalCount"] == len(source_docs("entries"))

        # The presigned URL works against MinIO as an admin would use it.
        (download,) = done["downloadUrls"]
        with urllib.request.urlopen(download["url"], timeout=10) as response:
            assert response.read() == body

        event = kafka.find(events, lambda e: e.get("exportId") == created["id"])
        assert event["type"] == "export.finished"
        assert event["keys"] == [stored["key"]]
        assert uploads_of(s3, done["bucket"], stored["key"]) == []
    finally:
        kafka.close()
