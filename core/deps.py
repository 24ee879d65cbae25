"""The ports the exporters, agents and views depend on, and the bundle of them (Deps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Doc = dict[str, Any]

Clock = Callable[[], dt.datetime]
"""The time records are stamped with (aware UTC): `core.models.utcnow` unless a test
gives another."""


class DocumentSource(Protocol):
    """Read access to the operational database."""

    def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[Doc], None]:
        """Documents matching `query`, in batches; closing the iterator closes the cursor."""
        ...

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        """The documents whose `field` is one of `values` (one query, however many values)."""
        ...

    async def find_by_ids(
        self,
        collection: str,
        ids: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, Doc]:
        """The documents with these `_id`s, by id (one query, however many ids)."""
        ...

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Doc | None: ...

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        """The distinct values of `field` among the documents matching `query`."""
        ...

    async def count(self, collection: str, query: Mapping[str, Any]) -> int: ...

    async def ping(self) -> None: ...


@runtime_checkable
class RawDocumentSource(Protocol):
    """A source that can also hand over the server's replies undecoded (BSON bytes).

    Each item is one reply's documents, concatenated. The columnar engine decodes them
    straight into typed columns; a source without these methods runs the row engine.
    """

    def find_raw(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[bytes, None]: ...

    async def find_in_raw(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        """The documents whose `field` is one of `values`, as BSON byte strings."""
        ...


class MultipartUpload(Protocol):
    """One object being written in parts; nothing is visible until `complete`."""

    bucket: str
    key: str

    async def upload_part(self, part_number: int, data: bytes) -> None: ...

    async def complete(self) -> None: ...

    async def abort(self) -> None: ...


class ObjectStore(Protocol):
    """The S3 operations the service uses."""

    async def start_upload(
        self, bucket: str, key: str, *, content_type: str, acl: str | None
    ) -> MultipartUpload: ...

    async def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str) -> None:
        """A small whole object (staging chunks), no ACL."""
        ...

    def iter_object(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks, streamed."""
        ...

    async def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str: ...

    async def delete_objects(self, bucket: str, keys: Collection[str]) -> None: ...

    async def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    async def abort_uploads(self, bucket: str, keys: Collection[str]) -> int:
        """Abort every in-progress multipart upload of these exact keys; how many there were.

        Exact keys, not a prefix: MinIO lists in-progress uploads only by object name.
        """
        ...

    async def ping(self, bucket: str) -> None: ...


class Broker(Protocol):
    """The Kafka cluster as agents and views use it: sends, and what this worker holds."""

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Publish one event on `topic` (a name from the settings) and wait until the broker
        acknowledged it."""
        ...

    async def ping(self) -> None:
        """A round trip to the cluster; raises when the broker cannot be reached."""
        ...

    def holds_partition_of(self, topic: str) -> bool:
        """Whether this worker is assigned a partition of `topic`; raises while the consumer
        has not started."""
        ...


@dataclass(frozen=True)
class Deps:
    """Everything with I/O that agents and views need; tests put fakes here.

    `request_source` is what REST views read: the same database with a retry budget a
    caller can wait for (a request answers 503 during an outage rather than hanging for
    the exports' budget). It is `source` unless given.

    The clients (`source`, `store`) are opened when the app starts unless the composition
    root is given them; `broker` (None: the app's own Kafka topics) and `clock` are read by
    the root when it builds the app.
    """

    source: DocumentSource
    store: ObjectStore
    request_source: DocumentSource | None = None
    broker: Broker | None = None
    clock: Clock | None = None

    @property
    def for_requests(self) -> DocumentSource:
        return self.request_source or self.source
