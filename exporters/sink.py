"""ObjectSink: bytes in, a multipart upload out, in fixed-size parts with bounded memory."""

from __future__ import annotations

import asyncio
import hashlib

from opentelemetry.trace import SpanKind

from core import tracing
from core.deps import MultipartUpload
from core.models import StoredObject

_HASH_IN_THREAD_BYTES = 256 * 1024


class ObjectSink:
    """Buffers at most one part, keeps at most `max_in_flight` parts uploading at once.

    Peak memory is about (max_in_flight + 1) x part_size whatever the object size; the
    object's size and sha256 are computed on the way through.
    """

    def __init__(self, upload: MultipartUpload, *, part_size: int, max_in_flight: int) -> None:
        self._upload = upload
        self._part_size = part_size
        self._max_in_flight = max_in_flight
        self._buffer = bytearray()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._next_part = 1
        self._sha256 = hashlib.sha256()
        self.size = 0

    @property
    def key(self) -> str:
        return self._upload.key

    async def write(self, data: bytes) -> None:
        if len(data) >= _HASH_IN_THREAD_BYTES:
            # About 5 ms for 2 MiB: in a thread (hashlib lets go of the GIL), off the loop.
            await asyncio.to_thread(self._sha256.update, data)
        else:
            self._sha256.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            await self._send(part)

    async def _send(self, part: bytes) -> None:
        while len(self._in_flight) >= self._max_in_flight:
            done, self._in_flight = await asyncio.wait(
                self._in_flight, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()  # re-raise an upload failure here, before buffering more
        number = self._next_part
        self._next_part += 1
        self._in_flight.add(asyncio.create_task(self._upload_part(number, part)))

    async def _upload_part(self, number: int, part: bytes) -> None:
        # The task inherits the export's context: each part is a child span of its run.
        attributes = {"s3.part_number": number, "s3.part_bytes": len(part)}
        with tracing.span("s3.upload_part", kind=SpanKind.CLIENT, attributes=attributes):
            await self._upload.upload_part(number, part)

    async def close(self) -> StoredObject:
        """Send what is buffered, wait for every part and complete the object."""
        if self._buffer or self._next_part == 1:
            part = bytes(self._buffer)
            self._buffer.clear()
            await self._send(part)
        if self._in_flight:
            done, _ = await asyncio.wait(self._in_flight)
            self._in_flight = set()
            for task in done:
                task.result()
        attributes = {"s3.parts": self._next_part - 1, "s3.object_bytes": self.size}
        with tracing.span("s3.complete_upload", kind=SpanKind.CLIENT, attributes=attributes):
            await self._upload.complete()
        return StoredObject(key=self._upload.key, size=self.size, sha256=self._sha256.hexdigest())

    async def abort(self) -> None:
        """Stop every part upload and abort the multipart upload: nothing is left in S3."""
        for task in self._in_flight:
            task.cancel()
        if self._in_flight:
            done, _ = await asyncio.wait(self._in_flight)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: the abort is what matters now
        self._in_flight = set()
        self._buffer.clear()
        with tracing.span("s3.abort_upload", kind=SpanKind.CLIENT):
            await self._upload.abort()
