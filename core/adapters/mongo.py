"""DocumentSource over motor: the only module that imports the MongoDB driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import PyMongoError

from core.deps import Doc
from core.errors import SourceUnavailable

# Large $in lists are split so that one look-up stays well under the 16 MiB command limit.
_IN_CHUNK = 5000


class MongoSource:
    """Reads campaign data with motor; translates driver errors to SourceUnavailable."""

    def __init__(self, client: AsyncIOMotorClient[Doc], database: str) -> None:
        self._client = client
        self._db: AsyncIOMotorDatabase[Doc] = client[database]

    @classmethod
    def connect(cls, url: str, database: str) -> MongoSource:
        client: AsyncIOMotorClient[Doc] = AsyncIOMotorClient(
            url, tz_aware=True, tzinfo=dt.UTC, serverSelectionTimeoutMS=10_000
        )
        return cls(client, database)

    def close(self) -> None:
        self._client.close()

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        cursor = self._db[collection].find(dict(query), projection, batch_size=batch_size)
        if sort:
            cursor = cursor.sort(list(sort))
        try:
            batch: list[Doc] = []
            async for doc in cursor:
                batch.append(doc)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch
        except PyMongoError as exc:
            raise SourceUnavailable(f"reading {collection} failed: {exc}") from exc
        finally:
            await cursor.close()

    async def find_by_ids(
        self,
        collection: str,
        ids: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, Doc]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Doc] = {}
        try:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                cursor = self._db[collection].find({"_id": {"$in": chunk}}, projection)
                async for doc in cursor:
                    found[doc["_id"]] = doc
        except PyMongoError as exc:
            raise SourceUnavailable(f"look-up in {collection} failed: {exc}") from exc
        return found

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        wanted = list(dict.fromkeys(values))
        found: list[Doc] = []
        try:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                cursor = self._db[collection].find({field: {"$in": chunk}}, projection)
                found.extend([doc async for doc in cursor])
        except PyMongoError as exc:
            raise SourceUnavailable(f"look-up in {collection} failed: {exc}") from exc
        return found

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None:
        try:
            return await self._db[collection].find_one(dict(query))
        except PyMongoError as exc:
            raise SourceUnavailable(f"reading {collection} failed: {exc}") from exc

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        try:
            return list(await self._db[collection].distinct(field, dict(query)))
        except PyMongoError as exc:
            raise SourceUnavailable(f"reading {collection} failed: {exc}") from exc

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        try:
            return int(await self._db[collection].count_documents(dict(query)))
        except PyMongoError as exc:
            raise SourceUnavailable(f"counting {collection} failed: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._db.command("ping")
        except PyMongoError as exc:
            raise SourceUnavailable(f"MongoDB unreachable: {exc}") from exc
