"""The MongoDB adapter over the wire to the stack's FerretDB, with each driver it offers.

PyMongo's asyncio client is the default and motor stays selectable (MONGO_DRIVER): the
same adapter must answer the same way with both, decoded and raw, and must come back by
itself after the server restarts even when operations were cancelled during the outage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, monitoring

from core.adapters.mongo import MONGO_DRIVERS, MongoDriver, MongoSource
from core.errors import SourceUnavailable
from devstack.stack import MONGO, LocalStack
from exporters.bson_columns import DRIVER_CODEC_OPTIONS

pytestmark = pytest.mark.e2e

CAMPAIGN = "cmp-e2e"


@pytest.fixture(params=MONGO_DRIVERS)
async def source(stack: LocalStack, request: pytest.FixtureRequest) -> AsyncIterator[MongoSource]:
    driver: MongoDriver = request.param
    opened = MongoSource.connect(
        stack.mongo_url, stack.mongo_database, driver=driver, lookup_chunk=2
    )
    assert opened.driver == driver
    yield opened
    await opened.close()


async def test_decoded_and_raw_reads_agree(source: MongoSource) -> None:
    query = {"campaignId": CAMPAIGN}
    decoded = [doc async for batch in source.find("entries", query, batch_size=3) for doc in batch]
    raw = [
        doc
        async for reply in source.find_raw("entries", query, batch_size=3)
        for doc in bson.decode_all(reply, codec_options=DRIVER_CODEC_OPTIONS)
    ]
    assert decoded == raw
    assert len(decoded) == await source.count("entries", query) > 3
    # Dates come back aware, in UTC, as the row engine's formatting expects.
    created = [d["createdAt"] for d in decoded if isinstance(d.get("createdAt"), dt.datetime)]
    assert created
    assert all(c.tzinfo is not None and not c.utcoffset() for c in created)


async def test_lookups_in_chunks_find_every_document_once(source: MongoSource) -> None:
    ids = ["usr-1", "usr-2", "usr-3", "usr-4", "usr-5", "no-such-user"]
    by_id = await source.find_by_ids("users", ids, projection={"email": 1})
    assert set(by_id) == set(ids) - {"no-such-user"}
    assert all(set(doc) == {"_id", "email"} for doc in by_id.values())
    replies = await source.find_in_raw("users", "_id", ids, projection={"email": 1})
    assert len(replies) == 3  # chunks of two values, one reply each
    raw_docs = [doc for reply in replies for doc in bson.decode_all(reply)]
    assert sorted(d["_id"] for d in raw_docs) == sorted(by_id)
    campaign = await source.find_one("campaigns", {"_id": CAMPAIGN})
    assert campaign is not None
    assert campaign["_id"] == CAMPAIGN
    assert await source.distinct("markets", "campaignId", {"campaignId": CAMPAIGN}) == [CAMPAIGN]


class _InLookups(monitoring.CommandListener):
    """The `$in` lists of the finds a client sends, as they went over the wire."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            wanted = event.command.get("filter", {}).get("_id", {})
            if isinstance(wanted, dict) and "$in" in wanted:
                self.sent.append(list(wanted["$in"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_lookups_send_each_chunk_as_a_narrow_sorted_range(stack: LocalStack) -> None:
    # Sorted values put neighbouring keys in one look-up, so a server reads neighbouring
    # index and collection pages: FerretDB needed about a tenth less CPU per look-up.
    listener = _InLookups()
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.mongo_url, event_listeners=[listener])
    source = MongoSource(client, stack.mongo_database, driver="pymongo", lookup_chunk=2)
    try:
        ids = ["usr-4", "usr-1", "no-such-user", "usr-5", "usr-2", "usr-3", "usr-1"]
        replies = await source.find_in_raw("users", "_id", ids)
    finally:
        await source.close()
    chunks = [["no-such-user", "usr-1"], ["usr-2", "usr-3"], ["usr-4", "usr-5"]]
    assert sorted(listener.sent) == chunks
    found = sorted(doc["_id"] for reply in replies for doc in bson.decode_all(reply))
    assert found == ["usr-1", "usr-2", "usr-3", "usr-4", "usr-5"]


async def test_the_client_comes_back_after_an_outage_with_cancelled_operations(
    source: MongoSource, stack: LocalStack
) -> None:
    await source.ping()
    ids = [f"usr-{i}" for i in range(1, 40)]
    pending = [asyncio.ensure_future(source.find_in_raw("users", "_id", ids)) for _ in range(4)]
    stack.stop_process(MONGO)
    try:
        await asyncio.sleep(0.3)  # the look-ups are reconnecting to a server that is down
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        with pytest.raises(SourceUnavailable):
            await source.ping()
    finally:
        stack.start_process(MONGO)
    found = await asyncio.wait_for(source.find_one("campaigns", {"_id": CAMPAIGN}), 30)
    assert found is not None
