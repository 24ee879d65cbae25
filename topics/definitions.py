"""The exports input topic, the export-events output topic, the DLQ and the status table."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, cast

import faust

from core.app import app
from topics.status import StatusStore

settings = app.settings

exports_topic = app.topic(
    settings.topic_exports,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""Export requests and CCPA deletions, one partition: the serial queue (raw bytes in,
so that unparseable events can be sent to the DLQ as they arrived)."""

export_events_topic = app.topic(
    settings.topic_export_events,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""export.finished / export.failed / export.expired / ccpa.deletion_completed."""

dlq_topic = app.topic(
    settings.topic_dlq,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""Input events that could not be parsed or validated, with the reason."""


class SinglePartitionTable(faust.Table):  # type: ignore[type-arg]
    """A table whose writes may come from views and the runner, not only from an agent.

    Faust takes a write's partition from the event being processed; the status table
    has exactly one partition, so every write belongs to partition 0 wherever it is made.
    """

    def partition_for_key(self, key: object) -> int:
        return 0

    def _serializer_from_type(self, typ: object) -> str:
        # Keys and values are bytes we encode ourselves; Faust would pick json for `bytes`
        # and then fail to decode the changelog during recovery.
        return "raw"


status_table = app.tables.add(
    SinglePartitionTable(
        app,
        name=settings.status_table_name,
        beacon=app.tables.beacon,
        partitions=1,
        default=None,
        key_type=bytes,
        value_type=bytes,
    )
)
"""Export id -> export record (orjson bytes); changelog-backed."""

status_store = StatusStore(cast(MutableMapping[Any, Any], status_table))


async def _reindex_after_recovery() -> None:
    """Recovery replays the changelog into the table behind the store's back."""
    status_store.rebuild()


status_table.on_recover(_reindex_after_recovery)
