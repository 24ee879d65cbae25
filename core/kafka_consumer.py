"""The Kafka transport Faust reads with, without four tasks per message.

Faust hands every message it reads (an intake event, and during a recovery every record
of the status changelog) to `Service.wait_first(callback(message), suspend_flow)`, which
starts four tasks (the callback and three event waiters), waits on them and cancels three:
most of the worker's time while it recovers 100k records. Nearly every callback finishes
without waiting (it puts the message in a queue with room). `SteppingConsumer` steps the
callback once first; only a callback that has to wait goes the Faust way, carried on from
where it stopped.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


@types.coroutine
def _carry_on(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on driving `coro`, which was stepped once and now waits on `waiting_on`: what its
    task sends or throws in goes to `coro`, what `coro` waits on goes to its task."""
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation too: `coro` decides what it means
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class SteppingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; a callback that finishes at once costs no task."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 (Faust's signature)
        if not self._is_a_message_callback(coros, timeout):
            return await super().wait_first(*coros, timeout=timeout)
        callback, suspended = coros
        try:
            waiting_on = callback.send(None)
        except StopIteration as stop:
            suspended.close()  # never started: nothing to wait for any more
            return WaitResults([callback], [stop.value], False)
        except BaseException:
            suspended.close()
            raise
        rest = asyncio.get_running_loop().create_task(_carry_on(callback, waiting_on))
        return await super().wait_first(rest, suspended)

    def _is_a_message_callback(self, coros: tuple[Any, ...], timeout: Any) -> bool:
        """`_drain_messages`'s call: a message's callback and the wait for a suspended flow,
        while the flow runs and the consumer neither stops nor has crashed."""
        if timeout is not None or len(coros) != 2:
            return False
        callback, suspended = coros
        return (
            inspect.iscoroutine(callback)
            and inspect.iscoroutine(suspended)
            and suspended.__qualname__ == "Event.wait"
            and not self.suspend_flow.is_set()
            and not self._stopped.is_set()
            and not self._crashed.is_set()
        )


class SteppingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with `SteppingConsumer`."""

    Consumer = SteppingConsumer
