"""Retries on real servers: faults put between the adapters and FerretDB / SeaweedFS.

A TCP proxy cuts the MongoDB connections mid-read; an HTTP proxy answers S3 requests with
`503 SlowDown`, drops them, loses S3's answer or cuts a download. The adapters must retry
the faults that pass, resume where they were (the next document, the same part, the next
byte), settle what a lost answer did, and fail at once on the faults that do not pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import bson
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from core.adapters.mongo import MongoSource, mongo_retrier
from core.adapters.s3 import S3ObjectStore, s3_retrier
from core.errors import (
    BucketNotFound,
    SourceQueryFailed,
    SourceUnavailable,
    StorageAccessDenied,
    StorageRequestRejected,
)
from core.retry import RetryPolicy
from devstack.faultproxy import S3FaultProxy, TcpFaultProxy
from devstack.stack import LocalStack
from tests.e2e.conftest import BIG, wait_for

pytestmark = pytest.mark.e2e

BUCKET = "exports"
MiB = 1024 * 1024
# Short delays keep the tests quick; the budget is what production has.
POLICY = RetryPolicy(initial_delay_seconds=0.05, max_delay_seconds=0.5, budget_seconds=60)


class Retries:
    """The retry hook: every (dependency, reason) the adapters retried."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, dependency: str, reason: str) -> None:
        self.seen.append((dependency, reason))


# -- MongoDB ---------------------------------------------------------------------------------


@pytest.fixture
def mongo_proxy(stack: LocalStack) -> Iterator[TcpFaultProxy]:
    port = int(stack.mongo_url.rsplit(":", 1)[1].strip("/"))
    with TcpFaultProxy("127.0.0.1", port) as proxy:
        yield proxy


def proxied_source(
    stack: LocalStack, proxy: TcpFaultProxy, retries: Retries, policy: RetryPolicy = POLICY
) -> MongoSource:
    return MongoSource.connect(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true",
        stack.mongo_database,
        retrier=mongo_retrier(policy, retries),
    )


@pytest.mark.parametrize("raw", [False, True], ids=["decoded", "raw"])
async def test_a_read_cut_mid_stream_resumes_at_the_next_document(
    stack: LocalStack, mongo_proxy: TcpFaultProxy, big_campaign: int, raw: bool
) -> None:
    retries = Retries()
    source = proxied_source(stack, mongo_proxy, retries)
    # About 11k of the big campaign's entries (ids below "...-e2" sort first).
    query = {"campaignId": BIG, "_id": {"$lt": f"{BIG}-e2"}}
    sort = [("_id", 1)]
    try:
        expected = [
            doc["_id"]
            async for batch in source.find("entries", query, projection={"_id": 1}, sort=sort)
            for doc in batch
        ]
        assert len(expected) > 10_000

        got: list[str] = []
        cuts_at = {3, 9}  # batches after which every connection is reset
        batches = (
            source.find_raw("entries", query, projection={"_id": 1}, sort=sort, batch_size=500)
            if raw
            else source.find("entries", query, projection={"_id": 1}, sort=sort, batch_size=500)
        )
        number = 0
        async for batch in batches:
            docs = bson.decode_all(batch) if isinstance(batch, bytes) else batch
            got.extend(doc["_id"] for doc in docs)
            number += 1
            if number in cuts_at:
                await asyncio.to_thread(mongo_proxy.cut)
    finally:
        await source.close()
    assert got == expected  # every document once, in order, across the resets
    assert mongo_proxy.cuts == len(cuts_at)
    assert retries.seen
    assert {dependency for dependency, _ in retries.seen} == {"mongodb"}


async def test_lookups_and_counts_are_retried_across_a_reset(
    stack: LocalStack, mongo_proxy: TcpFaultProxy, big_campaign: int
) -> None:
    retries = Retries()
    source = proxied_source(stack, mongo_proxy, retries)
    try:
        ids = [f"{BIG}-u{i}" for i in range(0, 3000, 3)]
        before = await source.find_by_ids("users", ids)
        await asyncio.to_thread(mongo_proxy.cut)
        after = await source.find_by_ids("users", ids)
        await asyncio.to_thread(mongo_proxy.cut)
        assert await source.count("entries", {"campaignId": BIG}) == big_campaign // 2
    finally:
        await source.close()
    assert before == after
    assert len(after) == len(ids)


async def test_a_query_the_server_rejects_fails_at_once(
    stack: LocalStack, mongo_proxy: TcpFaultProxy
) -> None:
    retries = Retries()
    source = proxied_source(stack, mongo_proxy, retries)
    try:
        with pytest.raises(SourceQueryFailed, match="rejected"):
            await source.count("entries", {"$noSuchOperator": 1})
    finally:
        await source.close()
    assert retries.seen == []


async def test_a_server_that_stays_away_fails_after_the_budget(
    stack: LocalStack, mongo_proxy: TcpFaultProxy
) -> None:
    retries = Retries()
    short = RetryPolicy(initial_delay_seconds=0.05, max_delay_seconds=0.2, budget_seconds=3)
    source = proxied_source(stack, mongo_proxy, retries, short)
    await source.ping()
    mongo_proxy.close()  # nothing listens on the proxy's port any more
    try:
        with pytest.raises(SourceUnavailable, match=r"after \d+ tries"):
            await source.count("entries", {"campaignId": BIG})
    finally:
        await source.close()
    assert retries.seen


# -- S3 --------------------------------------------------------------------------------------


