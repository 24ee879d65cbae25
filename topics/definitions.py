"""The exports input topic, the export-events output topic, the DLQ and the status table,
declared on an app by `declare` (called by the composition root)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP, TopicT

from core.app import ExportApp
from core.interpreter import freeze_long_lived
from topics.status import StatusStore
from topics.unreplayed import UnreplayedWrites

logger = logging.getLogger(__name__)


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unreplayed: UnreplayedWrites[bytes, bytes] = UnreplayedWrites()

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        sequence = self.unreplayed.sent(key, value)
        future = super().send_changelog(partition, key, value, key_serializer, value_serializer)
        future.add_done_callback(lambda done: self._landed(key, sequence, done))
        return future

    def _landed(self, key: bytes, sequence: int, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # not stored: it stays a write a replay misses
        offset = future.result().offset
        self.unreplayed.landed(key, sequence, offset, rebalancing=bool(self.app.rebalancing))

    def restore_unreplayed(self) -> int:
        """After a recovery: put back this process's writes the replay did not contain.
        Returns how many it put back."""
        recovery: Any = cast(Any, self.app.tables).recovery
        changelog = TP(self.changelog_topic_name, 0)
        restored = 0
        if changelog in recovery.active_tps:
            replayed_to = recovery.active_offsets.get(changelog)
            for key, value in self.unreplayed.missed_by(-1 if replayed_to is None else replayed_to):
                if value is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = value
                restored += 1
        self.unreplayed.settled()
        return restored


@dataclass(frozen=True)
class Declared:
    """What `declare` put on one app."""

    exports: TopicT
    """Export requests and CCPA deletions, one partition: the serial queue (raw bytes in,
    so that unparseable events can be sent to the DLQ as they arrived)."""
    export_events: TopicT
    """export.finished / export.failed / export.expired / ccpa.deletion_completed."""
    dlq: TopicT
    """Input events that could not be parsed or validated, with the reason."""
    status_table: SinglePartitionTable
    """Export id -> export record (orjson bytes); changelog-backed."""
    status_store: StatusStore

    async def reindex_after_recovery(self) -> None:
        """Recovery replays the changelog into the table behind the store's back."""
        restored = self.status_table.restore_unreplayed()
        if restored:
            logger.info(
                "status table: %d writes the changelog replay did not contain put back", restored
            )
        self.status_store.rebuild()
        freeze_long_lived()


def _raw_topic(app: ExportApp, name: str) -> TopicT:
    return app.topic(name, partitions=1, value_serializer="raw", key_serializer="raw")


def declare(app: ExportApp) -> Declared:
    """Declare the three topics and the status table on `app`, with the store over it."""
    settings = app.settings
    status_table = SinglePartitionTable(
        app,
        name=settings.status_table_name,
        beacon=app.tables.beacon,
        partitions=1,
        default=None,
        key_type=bytes,
        value_type=bytes,
    )
    app.tables.add(status_table)
    declared = Declared(
        exports=_raw_topic(app, settings.topic_exports),
        export_events=_raw_topic(app, settings.topic_export_events),
        dlq=_raw_topic(app, settings.topic_dlq),
        status_table=status_table,
        status_store=StatusStore(cast(MutableMapping[Any, Any], status_table)),
    )
    status_table.on_recover(declared.reindex_after_recovery)
    return declared
