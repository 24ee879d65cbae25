"""read_ahead: items in order, a bounded number produced ahead, errors and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from core.read_ahead import read_ahead


async def _numbers(count: int, produced: list[int]) -> AsyncIterator[int]:
    for n in range(count):
        produced.append(n)
        yield n


async def test_items_arrive_in_order_and_exceptions_are_items_too() -> None:
    async def source() -> AsyncIterator[object]:
        for item in (1, ValueError("an item, not a failure"), 3):
            yield item

    got = [item async for item in read_ahead(source(), 2)]
    assert got[0] == 1
    assert isinstance(got[1], ValueError)
    assert got[2] == 3


async def test_the_producer_stays_at_most_depth_items_ahead() -> None:
    produced: list[int] = []
    async with aclosing(read_ahead(_numbers(100, produced), 3)) as ahead:
        first = await anext(ahead)
        for _ in range(20):  # let the producer run as far as it may
            await asyncio.sleep(0)
        # the one handed out, three queued, one waiting to be put
        assert first == 0
        assert len(produced) <= 1 + 3 + 1
    assert len(produced) < 100


async def test_a_failure_of_the_source_reaches_the_consumer_after_its_items() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("source broke")

    got: list[int] = []

    async def consume() -> None:
        async for item in read_ahead(failing(), 4):
            got.append(item)

    with pytest.raises(RuntimeError, match="source broke"):
        await consume()
    assert got == [1]


async def test_closing_early_cancels_the_producer_and_closes_the_source() -> None:
    cancelled = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            cancelled.set()

    async with aclosing(read_ahead(endless(), 2)) as ahead:
        assert await anext(ahead) == 0
    assert cancelled.is_set()  # at once, not when the generator is collected


async def test_a_producer_ended_by_a_base_exception_does_not_hang_the_consumer() -> None:
    async def cancelled_inside() -> AsyncIterator[int]:
        yield 1
        raise asyncio.CancelledError  # e.g. a driver future cancelled under the source

    got: list[int] = []

    async def consume() -> None:
        async for item in read_ahead(cancelled_inside(), 2):
            got.append(item)

    with pytest.raises(RuntimeError, match="stopped before the end"):
        await asyncio.wait_for(consume(), timeout=5)
    assert got == [1]
