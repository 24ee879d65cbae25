"""Reading an async iterator ahead of its consumer, in a task, with a bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


async def read_ahead(
    source: AsyncIterator[T], depth: int, *, name: str = "read-ahead"
) -> AsyncGenerator[T, None]:
    """The items of `source`, produced by a task up to `depth` items before they are asked for.

    The producer's I/O (a database's next batch, a join's look-ups) then overlaps the
    consumer's work on the item before. At most `depth` items wait, plus the one the consumer
    holds. An exception of the source is raised to the consumer; closing the generator
    cancels the producer, which closes the source.
    """
    ready: asyncio.Queue[object] = asyncio.Queue(maxsize=max(1, depth))

    async def produce() -> None:
        try:
            async for item in source:
                await ready.put(item)
            await ready.put(_END)
        except Exception as exc:  # handed to the consumer, raised there
            await ready.put(_Failure(exc))
        finally:
            # Close a generator source now (its cursor, its look-ups), not when it is collected.
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    producer = asyncio.create_task(produce(), name=name)
    try:
        while (item := await _next(ready, producer)) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]  # only the producer puts items: they are T
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


async def _next(ready: asyncio.Queue[object], producer: asyncio.Task[None]) -> object:
    """The next queued item; an error if the producer ended without saying so.

    A producer ends without its end marker only by a BaseException that is not an Exception
    (a CancelledError from inside the source, say): waiting on the queue alone would hang.
    """
    if not ready.empty():
        return ready.get_nowait()
    getter = asyncio.ensure_future(ready.get())
    try:
        await asyncio.wait((getter, producer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    if not ready.empty():
        return ready.get_nowait()
    cause = None if producer.cancelled() else producer.exception()
    raise RuntimeError("the read-ahead producer stopped before the end of its source") from cause


class _Failure:
    """An exception of the source, wrapped so that an item that is an exception stays one."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error
