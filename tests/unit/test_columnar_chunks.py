"""Replies joined into chunks for the columnar engine (EXPORT_COLUMNAR_CHUNK_BYTES)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

import bson
import pytest

from exporters.bson_columns import document_offsets
from exporters.cell_frames import EncodedBatch
from exporters.columnar import ColumnarBatches, columnar_plan
from exporters.registry import get_spec
from exporters.reply_chunks import coalesced
from exporters.runner import _encoded, load_context
from tests.fakes import InMemorySource


async def _replies(sizes: list[int]) -> AsyncGenerator[bytes, None]:
    number = 0
    for size in sizes:
        yield b"".join(bson.encode({"n": number + i}) for i in range(size))
        number += size


async def _chunks(sizes: list[int], chunk_bytes: int) -> list[list[int]]:
    return [
        [bson.decode(raw[a:b])["n"] for a, b in itertools.pairwise(offs)]
        async for raw in coalesced(_replies(sizes), chunk_bytes)
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


class _WatchedBatches(ColumnarBatches):
    """The engine's batches, recording how many chunks' CPU work ran at once.

    Each CPU step waits a little for another to start beside it, so that two steps that
    could overlap do.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._lock = threading.Lock()
        self._inside = 0
        self.most_at_once = 0
        self._another = threading.Event()

    def _step(self, work: Callable[[], Any]) -> Any:
        with self._lock:
            self._inside += 1
            self.most_at_once = max(self.most_at_once, self._inside)
            if self._inside > 1:
                self._another.set()
        try:
            self._another.wait(timeout=0.2)
            return work()
        finally:
            with self._lock:
                self._inside -= 1

    def _prepare(self, raw: bytes) -> Any:
        return self._step(lambda: super(_WatchedBatches, self)._prepare(raw))

    def _finish(self, stage: Any, joined: Any) -> Any:
        return self._step(lambda: super(_WatchedBatches, self)._finish(stage, joined))


async def test_chunks_in_flight_run_their_cpu_work_one_at_a_time() -> None:
    # Two chunks are worked on at once so that one's look-ups overlap the other's CPU work;
    # their CPU work itself takes turns, or two threads contend with the event loop.
    users = [{"_id": f"u{i}", "email": f"u{i}@example.com"} for i in range(40)]
    entries = [
        {"_id": f"e{i}", "campaignId": "c1", "userId": f"u{i % 40}", "marketId": "m1"}
        for i in range(60)
    ]
    source = InMemorySource(
        {
            "campaigns": [{"_id": "c1", "name": "C"}],
            "markets": [{"_id": "m1", "campaignId": "c1", "name": "M"}],
            "users": users,
            "entries": entries,
        }
    )
    spec = get_spec("entries")
    plan = columnar_plan(spec)
    ctx = await load_context(spec, source, export_id="x", campaign_id="c1", params={})
    batches = _WatchedBatches(plan, ctx, source, source)
    raws = [raw async for raw in source.find_raw("entries", {"campaignId": "c1"}, batch_size=20)]
    encoded = [batch async for batch in _encoded(_chunks_of(*raws), batches, in_flight=2)]
    assert sum(batch.rows for batch in encoded) == 60
    assert batches.most_at_once == 1
