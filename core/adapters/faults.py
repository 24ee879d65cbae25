"""Which dependency errors may pass (retry them) and which will not (fail at once).

The one place that reads driver exceptions: the adapters hand every MongoDB or S3 error to
`classify_mongo` / `classify_s3` and act on the `Fault` only. A fault's `reason` is a short,
bounded label (metrics and logs); its `error` is the export error raised when the fault is
permanent or outlasts the retry budget.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from bson.errors import BSONError
from pymongo.errors import (
    ConnectionFailure,
    CursorNotFound,
    DocumentTooLarge,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from core.errors import (
    BucketNotFound,
    ExportServiceError,
    SourceAuthFailed,
    SourceQueryFailed,
    SourceUnavailable,
    StorageAccessDenied,
    StorageRequestRejected,
    UnreadableDocument,
    UploadFailed,
)
from core.retry import Fault

__all__ = ["classify_mongo", "classify_s3", "s3_error_code"]


# Server error codes that mean "not now" (MongoDB's retryable-reads specification, plus
# the time limits and a cursor the server lost in a restart, which a resumed read replaces).
_MONGO_TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        43,  # CursorNotFound
        50,  # MaxTimeMSExpired
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
_MONGO_AUTH_CODES = frozenset({11, 13, 18, 33})  # UserNotFound, Unauthorized, AuthFailed, ...


def _stopped_mid_query(exc: OperationFailure) -> bool:
    """FerretDB, stopped while it runs a query, answers it with an InternalError saying
    "context canceled" (MongoDB says InterruptedAtShutdown): the server going away, not a
    query it refuses. The connection fails on the next try."""
    message = (exc.details or {}).get("errmsg") or str(exc)
    return exc.code == 1 and "context canceled" in str(message)


def classify_mongo(exc: BaseException) -> Fault | None:
    """The fault of a MongoDB driver error; None for anything else (a bug stays a bug)."""
    if isinstance(exc, ConnectionFailure):
        # AutoReconnect, NetworkTimeout, NotPrimaryError, ServerSelectionTimeoutError, ...
        return Fault(True, "connection", SourceUnavailable)
    if isinstance(exc, CursorNotFound | ExecutionTimeout | WTimeoutError):
        return Fault(True, "timeout", SourceUnavailable)
    if isinstance(exc, BSONError | DocumentTooLarge):
        return Fault(False, "bad_document", UnreadableDocument)
    if isinstance(exc, OperationFailure):
        if exc.code in _MONGO_TRANSIENT_CODES or exc.has_error_label("RetryableError"):
            return Fault(True, "server_busy", SourceUnavailable)
        if _stopped_mid_query(exc):
            return Fault(True, "server_stopping", SourceUnavailable)
        if exc.code in _MONGO_AUTH_CODES:
            return Fault(False, "auth", SourceAuthFailed)
        return Fault(False, "rejected", SourceQueryFailed)
    if isinstance(exc, PyMongoError):
        return Fault(False, "driver", SourceQueryFailed)
    return _network(exc, SourceUnavailable)


_S3_THROTTLING = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_S3_TRANSIENT = frozenset(
    {"InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed"}
)
_S3_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccountProblem",
        "ExpiredToken",
        "InvalidToken",
    }
)


def classify_s3(exc: BaseException) -> Fault | None:
    """The fault of an S3 client error; None for anything else (a bug stays a bug)."""
    if isinstance(exc, ClientError):
        code, status = _client_error(exc)
        if code in _S3_THROTTLING or status in (429, 503):
            return Fault(True, "throttled", UploadFailed)
        if code in _S3_TRANSIENT or status >= 500:
            return Fault(True, "server_error", UploadFailed)
        if code == "NoSuchBucket":
            return Fault(False, "no_bucket", BucketNotFound)
        if code in _S3_DENIED or status == 403:
            return Fault(False, "denied", StorageAccessDenied)
        return Fault(False, "rejected", StorageRequestRejected)
    if isinstance(
        exc, BotoConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError
    ):
        return Fault(True, "connection", UploadFailed)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return Fault(False, "denied", StorageAccessDenied)
    if isinstance(exc, BotoCoreError):
        # Parameter validation and the like: this process's mistakes, not S3's weather.
        return Fault(False, "client", StorageRequestRejected)
    return _network(exc, UploadFailed)


def s3_error_code(exc: BaseException) -> str | None:
    """The S3 error code of a ClientError (NoSuchUpload, ...), else None."""
    return _client_error(exc)[0] if isinstance(exc, ClientError) else None


def _client_error(exc: ClientError) -> tuple[str, int]:
    response: Any = exc.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _network(exc: BaseException, error: type[ExportServiceError]) -> Fault | None:
    # A socket error the driver did not wrap (aiohttp's, a reset, a driver's own time-out)
    # passes like a dropped connection.
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        return Fault(True, "connection", error)
    return None