@pytest.fixture
def s3_proxy(stack: LocalStack) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(stack.s3_endpoint_url) as proxy:
        yield proxy


@pytest.fixture
async def store(
    stack: LocalStack, s3_proxy: S3FaultProxy
) -> AsyncIterator[tuple[S3ObjectStore, Retries]]:
    retries = Retries()
    async with AsyncExitStack() as resources:
        client = await resources.enter_async_context(_client(stack, s3_proxy.url))
        yield S3ObjectStore(client, s3_retrier(POLICY, retries)), retries


def _client(stack: LocalStack, endpoint: str, secret: str | None = None) -> Any:
    env = stack.env
    return get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["S3_REGION"],
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or env["S3_SECRET_ACCESS_KEY"],
        config=AioConfig(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"total_max_attempts": 1},
        ),
    )


def _payload(size: int) -> bytes:
    seed = uuid.uuid4().bytes
    return (seed * (size // len(seed) + 1))[:size]


def _open_uploads(stack: LocalStack, key: str) -> list[str]:
    listed = stack.s3_client().list_multipart_uploads(Bucket=BUCKET, Prefix=key)
    return [u["UploadId"] for u in listed.get("Uploads", [])]


async def test_a_multipart_upload_survives_slowdowns_drops_and_lost_answers(
    stack: LocalStack, s3_proxy: S3FaultProxy, store: tuple[S3ObjectStore, Retries]
) -> None:
    s3, retries = store
    key = f"faults/{uuid.uuid4()}.csv"
    parts = [_payload(5 * MiB), _payload(5 * MiB), _payload(123)]
    # Each fault once, on the request it is aimed at.
    # S3 starts an upload whose answer is lost: nobody would complete it.
    s3_proxy.inject("lose_answer", matches=f"POST /{BUCKET}/{key}?uploads")
    s3_proxy.inject("error", matches="&partNumber=1", code="SlowDown", status=503)
    s3_proxy.inject("drop", matches="&partNumber=2")
    s3_proxy.inject("error", matches="&partNumber=3", code="InternalError", status=500)
    # S3 completes the object, but its answer is lost: the retry sees NoSuchUpload.
    s3_proxy.inject("lose_answer", matches=f"POST /{BUCKET}/{key}?uploadId=")

    upload = await s3.start_upload(BUCKET, key, content_type="text/csv", acl=None)
    for number, data in enumerate(parts, start=1):
        await upload.upload_part(number, data)
    await upload.complete()

    assert s3_proxy.pending() == 0, s3_proxy.injected
    body = stack.s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(parts)).digest()
    assert _open_uploads(stack, key) == []  # the orphan of the lost answer was aborted
    assert {reason for _, reason in retries.seen} >= {"throttled", "server_error", "connection"}


async def test_a_download_cut_off_goes_on_from_the_next_byte(
    stack: LocalStack, s3_proxy: S3FaultProxy, store: tuple[S3ObjectStore, Retries]
) -> None:
    s3, _ = store
    key = f"faults/{uuid.uuid4()}.bin"
    data = _payload(3 * MiB + 17)
    stack.s3_client().put_object(Bucket=BUCKET, Key=key, Body=data)
    s3_proxy.inject("truncate", matches=f"GET /{BUCKET}/{key}", times=2)
    got = b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)])
    assert s3_proxy.pending() == 0
    assert got == data


async def test_a_missing_bucket_and_a_wrong_secret_fail_at_once(
    stack: LocalStack, s3_proxy: S3FaultProxy, store: tuple[S3ObjectStore, Retries]
) -> None:
    s3, retries = store
    with pytest.raises(BucketNotFound):
        await s3.put_object("no-such-bucket", "k", b"1", content_type="text/plain")
    async with _client(stack, s3_proxy.url, secret="not-the-secret") as client:
        wrong = S3ObjectStore(client, s3_retrier(POLICY, retries))
        with pytest.raises(StorageAccessDenied):
            await wrong.put_object(BUCKET, "k", b"1", content_type="text/plain")
    assert retries.seen == []


async def test_presigned_urls_are_checked_by_the_server(stack: LocalStack) -> None:
    key = f"faults/{uuid.uuid4()}.csv"
    stack.s3_client().put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n")
    async with _client(stack, stack.s3_endpoint_url) as client:
        direct = S3ObjectStore(client)
        url = await direct.presign_get(BUCKET, key, expires_in=3600)
        short = await direct.presign_get(BUCKET, key, expires_in=1)
    assert _fetch(url) == (200, b"a,b\n")
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert _fetch(tampered)[0] == 403
    other_key = url.replace(key, key + "x")
    assert _fetch(other_key)[0] == 403
    # Once its second has passed, the short URL is refused (polled: no fixed sleep).
    wait_for(lambda: _fetch(short)[0] == 403, timeout=30, what="the short URL to expire")
    assert b"expired" in _fetch(short)[1].lower()


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_parts_under_5_mib_but_the_last_are_refused_as_on_aws(
    stack: LocalStack, store: tuple[S3ObjectStore, Retries]
) -> None:
    s3, retries = store
    key = f"faults/{uuid.uuid4()}.csv"
    upload = await s3.start_upload(BUCKET, key, content_type="text/csv", acl=None)
    await upload.upload_part(1, _payload(MiB))
    await upload.upload_part(2, _payload(10))
    with pytest.raises(StorageRequestRejected, match="EntityTooSmall"):
        await upload.complete()
    await upload.abort()
    assert retries.seen == []
    assert _open_uploads(stack, key) == []
