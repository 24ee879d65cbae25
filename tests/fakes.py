"""In-memory implementations of the ports in core.deps, for unit tests of the engine, the
agents and the views."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import bson
import orjson

from core.deps import Doc
from core.errors import SourceUnavailable, UploadFailed
from core.models import CcpaRequest, ExportRecord
from devstack.query import matches, value_at
from topics.status import StatusStore


def _sort_key(value: Any) -> tuple[int, str]:
    # MongoDB orders missing/null first, then numbers, then strings, then the other types;
    # within a type any fixed order does for the tests (consecutive equal values).
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, f"{float(value):+030.6f}")
    return (3, repr(value))


@dataclass
class InMemorySource:
    """A DocumentSource over dicts; records its queries so tests can see N+1 patterns."""

    collections: dict[str, list[Doc]] = field(default_factory=dict)
    fail_after_batches: int | None = None
    batch_delay: float = 0.0
    finds: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lookups: list[tuple[str, int]] = field(default_factory=list)
    open_cursors: int = 0
    closed_cursors: int = 0

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        self.finds.append((collection, dict(query)))
        docs = [copy.deepcopy(d) for d in self.collections.get(collection, []) if matches(d, query)]
        for field_name, direction in reversed(sort or ()):
            docs.sort(key=lambda d: _sort_key(value_at(d, field_name)))
            if direction < 0:
                docs.reverse()
        self.open_cursors += 1
        try:
            for number, start in enumerate(range(0, len(docs), batch_size)):
                if self.fail_after_batches is not None and number >= self.fail_after_batches:
                    raise SourceUnavailable("connection closed by the fake")
                if self.batch_delay:
                    await asyncio.sleep(self.batch_delay)
                yield docs[start : start + batch_size]
        finally:
            self.closed_cursors += 1

    async def find_raw(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The same batches as `find`, as the BSON bytes a server's reply holds."""
        batches = self.find(
            collection, query, projection=projection, batch_size=batch_size, sort=sort
        )
        async with aclosing(batches):
            async for batch in batches:
                yield b"".join(bson.encode(doc) for doc in batch)

    async def find_in_raw(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        docs = await self.find_in(collection, field, values, projection=projection)
        return [b"".join(bson.encode(doc) for doc in docs)]

    async def find_by_ids(
        self,
        collection: str,
        ids: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, Doc]:
        wanted = set(ids)
        self.lookups.append((collection, len(wanted)))
        return {
            d["_id"]: copy.deepcopy(d)
            for d in self.collections.get(collection, [])
            if d["_id"] in wanted
        }

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        wanted = set(values)
        self.lookups.append((collection, len(wanted)))
        return [
            copy.deepcopy(d)
            for d in self.collections.get(collection, [])
            if isinstance(value_at(d, field), str) and value_at(d, field) in wanted
        ]

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None:
        for doc in self.collections.get(collection, []):
            if matches(doc, query):
                return copy.deepcopy(doc)
        return None

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        self.finds.append((collection, dict(query)))
        values: list[Any] = []
        for doc in self.collections.get(collection, []):
            value = value_at(doc, field)
            if matches(doc, query) and value is not None and value not in values:
                values.append(value)
        return values

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return sum(1 for d in self.collections.get(collection, []) if matches(d, query))

    async def ping(self) -> None:
        return None


@dataclass
class FakeUpload:
    bucket: str
    key: str
    store: InMemoryStore
    parts: dict[int, bytes] = field(default_factory=dict)
    completed: bool = False
    aborted: bool = False

    async def upload_part(self, part_number: int, data: bytes) -> None:
        self.store.parts_sent += 1
        if self.store.fail_on_part is not None and part_number >= self.store.fail_on_part:
            raise UploadFailed(f"part {part_number} refused by the fake")
        await asyncio.sleep(0)
        self.parts[part_number] = data

    async def complete(self) -> None:
        body = b"".join(self.parts[n] for n in sorted(self.parts))
        self.store.objects[(self.bucket, self.key)] = body
        self.completed = True

    async def abort(self) -> None:
        self.aborted = True


@dataclass
class InMemoryStore:
    """An ObjectStore whose objects appear only on complete, like S3's multipart uploads."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    uploads: list[FakeUpload] = field(default_factory=list)
    acls: dict[tuple[str, str], str | None] = field(default_factory=dict)
    fail_on_part: int | None = None
    fail_on_put: bool = False
    fail_on_abort: bool = False
    abort_calls: int = 0
    parts_sent: int = 0
    puts: int = 0

    async def start_upload(
        self, bucket: str, key: str, *, content_type: str, acl: str | None
    ) -> FakeUpload:
        upload = FakeUpload(bucket, key, self)
        self.uploads.append(upload)
        self.acls[(bucket, key)] = acl
        return upload

    async def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str) -> None:
        if self.fail_on_put:
            raise UploadFailed(f"put of {key} refused by the fake")
        self.objects[(bucket, key)] = data
        self.puts += 1

    async def iter_object(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        data = self.objects[(bucket, key)]
        for start in range(0, len(data), 7):  # odd-sized chunks on purpose
            yield data[start : start + 7]

    async def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str:
        return f"memory://{bucket}/{key}?expires={expires_in}"

    async def delete_objects(self, bucket: str, keys: Collection[str]) -> None:
        for key in keys:
            self.objects.pop((bucket, key), None)

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    async def abort_uploads(self, bucket: str, keys: Collection[str]) -> int:
        self.abort_calls += 1
        if self.fail_on_abort:
            raise UploadFailed("S3 is away (the fake)")
        count = 0
        for upload in self.uploads:
            in_progress = not upload.completed and not upload.aborted
            if upload.bucket == bucket and upload.key in keys and in_progress:
                upload.aborted = True
                count += 1
        return count

    async def ping(self, bucket: str) -> None:
        return None


class FakeBroker:
    """The Kafka side without a broker: sends are kept per topic and acknowledged at once
    (never, with `acknowledges` False; refused with `send_error`); `ping_error` makes the
    broker unreachable; the worker holds the exports partition unless `holds` is False."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.acknowledges = True
        self.send_error: Exception | None = None
        self.ping_error: Exception | None = None
        self.holds = True

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The messages sent on `topic` so far (a live list)."""
        return self.sent.setdefault(topic, [])

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        if self.send_error is not None:
            raise self.send_error
        self.on(topic).append({"key": key, "value": value, "headers": list(headers)})
        if not self.acknowledges:
            await asyncio.get_running_loop().create_future()

    async def ping(self) -> None:
        if self.ping_error is not None:
            raise self.ping_error

    def holds_partition_of(self, topic: str) -> bool:
        return self.holds


def seed(store: StatusStore, *items: ExportRecord | CcpaRequest) -> None:
    """Put records into the store's table as a recovery would restore them (any status,
    no lifecycle check), then let the store index the table again."""
    table = store._table
    for item in items:
        if isinstance(item, CcpaRequest):
            table[b"ccpa/" + item.request_id.encode()] = orjson.dumps(item.to_store())
        else:
            table[item.id.encode()] = orjson.dumps(item.to_store())
    store.rebuild()
