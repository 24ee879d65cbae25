"""DocumentSource over MongoDB: the only module that imports a MongoDB driver.

PyMongo's own asyncio client (`AsyncMongoClient`) is the default; motor, which reached end of
life on 2026-05-14, stays selectable (`MONGO_DRIVER=motor`). Both expose the same collection
API, so everything below the client is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Literal, TypeVar

import bson
from pymongo import AsyncMongoClient

from core.adapters.faults import classify_mongo
from core.deps import Doc
from core.errors import UnreadableDocument
from core.read_ahead import read_ahead
from core.retry import DEFAULT_RETRY, NO_RETRY, Retrier, RetryHook, RetryPolicy

T = TypeVar("T")
logger = logging.getLogger(__name__)

MongoDriver = Literal["pymongo", "motor"]
MONGO_DRIVERS: tuple[MongoDriver, ...] = ("pymongo", "motor")


def _open_client(driver: MongoDriver, url: str) -> Any:
    options: dict[str, Any] = {
        "tz_aware": True,
        "tzinfo": dt.UTC,
        "serverSelectionTimeoutMS": 10_000,
        # After an outage the client waits for its monitor to see the server again: every 2 s
        # rather than every 10 s, or requests made just after a restart time out.
        "heartbeatFrequencyMS": 2_000,
    }
    if driver == "motor":
        from motor.motor_asyncio import AsyncIOMotorClient  # selectable, not imported otherwise

        return AsyncIOMotorClient(url, **options)
    return AsyncMongoClient(url, **options)


async def _whole(operation: Awaitable[T]) -> T:
    """Await a driver operation that a cancellation of the caller does not interrupt.

    PyMongo's asyncio client does not survive an operation cancelled while it connects to a
    server that is down: after the server is back, every later operation of the client
    waits for ever (seen with 4.20 against a restarted FerretDB; motor is not affected).
    So the operation runs in a task of its own that the caller's cancellation leaves to end
    by itself (the server answers, or the connect times out); the caller is cancelled at once.
    """
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_retrieve)
        raise


async def _close_quietly(cursor: Any) -> None:
    """Close a cursor; a server that is gone has closed it already.

    Any error is swallowed (and logged): PyMongo 4.x raises AttributeError closing a cursor
    whose read was cancelled mid-reply (seen with a frozen server and the export timeout),
    and a failed close must not replace the error or cancellation that ended the read.
    """
    try:
        await _whole(cursor.close())
    except Exception:
        logger.debug("closing a cursor failed", exc_info=True)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # the caller has gone; nothing is left to report it to


def mongo_retrier(
    policy: RetryPolicy = DEFAULT_RETRY, on_retry: RetryHook | None = None
) -> Retrier:
    return Retrier("mongodb", classify_mongo, policy, on_retry)


def _count_documents(reply: bytes) -> int:
    """How many BSON documents one raw reply holds (each starts with its int32 length)."""
    count = offset = 0
    while offset < len(reply):
        length = int.from_bytes(reply[offset : offset + 4], "little")
        if length < 5:  # the smallest document is 5 bytes: the reply is not BSON
            raise UnreadableDocument(
                f"a reply holds a document of {length} bytes at offset {offset}: not BSON"
            )
        offset += length
        count += 1
    return count


def _in_order(values: Collection[Any]) -> list[Any]:
    """The distinct values, sorted when they can be: each `$in` chunk then covers a narrow
    range of the index, so a server's look-ups walk neighbouring pages rather than pages
    spread over the whole index and collection (FerretDB on SQLite: about a tenth less CPU
    per look-up at 100,000 and 1,000,000 users)."""
    distinct = list(dict.fromkeys(values))
    with contextlib.suppress(TypeError):  # values of several types: any order is as good
        distinct.sort()
    return distinct


def _total_order(sort: Sequence[tuple[str, int]] | None) -> list[tuple[str, int]]:
    """The sort with `_id` last: documents that tie on the sort keys come in one order on
    every server and every try, so a read resumed by position neither skips nor repeats."""
    if not sort:
        return []
    order = list(sort)
    if all(field != "_id" for field, _ in order):
        order.append(("_id", 1))
    return order


class MongoSource:
    """Reads campaign data; every driver error goes through the retrier (core.retry).

    Reads are retried on faults that may pass (core.adapters.faults); a `find` whose cursor
    fails mid-stream is opened again past the documents it has already handed over, so the
    export resumes where it was rather than from the start.

    Look-ups by a list of values are split into chunks of `lookup_chunk` values sent up to
    `lookup_concurrency` at a time: a server (FerretDB) that matches `$in` by comparing each
    document with every value costs chunk x chunk per look-up, and chunks in flight together
    keep both the server's cores and the network busy; real MongoDB answers either way. A
    `find` reads up to `read_ahead` batches ahead of its consumer, so the server produces the
    next batch while the engine joins and writes this one.
    """

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        driver: MongoDriver = "pymongo",
        lookup_chunk: int = 250,
        lookup_concurrency: int = 4,
        read_ahead: int = 4,
        retrier: Retrier | None = None,
    ) -> None:
        self._client = client
        self._retry = retrier or mongo_retrier()
        self._driver = driver
        # Typed as Any: the two drivers' database objects share an API but no base class.
        self._db: Any = client[database]
        self._lookup_chunk = lookup_chunk
        self._lookup_concurrency = lookup_concurrency
        self._read_ahead = read_ahead

    @classmethod
    def connect(
        cls,
        url: str,
        database: str,
        *,
        driver: MongoDriver = "pymongo",
        lookup_chunk: int = 250,
        lookup_concurrency: int = 4,
        read_ahead: int = 4,
        retrier: Retrier | None = None,
    ) -> MongoSource:
        return cls(
            _open_client(driver, url),
            database,
            driver=driver,
            lookup_chunk=lookup_chunk,
            lookup_concurrency=lookup_concurrency,
            read_ahead=read_ahead,
            retrier=retrier,
        )

    @property
    def driver(self) -> MongoDriver:
        return self._driver

    def with_retrier(self, retrier: Retrier) -> MongoSource:
        """The same client and settings under another retry policy (for REST requests)."""
        other = copy.copy(self)
        other._retry = retrier
        return other

    async def close(self) -> None:
        closed = self._client.close()  # a coroutine for PyMongo's client, None for motor's
        if closed is not None:
            await closed

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        # Replies are read undecoded and decoded in a thread: decoding is the CPU work of a
        # read, and done by the driver it would run on the event loop.
        replies = self.find_raw(
            collection, query, projection=projection, batch_size=batch_size, sort=sort
        )
        async with aclosing(replies) as undecoded:
            async for reply in undecoded:
                yield await asyncio.to_thread(bson.decode_all, reply, self._db.codec_options)

    async def find_raw(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        order = _total_order(sort)

        def open_cursor(skip: int) -> Any:
            cursor = self._db[collection].find_raw_batches(
                dict(query), projection, batch_size=batch_size, skip=skip
            )
            return cursor.sort(order) if order else cursor

        async def next_reply(cursor: Any) -> bytes:
            try:
                reply: bytes = await cursor.next()
            except StopAsyncIteration:
                return b""
            return reply

        stream = self._stream(collection, open_cursor, next_reply, _count_documents)
        async with aclosing(stream) as replies:
            async for reply in replies:
                yield reply

    async def _stream(
        self,
        collection: str,
        open_cursor: Callable[[int], Any],
        next_batch: Callable[[Any], Awaitable[T]],
        count: Callable[[T], int],
    ) -> AsyncGenerator[T, None]:
        """The cursor's batches until an empty one, read ahead; the cursor closed at the end.

        After a failed batch the next try opens the query again with `skip` = the documents
        handed over so far. A sorted query has `_id` as its last key, so its order is total;
        an unsorted one resumes in the server's order for the query (natural or index order:
        the same on a collection nobody rewrites during the export, which is what an
        export of a live collection assumes anyway; a non-snapshot read never promised more).
        """
        cursor = open_cursor(0)
        delivered = 0
        broken = False

        async def fetch() -> T:
            nonlocal cursor, broken
            if broken:
                await _close_quietly(cursor)
                cursor = open_cursor(delivered)
                broken = False
            try:
                return await _whole(next_batch(cursor))
            except BaseException:
                broken = True
                raise

        async def batches() -> AsyncGenerator[T, None]:
            nonlocal delivered
            while batch := await self._retry.call(f"reading {collection}", fetch):
                delivered += count(batch)
                yield batch

        try:
            async with aclosing(
                read_ahead(batches(), self._read_ahead, name=f"read-{collection}")
            ) as ahead:
                async for batch in ahead:
                    yield batch
        finally:
            await _close_quietly(cursor)

    async def find_in_raw(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        return await self._chunked(collection, field, values, projection)

    async def _lookup(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        projection: Mapping[str, Any] | None,
    ) -> list[Doc]:
        replies = await self._chunked(collection, field, values, projection)
        return await asyncio.to_thread(self._decode_replies, replies)

    def _decode_replies(self, replies: list[bytes]) -> list[Doc]:
        codec = self._db.codec_options
        return [doc for reply in replies for doc in bson.decode_all(reply, codec)]

    async def _chunked(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        projection: Mapping[str, Any] | None,
    ) -> list[bytes]:
        """One reply per chunk of values: the documents found, as BSON bytes."""
        wanted = _in_order(values)
        chunks = [
            wanted[start : start + self._lookup_chunk]
            for start in range(0, len(wanted), self._lookup_chunk)
        ]
        limit = asyncio.Semaphore(self._lookup_concurrency)

        async def one(chunk: list[str]) -> bytes:
            async with limit:
                # One reply per chunk: without a batch size the server sends 101 documents
                # and the rest after a getMore round trip.
                found = await self._retry.call(
                    f"looking up {field} in {collection}", lambda: read(chunk)
                )
                return b"".join(found)

        async def read(chunk: list[str]) -> list[Any]:
            cursor = self._db[collection].find_raw_batches(
                {field: {"$in": chunk}}, projection, batch_size=len(chunk)
            )
            try:
                found: list[Any] = await _whole(cursor.to_list(None))
            finally:
                await _close_quietly(cursor)  # a cancelled look-up leaves no server cursor
            return found

        tasks = [asyncio.ensure_future(one(chunk)) for chunk in chunks]
        try:
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # the first failure ends the others
                task.cancel()
        return list(results)

    async def find_by_ids(
        self,
        collection: str,
        ids: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, Doc]:
        return {doc["_id"]: doc for doc in await self._lookup(collection, "_id", ids, projection)}

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        return await self._lookup(collection, field, values, projection)

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None:
        found: Doc | None = await self._retry.call(
            f"reading {collection}", lambda: _whole(self._db[collection].find_one(dict(query)))
        )
        return found

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        values = await self._retry.call(
            f"reading {collection}",
            lambda: _whole(self._db[collection].distinct(field, dict(query))),
        )
        return list(values)

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        # The count command rather than count_documents' $match + $group pipeline: the same
        # index scan on MongoDB, and FerretDB counts without running a $group stage over every
        # document. The figure is the preliminary totalCount, not a row count.
        reply = await self._retry.call(
            f"counting {collection}",
            lambda: _whole(self._db.command("count", collection, query=dict(query))),
        )
        return int(reply["n"])

    async def ping(self) -> None:
        """One try: /ready reports an outage as it happens."""
        await self._retry.call(
            "pinging MongoDB", lambda: _whole(self._db.command("ping")), policy=NO_RETRY
        )
