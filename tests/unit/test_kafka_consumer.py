"""SteppingConsumer.wait_first: a message callback that finishes at once costs no task, one
that waits behaves as Faust's (core/kafka_consumer.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.kafka_consumer import SteppingConsumer


@pytest.fixture
async def consumer(app: Any) -> AsyncIterator[SteppingConsumer]:
    """A consumer never started (no broker): wait_first needs none."""

    async def nothing(*_: Any) -> None:
        return None

    assert app.transport.Consumer is SteppingConsumer
    made = SteppingConsumer(
        app.transport,
        callback=nothing,
        on_partitions_revoked=nothing,
        on_partitions_assigned=nothing,
        loop=asyncio.get_running_loop(),  # each test has a loop of its own
    )
    yield made
    made._thread.thread_loop.close()  # made for the consumer thread, which never started


async def test_a_callback_that_finishes_at_once_runs_in_the_callers_task(
    consumer: SteppingConsumer,
) -> None:
    ran_in: list[asyncio.Task[Any] | None] = []

    async def callback() -> int:
        ran_in.append(asyncio.current_task())
        return 5

    result = await consumer.wait_first(callback(), consumer.suspend_flow.wait())

    assert result.results == [5]
    assert not result.stopped
    assert ran_in == [asyncio.current_task()]


async def test_a_callback_that_waits_is_carried_on_to_its_result(
    consumer: SteppingConsumer,
) -> None:
    room = asyncio.Event()
    steps: list[str] = []

    async def callback() -> int:
        steps.append("before")
        await room.wait()
        steps.append("after")
        await asyncio.sleep(0)
        return 7

    waiting = asyncio.ensure_future(consumer.wait_first(callback(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0)
    assert steps == ["before"]
    room.set()
    result = await asyncio.wait_for(waiting, timeout=5)

    assert result.results == [7]
    assert steps == ["before", "after"]


async def test_a_suspended_flow_cancels_a_waiting_callback(consumer: SteppingConsumer) -> None:
    cancelled = asyncio.Event()

    async def callback() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(consumer.wait_first(callback(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0)
    consumer.suspend_flow.set()
    try:
        result = await asyncio.wait_for(waiting, timeout=5)
    finally:
        consumer.suspend_flow.clear()

    assert len(result.done) == 1  # the suspension, not the callback
    assert result.results == [True]
    await asyncio.wait_for(cancelled.wait(), timeout=5)


@pytest.mark.parametrize("waits_first", [False, True])
async def test_a_callback_error_reaches_the_caller(
    consumer: SteppingConsumer, waits_first: bool
) -> None:
    async def callback() -> None:
        if waits_first:
            await asyncio.sleep(0)
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        await consumer.wait_first(callback(), consumer.suspend_flow.wait())


async def test_other_waits_go_the_faust_way(consumer: SteppingConsumer) -> None:
    async def callback() -> int:
        return 3

    ran = await consumer.wait_first(callback(), timeout=5)
    assert ran.results == [3]
