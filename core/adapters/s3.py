"""ObjectStore over aiobotocore: the only module that talks to S3.

Every call goes through the retrier (core.retry): throttling, 5xx and dropped connections
are retried, a part is sent again from the bytes it still holds, a streamed read goes on
from the byte it got to, and what a lost response may have done (an upload created or
completed twice) is settled after the retry.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Collection
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from core.adapters.faults import classify_s3, s3_error_code
from core.errors import UploadFailed
from core.retry import DEFAULT_RETRY, NO_RETRY, Retrier, RetryHook, RetryPolicy

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_READ_CHUNK = 1024 * 1024
_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per call
_MAX_CUTS_IN_A_ROW = 5  # a streamed read cut off this often without a byte between: give up


def s3_retrier(policy: RetryPolicy = DEFAULT_RETRY, on_retry: RetryHook | None = None) -> Retrier:
    return Retrier("s3", classify_s3, policy, on_retry)


class S3MultipartUpload:
    """One multipart upload; parts may be sent concurrently, numbered by the caller."""

    def __init__(
        self, client: S3Client, bucket: str, key: str, upload_id: str, retrier: Retrier
    ) -> None:
        self._client = client
        self._retry = retrier
        self.bucket = bucket
        self.key = key
        self._upload_id = upload_id
        self._etags: dict[int, str] = {}
        self._sizes: dict[int, int] = {}

    async def upload_part(self, part_number: int, data: bytes) -> None:
        response = await self._retry.call(
            f"uploading part {part_number} of {self.key}",
            lambda: self._client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=part_number,
                Body=data,
            ),
        )
        self._etags[part_number] = response["ETag"]
        self._sizes[part_number] = len(data)

    async def complete(self) -> None:
        parts: Any = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        tries = 0

        async def complete_once() -> None:
            nonlocal tries
            tries += 1
            try:
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except ClientError as exc:
                # A try whose answer was lost may have completed the object: then the upload
                # is gone and the object, of the parts' size, is there.
                if tries > 1 and s3_error_code(exc) == "NoSuchUpload" and await self._landed():
                    return
                raise

        await self._retry.call(f"completing {self.key}", complete_once)

    async def abort(self) -> None:
        # NoSuchUpload: aborted already (a retry whose first answer was lost), as wanted.
        await self._retry.call(
            f"aborting the upload of {self.key}",
            lambda: _ignore_no_such_upload(
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
                )
            ),
        )

    async def _landed(self) -> bool:
        """Whether the object is there with the size of the parts sent (404: it is not)."""
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if s3_error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return int(head["ContentLength"]) == sum(self._sizes.values())


class S3ObjectStore:
    """The S3 operations of the service over one aiobotocore client."""

    def __init__(self, client: S3Client, retrier: Retrier | None = None) -> None:
        self._client = client
        self._retry = retrier or s3_retrier()

    async def start_upload(
        self, bucket: str, key: str, *, content_type: str, acl: str | None
    ) -> S3MultipartUpload:
        extra: dict[str, Any] = {"ACL": acl} if acl else {}
        tries = 0

        async def create() -> Any:
            nonlocal tries
            tries += 1
            return await self._client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, **extra
            )

        response = await self._retry.call(f"starting the upload of {key}", create)
        upload_id: str = response["UploadId"]
        if tries > 1:
            # A try whose answer was lost may have started an upload nobody would complete.
            await self._abort_uploads_of(bucket, key, keep=upload_id)
        return S3MultipartUpload(self._client, bucket, key, upload_id, self._retry)

    async def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str) -> None:
        await self._retry.call(
            f"writing {key}",
            lambda: self._client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type
            ),
        )

    async def iter_object(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """The object in chunks; a read cut off is opened again at the next byte, of the same
        version of the object (If-Match its ETag)."""
        where: dict[str, Any] = {"Bucket": bucket, "Key": key}
        received = 0
        size: int | None = None
        cuts_in_a_row = 0
        while size is None or received < size:
            response = await self._retry.call(
                f"reading {key}", functools.partial(self._client.get_object, **where)
            )
            if size is None:
                size = int(response["ContentLength"])
                where["IfMatch"] = response["ETag"]
            elif not str(response.get("ContentRange", "")).startswith(f"bytes {received}-"):
                response["Body"].close()
                raise UploadFailed(f"reading {key} again from byte {received}: S3 ignored Range")
            try:
                async with response["Body"] as stream:
                    while chunk := await self._read(stream):
                        received += len(chunk)
                        cuts_in_a_row = 0
                        yield chunk
            except _ReadCut as cut:
                cuts_in_a_row += 1
                if cuts_in_a_row >= _MAX_CUTS_IN_A_ROW:
                    raise UploadFailed(
                        f"reading {key} was cut off {cuts_in_a_row} times at byte {received}"
                    ) from cut.__cause__
            where["Range"] = f"bytes={received}-"

    async def _read(self, stream: Any) -> bytes:
        try:
            chunk: bytes = await stream.read(_READ_CHUNK)
        except Exception as exc:
            fault = self._retry.fault(exc)
            if fault is None or not fault.retryable:
                raise
            raise _ReadCut from exc
        return chunk

    async def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str:
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def delete_objects(self, bucket: str, keys: Collection[str]) -> None:
        ordered = list(keys)
        for start in range(0, len(ordered), _DELETE_BATCH):
            chunk = ordered[start : start + _DELETE_BATCH]
            await self._retry.call(
                f"deleting objects from {bucket}",
                functools.partial(self._delete_batch, bucket, chunk),
            )

    async def _delete_batch(self, bucket: str, keys: list[str]) -> None:
        delete: Any = {"Objects": [{"Key": k} for k in keys], "Quiet": True}
        response = await self._client.delete_objects(Bucket=bucket, Delete=delete)
        # Quiet mode answers only the keys it could not delete, each with an S3 error code:
        # raised as that error, so the retrier retries an InternalError and not an AccessDenied.
        if errors := response.get("Errors"):
            first = errors[0]
            transient = first.get("Code") in {"InternalError", "SlowDown", "ServiceUnavailable"}
            error: Any = {
                "Error": {
                    "Code": first.get("Code", "InternalError"),
                    "Message": f"{len(errors)} keys not deleted, e.g. {first.get('Key')}: "
                    f"{first.get('Message')}",
                },
                "ResponseMetadata": {"HTTPStatusCode": 500 if transient else 400},
            }
            raise ClientError(error, "DeleteObjects")

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        async def list_all() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
            return keys

        return await self._retry.call(f"listing {bucket}/{prefix}", list_all)

    async def abort_uploads(self, bucket: str, keys: Collection[str]) -> int:
        aborted = 0
        for key in keys:
            aborted += await self._abort_uploads_of(bucket, key)
        return aborted

    async def _abort_uploads_of(self, bucket: str, key: str, *, keep: str | None = None) -> int:
        async def abort_all() -> int:
            aborted = 0
            paginator = self._client.get_paginator("list_multipart_uploads")
            # Prefix=<the whole key> is the form every S3 implementation answers (MinIO
            # answers no shorter prefix); other keys that merely start with it are skipped.
            async for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for upload in page.get("Uploads", []):
                    if upload["Key"] != key or upload["UploadId"] == keep:
                        continue
                    await _ignore_no_such_upload(
                        self._client.abort_multipart_upload(
                            Bucket=bucket, Key=key, UploadId=upload["UploadId"]
                        )
                    )
                    aborted += 1
            return aborted

        return await self._retry.call(f"aborting earlier uploads of {key}", abort_all)

    async def ping(self, bucket: str) -> None:
        """One try: /ready reports an outage as it happens."""
        await self._retry.call(
            f"reaching S3 bucket {bucket}",
            lambda: self._client.head_bucket(Bucket=bucket),
            policy=NO_RETRY,
        )


class _ReadCut(Exception):
    """A streamed read lost its connection; iter_object asks again from where it got to."""


async def _ignore_no_such_upload(call: Awaitable[Any]) -> None:
    try:
        await call
    except ClientError as exc:
        if s3_error_code(exc) != "NoSuchUpload":
            raise
