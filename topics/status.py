"""StatusStore: the status table as export records, and the queue rules read from it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from core.models import ACTIVE_STATUSES, TERMINAL_STATUSES, ExportRecord, Status

_ALIAS = "aliasOf"


class StatusStore:
    """Reads and writes export records; `changed` wakes the runner on new work."""

    def __init__(self, table: MutableMapping[Any, Any]) -> None:
        self._table = table
        self.work_available = asyncio.Event()

    def _raw(self, export_id: str) -> dict[str, Any] | None:
        value = self._table.get(export_id.encode())
        return None if value is None else dict(orjson.loads(value))

    def get(self, export_id: str) -> ExportRecord | None:
        """The record, following a duplicate's alias to the export it points to."""
        data = self._raw(export_id)
        if data is not None and _ALIAS in data:
            data = self._raw(str(data[_ALIAS]))
        return None if data is None else ExportRecord.from_store(data)

    def contains(self, export_id: str) -> bool:
        return self._table.get(export_id.encode()) is not None

    def put(self, record: ExportRecord) -> None:
        self._table[record.id.encode()] = orjson.dumps(record.to_store())
        if record.status == Status.PENDING:
            self.work_available.set()

    def put_alias(self, export_id: str, target_id: str) -> None:
        """Record that `export_id` (a duplicate request) is served by `target_id`."""
        self._table[export_id.encode()] = orjson.dumps({_ALIAS: target_id})

    def remove(self, export_id: str) -> None:
        del self._table[export_id.encode()]

    def records(self) -> Iterator[ExportRecord]:
        for value in list(self._table.values()):
            if value is None:
                continue
            data = orjson.loads(value)
            if _ALIAS not in data:
                yield ExportRecord.from_store(data)

    def find_duplicate(self, candidate: ExportRecord) -> ExportRecord | None:
        """An active export with the same campaign, type, params and UTC day (SPEC §4)."""
        key = candidate.duplicate_key()
        for record in self.records():
            if record.status in ACTIVE_STATUSES and record.duplicate_key() == key:
                return record
        return None

    def next_to_run(self) -> ExportRecord | None:
        """An interrupted export first (TRIGGERED, or started and not yet triggered),
        else the oldest PENDING one."""
        interrupted: list[ExportRecord] = []
        pending: list[ExportRecord] = []
        for record in self.records():
            if record.status == Status.TRIGGERED or (
                record.status == Status.PENDING and record.attempts > 0
            ):
                interrupted.append(record)
            elif record.status == Status.PENDING:
                pending.append(record)
        queue = interrupted or pending
        if not queue:
            return None
        return min(queue, key=lambda r: (r.created_at, r.id))

    def pending_count(self) -> int:
        return sum(1 for r in self.records() if r.status == Status.PENDING)

    def unannounced(self) -> list[ExportRecord]:
        """Terminal exports whose result event may not have reached export-events."""
        return [
            r
            for r in self.records()
            if r.status in TERMINAL_STATUSES and r.status != Status.DELETED and not r.announced
        ]

    def for_campaign(self, campaign_id: str) -> list[ExportRecord]:
        """The campaign's exports, newest first."""
        found = [r for r in self.records() if r.campaign_id == campaign_id]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return found

    def accept(self, record: ExportRecord) -> tuple[ExportRecord, bool]:
        """Record a new PENDING request, or return the export that already serves it.

        Idempotent on redelivery (same id); a duplicate (SPEC §4) gets an alias to the
        active export so that its id still answers. Returns (record, created).
        """
        existing = self.get(record.id)
        if existing is not None:
            return existing, False
        duplicate = self.find_duplicate(record)
        if duplicate is not None:
            self.put_alias(record.id, duplicate.id)
            return duplicate, False
        self.put(record)
        return record, True
