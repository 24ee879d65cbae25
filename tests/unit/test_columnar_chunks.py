"""Replies joined into chunks for the columnar engine (EXPORT_COLUMNAR_CHUNK_BYTES)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable

import bson
import pytest

from exporters.bson_columns import document_offsets
from exporters.cell_frames import EncodedBatch
from exporters.runner import _coalesced, _encoded


async def _replies(sizes: list[int]) -> AsyncGenerator[bytes, None]:
    number = 0
    for size in sizes:
        yield b"".join(bson.encode({"n": number + i}) for i in range(size))
        number += size


async def _chunks(sizes: list[int], chunk_bytes: int) -> list[list[int]]:
    return [
        [bson.decode(raw[a:b])["n"] for a, b in itertools.pairwise(offs)]
        async for raw in _coalesced(_replies(sizes), chunk_bytes)
        for offs in [document_offsets(raw)]
    ]


async def test_replies_are_joined_until_a_chunk_holds_the_bytes_asked_for() -> None:
    one = len(bson.encode({"n": 0}))  # every document here has the same size
    chunks = await _chunks([2, 2, 2, 2, 1], chunk_bytes=3 * one)
    assert chunks == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


async def test_zero_keeps_each_reply_alone() -> None:
    assert await _chunks([2, 1, 3], chunk_bytes=0) == [[0, 1], [2], [3, 4, 5]]


async def test_no_reply_gives_no_chunk() -> None:
    assert await _chunks([], chunk_bytes=1024) == []


class _Encoder:
    """Encodes chunk n when the test releases n; records which chunks were being encoded."""

    def __init__(self) -> None:
        self.release: dict[bytes, asyncio.Event] = {}
        self.started: list[bytes] = []
        self.cancelled: list[bytes] = []
        self.progress = asyncio.Condition()

    async def encode(self, raw: bytes) -> EncodedBatch:
        async with self.progress:
            self.started.append(raw)
            self.progress.notify_all()
        event = self.release.setdefault(raw, asyncio.Event())
        try:
            await event.wait()
        except asyncio.CancelledError:
            self.cancelled.append(raw)
            raise
        if raw == b"bad":
            raise ValueError("a chunk that cannot be encoded")
        return EncodedBatch(raw, 1)

    def let_go(self, raw: bytes) -> None:
        self.release.setdefault(raw, asyncio.Event()).set()


async def _chunks_of(*raws: bytes) -> AsyncGenerator[bytes, None]:
    for raw in raws:
        yield raw


async def _until(encoder: _Encoder, condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5), encoder.progress:
        await encoder.progress.wait_for(condition)


async def test_two_chunks_are_encoded_at_once_and_come_out_in_order() -> None:
    encoder = _Encoder()
    batches = _encoded(_chunks_of(b"a", b"b", b"c"), encoder, in_flight=2)
    first = asyncio.ensure_future(anext(batches))
    # The second chunk starts while the first still waits on its look-ups.
    await _until(encoder, lambda: encoder.started == [b"a", b"b"])
    encoder.let_go(b"b")  # the second is done first ...
    await asyncio.sleep(0)
    assert not first.done()
    encoder.let_go(b"a")
    assert (await first).data == b"a"  # ... and still comes second
    encoder.let_go(b"c")
    assert [batch.data async for batch in batches] == [b"b", b"c"]


async def test_one_in_flight_encodes_a_chunk_at_a_time() -> None:
    encoder = _Encoder()
    batches = _encoded(_chunks_of(b"a", b"b"), encoder, in_flight=1)
    first = asyncio.ensure_future(anext(batches))
    await _until(encoder, lambda: encoder.started == [b"a"])
    for _ in range(10):
        await asyncio.sleep(0)
    assert encoder.started == [b"a"]
    encoder.let_go(b"a")
    encoder.let_go(b"b")
    assert (await first).data == b"a"
    assert [batch.data async for batch in batches] == [b"b"]


async def test_a_failed_chunk_fails_the_export_and_cancels_the_one_beside_it() -> None:
    encoder = _Encoder()
    batches = _encoded(_chunks_of(b"bad", b"b", b"c"), encoder, in_flight=2)
    first = asyncio.ensure_future(anext(batches))
    await _until(encoder, lambda: encoder.started == [b"bad", b"b"])
    encoder.let_go(b"bad")
    with pytest.raises(ValueError, match="cannot be encoded"):
        await first
    assert encoder.cancelled == [b"b"]


async def test_closing_early_cancels_the_chunks_being_encoded() -> None:
    encoder = _Encoder()
    batches = _encoded(_chunks_of(b"a", b"b", b"c"), encoder, in_flight=2)
    first = asyncio.ensure_future(anext(batches))
    await _until(encoder, lambda: len(encoder.started) == 2)
    encoder.let_go(b"a")
    assert (await first).data == b"a"
    await batches.aclose()
    assert encoder.cancelled == [b"b"]
