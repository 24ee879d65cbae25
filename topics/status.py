"""StatusStore: the status table as export records, and the queue rules read from it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from core.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    CcpaRequest,
    CcpaStatus,
    ExportRecord,
    Status,
)

_ALIAS = "aliasOf"
# CCPA requests live in the same table under keys no export id can have ("/" is not
# allowed in ids), so that they are recovered from the same changelog.
_CCPA_PREFIX = b"ccpa/"


def _ccpa_key(request_id: str) -> bytes:
    return _CCPA_PREFIX + request_id.encode()


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
        for key, value in list(self._table.items()):
            if value is None or bytes(key).startswith(_CCPA_PREFIX):
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

    # CCPA deletion requests

    def get_ccpa(self, request_id: str) -> CcpaRequest | None:
        value = self._table.get(_ccpa_key(request_id))
        return None if value is None else CcpaRequest.from_store(orjson.loads(value))

    def put_ccpa(self, request: CcpaRequest) -> None:
        self._table[_ccpa_key(request.request_id)] = orjson.dumps(request.to_store())
        if request.status == CcpaStatus.PENDING:
            self.work_available.set()

    def remove_ccpa(self, request_id: str) -> None:
        del self._table[_ccpa_key(request_id)]

    def ccpa_requests(self) -> Iterator[CcpaRequest]:
        for key, value in list(self._table.items()):
            if value is not None and bytes(key).startswith(_CCPA_PREFIX):
                yield CcpaRequest.from_store(orjson.loads(value))

    def accept_ccpa(self, request: CcpaRequest) -> tuple[CcpaRequest, bool]:
        """Record a new PENDING deletion request; a replayed id changes nothing, except that
        a FAILED request is queued again. Returns (request, queued)."""
        existing = self.get_ccpa(request.request_id)
        if existing is None:
            self.put_ccpa(request)
            return request, True
        if existing.status == CcpaStatus.FAILED:
            retry = existing.evolve(
                status=CcpaStatus.PENDING, attempts=0, error=None, finished_at=None
            )
            self.put_ccpa(retry)
            return retry, True
        return existing, False

    def unannounced_ccpa(self) -> list[CcpaRequest]:
        return [
            r
            for r in self.ccpa_requests()
            if r.status in (CcpaStatus.COMPLETED, CcpaStatus.FAILED) and not r.announced
        ]

    def next_work(self) -> ExportRecord | CcpaRequest | None:
        """What the serial runner does next: interrupted work first (an export or a CCPA
        deletion), else the oldest queued export or deletion."""
        interrupted: list[ExportRecord | CcpaRequest] = []
        queued: list[ExportRecord | CcpaRequest] = []
        export = self.next_to_run()
        if export is not None:
            started = export.status == Status.TRIGGERED or export.attempts > 0
            (interrupted if started else queued).append(export)
        for request in self.ccpa_requests():
            if request.status == CcpaStatus.RUNNING:
                interrupted.append(request)
            elif request.status == CcpaStatus.PENDING:
                (interrupted if request.attempts > 0 else queued).append(request)
        candidates = interrupted or queued
        if not candidates:
            return None
        return min(candidates, key=lambda w: (w.created_at, _work_id(w)))

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


def _work_id(work: ExportRecord | CcpaRequest) -> str:
    return work.id if isinstance(work, ExportRecord) else work.request_id
