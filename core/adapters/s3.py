"""ObjectStore over aiobotocore: the only module that talks to S3."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import UploadFailed

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_READ_CHUNK = 1024 * 1024
_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per call


class S3MultipartUpload:
    """One multipart upload; parts may be sent concurrently, numbered by the caller."""

    def __init__(self, client: S3Client, bucket: str, key: str, upload_id: str) -> None:
        self._client = client
        self.bucket = bucket
        self.key = key
        self._upload_id = upload_id
        self._etags: dict[int, str] = {}

    async def upload_part(self, part_number: int, data: bytes) -> None:
        try:
            response = await self._client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=part_number,
                Body=data,
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"uploading part {part_number} of {self.key} failed: {exc}") from exc
        self._etags[part_number] = response["ETag"]

    async def complete(self) -> None:
        parts: Any = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        try:
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"completing {self.key} failed: {exc}") from exc

    async def abort(self) -> None:
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"aborting the upload of {self.key} failed: {exc}") from exc


class S3ObjectStore:
    """The S3 operations of the service over one aiobotocore client."""

    def __init__(self, client: S3Client) -> None:
        self._client = client

    async def start_upload(
        self, bucket: str, key: str, *, content_type: str, acl: str | None
    ) -> S3MultipartUpload:
        extra: dict[str, Any] = {"ACL": acl} if acl else {}
        try:
            response = await self._client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, **extra
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"starting the upload of {key} failed: {exc}") from exc
        return S3MultipartUpload(self._client, bucket, key, response["UploadId"])

    async def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str) -> None:
        try:
            await self._client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"writing {key} failed: {exc}") from exc

    async def iter_object(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        try:
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                while chunk := await body.read(_READ_CHUNK):
                    yield chunk
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"reading {key} back failed: {exc}") from exc

    async def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str:
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def delete_objects(self, bucket: str, keys: Collection[str]) -> None:
        ordered = list(keys)
        try:
            for start in range(0, len(ordered), _DELETE_BATCH):
                chunk = ordered[start : start + _DELETE_BATCH]
                await self._client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"deleting objects from {bucket} failed: {exc}") from exc

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    async def abort_uploads(self, bucket: str, keys: Collection[str]) -> int:
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            for key in keys:
                # Prefix=<the whole key> is the form every S3 implementation answers (MinIO
                # answers no shorter prefix); other keys that merely start with it are skipped.
                async for page in paginator.paginate(Bucket=bucket, Prefix=key):
                    for upload in page.get("Uploads", []):
                        if upload["Key"] != key:
                            continue
                        await self._client.abort_multipart_upload(
                            Bucket=bucket, Key=key, UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"aborting earlier uploads in {bucket} failed: {exc}") from exc
        return aborted

    async def ping(self, bucket: str) -> None:
        try:
            await self._client.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise UploadFailed(f"S3 bucket {bucket} unreachable: {exc}") from exc
