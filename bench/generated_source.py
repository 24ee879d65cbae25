"""A DocumentSource that generates campaign data on the fly: no storage, any size."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Collection, Iterator, Mapping, Sequence
from typing import Any

from core.deps import Doc

CAMPAIGN_ID = "bench"
_CREATED = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
_EVENT = dt.datetime(2026, 6, 1, 20, 0, tzinfo=dt.UTC)

MARKETS: dict[str, Doc] = {
    "m1": {
        "_id": "m1",
        "campaignId": CAMPAIGN_ID,
        "name": "New York, NY",
        "city": "New York",
        "state": "NY",
        "countryCode": "US",
        "eventDate": _EVENT,
    },
    "m2": {
        "_id": "m2",
        "campaignId": CAMPAIGN_ID,
        "name": 'London "O2"',
        "city": "London",
        "state": None,
        "countryCode": "GB",
        "eventDate": _EVENT,
    },
}


def entry(i: int) -> Doc:
    return {
        "_id": f"entry-{i:09d}",
        "campaignId": CAMPAIGN_ID,
        "userId": f"user-{i:09d}",
        "marketId": "m1" if i % 2 else "m2",
        "additionalMarketIds": [],
        "locale": "en_US",
        "verified": i % 3 == 0,
        "optIns": {"artist": True, "sms": i % 2 == 0, "livenation": False, "promoterIds": []},
        "createdAt": _CREATED + dt.timedelta(seconds=i),
    }


def user(user_id: str) -> Doc:
    n = int(user_id.rsplit("-", 1)[1])
    return {
        "_id": user_id,
        "email": f"fan{n}@example.com",
        "firstName": "Zoë" if n % 7 == 0 else f"First{n}",
        "lastName": "O'Brien, Jr." if n % 11 == 0 else f"Last{n}",
        "phone": f"+1 555 {n:07d}",
        "postalCode": "10001",
        "countryCode": "US",
        "locale": "en_US",
    }


def entries(rows: int) -> Iterator[Doc]:
    return (entry(i) for i in range(rows))


class GeneratedSource:
    """`rows` entries of one campaign, each with its user; markets m1 and m2."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        if collection == "markets":
            yield list(MARKETS.values())
            return
        if collection != "entries":
            return
        for start in range(0, self.rows, batch_size):
            yield [entry(i) for i in range(start, min(start + batch_size, self.rows))]

    async def find_by_ids(
        self, collection: str, ids: Collection[str], *, projection: Mapping[str, Any] | None = None
    ) -> dict[str, Doc]:
        if collection == "users":
            return {i: user(i) for i in ids}
        if collection == "markets":
            return {i: MARKETS[i] for i in ids if i in MARKETS}
        return {}

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        return []

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None:
        if collection == "campaigns":
            return {"_id": CAMPAIGN_ID, "name": "Benchmark Tour"}
        return None

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return self.rows if collection == "entries" else 0

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        return [CAMPAIGN_ID] if collection == "entries" and field == "campaignId" else []

    async def ping(self) -> None:
        return None
