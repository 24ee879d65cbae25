"""A ZIP archive written straight into an ObjectSink with the stdlib's zipfile, no seeking."""

from __future__ import annotations

import asyncio
import datetime as dt
import zipfile
from collections.abc import AsyncIterator

from exporters.sink import ObjectSink


class _Spool:
    """An unseekable file for zipfile: what it writes waits here until drained to the sink.

    Without `tell`/`seek`, zipfile writes data descriptors after each member instead of
    going back to patch sizes, which is what a one-way upload needs.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        return None


class ZipStreamWriter:
    """Members are added one after the other; each is compressed as its chunks arrive."""

    def __init__(self, sink: ObjectSink, *, modified: dt.datetime) -> None:
        self._sink = sink
        self._spool = _Spool()
        self._zip = zipfile.ZipFile(  # type: ignore[call-overload]
            self._spool,
            mode="w",
            compression=zipfile.ZIP_DEFLATED,
            allowZip64=True,
        )
        stamp = modified.astimezone(dt.UTC)
        self._date_time = (
            stamp.year,
            stamp.month,
            stamp.day,
            stamp.hour,
            stamp.minute,
            stamp.second,
        )

    async def _drain(self) -> None:
        if self._spool.buffer:
            data = bytes(self._spool.buffer)
            self._spool.buffer.clear()
            await self._sink.write(data)

    async def add(self, name: str, chunks: AsyncIterator[bytes]) -> None:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        # Sizes are unknown until the end: Zip64 extra fields from the start, so that a
        # member over 4 GiB is still valid.
        with self._zip.open(info, mode="w", force_zip64=True) as member:
            async for chunk in chunks:
                # Deflate runs in a thread (zlib releases the GIL): the loop stays free.
                await asyncio.to_thread(member.write, chunk)
                await self._drain()
        await self._drain()

    async def close(self) -> None:
        """Write the central directory."""
        self._zip.close()
        await self._drain()
