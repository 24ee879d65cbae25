"""Fault classification (core.adapters.faults) and the retrier (core.retry)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from bson.errors import InvalidBSON
from pymongo.errors import (
    AutoReconnect,
    CursorNotFound,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from core.adapters.faults import classify_mongo, classify_s3
from core.errors import (
    BucketNotFound,
    SourceAuthFailed,
    SourceQueryFailed,
    SourceUnavailable,
    StorageAccessDenied,
    StorageRequestRejected,
    UnreadableDocument,
    UploadFailed,
)
from core.retry import Retrier, RetryPolicy

FAST = RetryPolicy(initial_delay_seconds=0.001, max_delay_seconds=0.002, budget_seconds=30.0)


def s3_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("exc", "retryable", "reason", "error"),
    [
        (AutoReconnect("connection reset"), True, "connection", SourceUnavailable),
        (NetworkTimeout("timed out"), True, "connection", SourceUnavailable),
        (NotPrimaryError("not primary"), True, "connection", SourceUnavailable),
        (ServerSelectionTimeoutError("no primary"), True, "connection", SourceUnavailable),
        (CursorNotFound("cursor id 7 not found", 43), True, "timeout", SourceUnavailable),
        (OperationFailure("stepped down", 189), True, "server_busy", SourceUnavailable),
        (OperationFailure("interrupted", 11602), True, "server_busy", SourceUnavailable),
        (OperationFailure("auth failed", 18), False, "auth", SourceAuthFailed),
        (OperationFailure("unauthorized", 13), False, "auth", SourceAuthFailed),
        (OperationFailure("bad query", 2), False, "rejected", SourceQueryFailed),
        # FerretDB stopped mid-getMore (seen in the e2e outage test): a shutdown, retried.
        (
            OperationFailure(
                "[msg_getmore.go:204 handler.(*Handler).MsgGetMore] [query_iterator.go:79 "
                "sqlite.(*queryIterator).Next] context canceled",
                1,
                {"ok": 0, "errmsg": "[query_iterator.go:79] context canceled after delay"},
            ),
            True,
            "server_stopping",
            SourceUnavailable,
        ),
        (OperationFailure("internal error: bad plan", 1), False, "rejected", SourceQueryFailed),
        (InvalidBSON("bad length"), False, "bad_document", UnreadableDocument),
        (ConnectionResetError("reset by peer"), True, "connection", SourceUnavailable),
    ],
)
def test_mongodb_errors_are_classified(
    exc: BaseException, retryable: bool, reason: str, error: type[Exception]
) -> None:
    fault = classify_mongo(exc)
    assert fault is not None
    assert (fault.retryable, fault.reason, fault.error) == (retryable, reason, error)


@pytest.mark.parametrize(
    ("exc", "retryable", "reason", "error"),
    [
        (s3_error("SlowDown", 503), True, "throttled", UploadFailed),
        (s3_error("ServiceUnavailable", 503), True, "throttled", UploadFailed),
        (s3_error("TooManyRequests", 429), True, "throttled", UploadFailed),
        (s3_error("InternalError", 500), True, "server_error", UploadFailed),
        (s3_error("BadGateway", 502), True, "server_error", UploadFailed),
        (s3_error("RequestTimeout", 400), True, "server_error", UploadFailed),
        (s3_error("NoSuchBucket", 404), False, "no_bucket", BucketNotFound),
        (s3_error("AccessDenied", 403), False, "denied", StorageAccessDenied),
        (s3_error("InvalidAccessKeyId", 403), False, "denied", StorageAccessDenied),
        (s3_error("SignatureDoesNotMatch", 403), False, "denied", StorageAccessDenied),
        (s3_error("EntityTooSmall", 400), False, "rejected", StorageRequestRejected),
        (s3_error("NoSuchKey", 404), False, "rejected", StorageRequestRejected),
        (EndpointConnectionError(endpoint_url="http://s3"), True, "connection", UploadFailed),
        (ConnectTimeoutError(endpoint_url="http://s3"), True, "connection", UploadFailed),
        (ReadTimeoutError(endpoint_url="http://s3"), True, "connection", UploadFailed),
        (ParamValidationError(report="Bucket missing"), False, "client", StorageRequestRejected),
        (NoCredentialsError(), False, "denied", StorageAccessDenied),
    ],
)
def test_s3_errors_are_classified(
    exc: BaseException, retryable: bool, reason: str, error: type[Exception]
) -> None:
    fault = classify_s3(exc)
    assert fault is not None
    assert (fault.retryable, fault.reason, fault.error) == (retryable, reason, error)


@pytest.mark.parametrize("classify", [classify_mongo, classify_s3])
def test_errors_that_are_not_a_dependencys_are_not_classified(
    classify: Callable[[BaseException], object],
) -> None:
    assert classify(KeyError("x")) is None
    assert classify(ValueError("bug")) is None


class Flaky:
    """Fails with each of `errors` in turn, then returns `result`; counts its calls."""

    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        self.called.set()
        if self.errors:
            raise self.errors.pop(0)
        return self.result


async def test_faults_that_may_pass_are_retried_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retries: list[tuple[str, str]] = []
    retrier = Retrier("mongodb", classify_mongo, FAST, lambda d, r: retries.append((d, r)))
    op = Flaky([AutoReconnect("reset"), OperationFailure("stepped down", 189)])
    with caplog.at_level(logging.WARNING, logger="core.retry"):
        assert await retrier.call("reading entries", op) == "ok"
    assert op.calls == 3
    assert retries == [("mongodb", "connection"), ("mongodb", "server_busy")]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "reading entries failed (connection, try 1)" in messages[0]


async def test_a_permanent_fault_fails_at_once_with_its_own_code() -> None:
    retries: list[tuple[str, str]] = []
    retrier = Retrier("s3", classify_s3, FAST, lambda d, r: retries.append((d, r)))
    op = Flaky([s3_error("NoSuchBucket", 404)])
    with pytest.raises(BucketNotFound, match=r"writing k failed \(no_bucket\)") as failed:
        await retrier.call("writing k", op)
    assert op.calls == 1
    assert retries == []
    assert isinstance(failed.value.__cause__, ClientError)


async def test_a_fault_that_outlasts_the_budget_fails_with_the_tries_it_took() -> None:
    policy = RetryPolicy(initial_delay_seconds=0.001, max_delay_seconds=0.005, budget_seconds=0.2)
    retrier = Retrier("s3", classify_s3, policy)
    op = Flaky([s3_error("SlowDown", 503)] * 10_000)
    with pytest.raises(UploadFailed, match=r"after \d+ tries \(throttled\)"):
        await retrier.call("uploading part 1 of k", op)
    assert op.calls > 2


async def test_a_budget_of_zero_tries_once() -> None:
    retrier = Retrier("mongodb", classify_mongo, RetryPolicy(budget_seconds=0.0))
    op = Flaky([AutoReconnect("down")])
    with pytest.raises(SourceUnavailable):
        await retrier.call("pinging", op)
    assert op.calls == 1


async def test_a_bug_is_raised_unchanged_and_not_retried() -> None:
    retrier = Retrier("mongodb", classify_mongo, FAST)
    op = Flaky([KeyError("campaignId")])
    with pytest.raises(KeyError):
        await retrier.call("reading entries", op)
    assert op.calls == 1


async def test_the_callers_cancellation_ends_the_retries() -> None:
    slow = RetryPolicy(initial_delay_seconds=60, max_delay_seconds=60, budget_seconds=3600)
    retrier = Retrier("s3", classify_s3, slow)
    op = Flaky([s3_error("SlowDown", 503)] * 10)
    task = asyncio.ensure_future(retrier.call("uploading", op))
    await op.called.wait()  # the first try has failed; the task waits in its backoff
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert op.calls == 1


@pytest.mark.parametrize("reply", [b"\x00\x00\x00\x00", b"\x03\x00\x00\x00\x00", b"\x05\x00"])
def test_a_reply_that_is_not_bson_is_refused_not_looped_on(reply: bytes) -> None:
    from exporters.bson_columns import document_offsets

    with pytest.raises(InvalidBSON):
        document_offsets(reply)
    assert classify_mongo(InvalidBSON("x")) is not None
