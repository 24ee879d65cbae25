"""Replies joined into chunks for the columnar engine (EXPORT_COLUMNAR_CHUNK_BYTES)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator

import bson

from exporters.bson_columns import document_offsets
from exporters.runner import _coalesced


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
