"""StatusStore: the status table as export records, with the indexes its questions need.

The table (a changelog-backed Faust table) holds every record as orjson bytes. Every
question the worker asks on a request path or in the runner's idle loop (the next work,
the duplicate check, a campaign's page of exports, the PENDING count, the unsettled
results) is answered from in-memory indexes that each write keeps up to date and that
`rebuild` makes again from the table after a recovery. An index entry holds a few fields
of a record, not the record: only what a question returns is decoded.

Every write checks its status change against core/lifecycle.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from sortedcontainers import SortedList

from core.lifecycle import check_ccpa, check_export
from core.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    CcpaRequest,
    CcpaStatus,
    ExportRecord,
    Status,
)

_ALIAS = "aliasOf"
# CCPA requests and the markers of retired exports live in the same table under keys no
# export id can have ("/" is not allowed in ids), so that one changelog recovers them all.
_CCPA_PREFIX = b"ccpa/"
_RETIRED_PREFIX = b"retired/"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Order = tuple[dt.datetime, str]
"""(createdAt, id): the queue's and the listings' order."""


def _ccpa_key(request_id: str) -> bytes:
    return _CCPA_PREFIX + request_id.encode()


def _retired_key(export_id: str) -> bytes:
    return _RETIRED_PREFIX + export_id.encode()


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the indexes know of one export (decoded once, when it is written)."""

    id: str
    campaign_id: str
    export_type: str
    status: Status
    created: dt.datetime
    attempts: int
    announced: bool
    finished: dt.datetime | None
    duplicate_key: tuple[str, str, bytes, dt.date] | None
    cleanup_pending: bool

    @property
    def order(self) -> Order:
        return (self.created, self.id)

    @property
    def interrupted(self) -> bool:
        return self.status == Status.TRIGGERED or (
            self.status == Status.PENDING and self.attempts > 0
        )

    @property
    def unsettled(self) -> bool:
        """Ended, and its result event unsent or its uploads not yet cleaned up."""
        return (
            self.status in TERMINAL_STATUSES
            and self.status != Status.DELETED
            and (not self.announced or self.cleanup_pending)
        )

    @classmethod
    def of(cls, data: dict[str, Any]) -> _Entry:
        created = _time(data.get("createdAt")) or _EPOCH
        campaign_id, export_type = str(data["campaignId"]), str(data["exportType"])
        status = Status(data.get("status", Status.PENDING))
        # Only active exports absorb duplicates: the key is not built for the history.
        duplicate_key = None
        if status in ACTIVE_STATUSES:
            params = orjson.dumps(data.get("params") or {}, option=orjson.OPT_SORT_KEYS)
            duplicate_key = (campaign_id, export_type, params, created.astimezone(dt.UTC).date())
        return cls(
            id=str(data["id"]),
            campaign_id=campaign_id,
            export_type=export_type,
            status=status,
            created=created,
            attempts=int(data.get("attempts", 0)),
            announced=bool(data.get("announced", False)),
            finished=_time(data.get("finishedAt")),
            duplicate_key=duplicate_key,
            cleanup_pending=bool(data.get("cleanupPending", False)),
        )


@dataclass(frozen=True, slots=True)
class _CcpaEntry:
    request_id: str
    status: CcpaStatus
    created: dt.datetime
    attempts: int
    announced: bool
    finished: dt.datetime | None

    @property
    def order(self) -> Order:
        return (self.created, self.request_id)

    @classmethod
    def of(cls, data: dict[str, Any]) -> _CcpaEntry:
        return cls(
            request_id=str(data["requestId"]),
            status=CcpaStatus(data.get("status", CcpaStatus.PENDING)),
            created=_time(data.get("createdAt")) or _EPOCH,
            attempts=int(data.get("attempts", 0)),
            announced=bool(data.get("announced", False)),
            finished=_time(data.get("finishedAt")),
        )


@dataclass(frozen=True)
class RetiredExport:
    """What is left of an export removed by retention: enough to say so (404)."""

    export_id: str
    campaign_id: str
    retired_at: dt.datetime


@dataclass(frozen=True)
class ExportPage:
    items: list[ExportRecord]
    more: bool


@dataclass(frozen=True)
class CcpaPage:
    items: list[CcpaRequest]
    more: bool


class StatusStore:
    """Reads and writes export records; `work_available` wakes the runner on new work."""

    def __init__(self, table: MutableMapping[Any, Any]) -> None:
        self._table = table
        self.work_available = asyncio.Event()
        # Requests recorded whose event the broker has not acknowledged yet: the runner
        # leaves them until then (their request may still be forgotten). In memory only: a
        # restart publishes nothing again, and the record runs.
        self._held: set[str] = set()
        self._reset()
        self.rebuild()

    # Indexes

    def _reset(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._queued: SortedList = SortedList()  # PENDING, never started
        self._interrupted: SortedList = SortedList()  # started and not ended
        self._active_by_key: dict[tuple[str, str, bytes, dt.date], str] = {}
        self._by_campaign: dict[str, SortedList] = {}
        self._pending: set[str] = set()
        self._counts: Counter[Status] = Counter()
        self._unsettled: set[str] = set()
        self._ended: SortedList = SortedList()  # (finishedAt, id) of terminal exports
        self._aliases: dict[str, set[str]] = {}  # export id -> ids of duplicates it serves
        self._ccpa: dict[str, _CcpaEntry] = {}
        self._ccpa_queued: SortedList = SortedList()
        self._ccpa_interrupted: SortedList = SortedList()
        self._ccpa_unannounced: set[str] = set()
        self._ccpa_ended: SortedList = SortedList()
        self._ccpa_by_created: SortedList = SortedList()
        self._retired: SortedList = SortedList()  # (retiredAt, id) of markers

    def rebuild(self) -> None:
        """Index the table as it is now (after a recovery replayed the changelog)."""
        self._reset()
        exports: list[_Entry] = []
        retired: list[tuple[dt.datetime, str]] = []
        for key, value in list(self._table.items()):
            if value is None:
                continue
            raw = bytes(key)
            data = orjson.loads(value)
            if raw.startswith(_CCPA_PREFIX):
                self._index_ccpa(_CcpaEntry.of(data))
            elif raw.startswith(_RETIRED_PREFIX):
                retired.append((_time(data["retiredAt"]) or _EPOCH, str(data["exportId"])))
            elif _ALIAS in data:
                self._aliases.setdefault(str(data[_ALIAS]), set()).add(raw.decode())
            else:
                exports.append(_Entry.of(data))
        self._retired = SortedList(retired)
        # The history in bulk (one sort per list), the few active records one by one.
        by_campaign: dict[str, list[Order]] = {}
        ended: list[tuple[dt.datetime, str]] = []
        for entry in exports:
            if entry.status in ACTIVE_STATUSES or entry.unsettled:
                self._index(entry)
                continue
            self._entries[entry.id] = entry
            self._counts[entry.status] += 1
            by_campaign.setdefault(entry.campaign_id, []).append(entry.order)
            ended.append((entry.finished or entry.created, entry.id))
        for campaign_id, orders in by_campaign.items():
            self._by_campaign.setdefault(campaign_id, SortedList()).update(orders)
        self._ended.update(ended)

    def _index(self, entry: _Entry) -> None:
        self._entries[entry.id] = entry
        self._by_campaign.setdefault(entry.campaign_id, SortedList()).add(entry.order)
        if entry.duplicate_key is not None:
            self._active_by_key.setdefault(entry.duplicate_key, entry.id)
        if entry.status in ACTIVE_STATUSES:
            (self._interrupted if entry.interrupted else self._queued).add(entry.order)
        if entry.status == Status.PENDING:
            self._pending.add(entry.id)
        self._counts[entry.status] += 1
        if entry.unsettled:
            self._unsettled.add(entry.id)
        if entry.status in TERMINAL_STATUSES:
            self._ended.add((entry.finished or entry.created, entry.id))

    def _unindex(self, entry: _Entry) -> None:
        del self._entries[entry.id]
        listing = self._by_campaign[entry.campaign_id]
        listing.discard(entry.order)
        if not listing:
            del self._by_campaign[entry.campaign_id]
        key = entry.duplicate_key
        if key is not None and self._active_by_key.get(key) == entry.id:
            del self._active_by_key[key]
        self._queued.discard(entry.order)
        self._interrupted.discard(entry.order)
        self._pending.discard(entry.id)
        self._counts[entry.status] -= 1
        self._unsettled.discard(entry.id)
        self._ended.discard((entry.finished or entry.created, entry.id))

    def _index_ccpa(self, entry: _CcpaEntry) -> None:
        self._ccpa[entry.request_id] = entry
        self._ccpa_by_created.add(entry.order)
        if entry.status == CcpaStatus.RUNNING or (
            entry.status == CcpaStatus.PENDING and entry.attempts > 0
        ):
            self._ccpa_interrupted.add(entry.order)
        elif entry.status == CcpaStatus.PENDING:
            self._ccpa_queued.add(entry.order)
        elif not entry.announced:
            self._ccpa_unannounced.add(entry.request_id)
        if entry.status in (CcpaStatus.COMPLETED, CcpaStatus.FAILED):
            self._ccpa_ended.add((entry.finished or entry.created, entry.request_id))

    def _unindex_ccpa(self, entry: _CcpaEntry) -> None:
        del self._ccpa[entry.request_id]
        self._ccpa_by_created.discard(entry.order)
        self._ccpa_queued.discard(entry.order)
        self._ccpa_interrupted.discard(entry.order)
        self._ccpa_unannounced.discard(entry.request_id)
        self._ccpa_ended.discard((entry.finished or entry.created, entry.request_id))

    # Exports

    def _raw(self, export_id: str) -> dict[str, Any] | None:
        value = self._table.get(export_id.encode())
        return None if value is None else dict(orjson.loads(value))

    def get(self, export_id: str) -> ExportRecord | None:
        """The record, following a duplicate's alias to the export it points to."""
        data = self._raw(export_id)
        if data is not None and _ALIAS in data:
            data = self._raw(str(data[_ALIAS]))
        return None if data is None else ExportRecord.from_store(data)

    def status_of(self, export_id: str) -> Status | None:
        entry = self._entries.get(export_id)
        return None if entry is None else entry.status

    def retired(self, export_id: str) -> RetiredExport | None:
        """The marker retention left for a removed export (or one of its duplicates)."""
        value = self._table.get(_retired_key(export_id))
        if value is None:
            return None
        data = orjson.loads(value)
        retired_at = _time(data["retiredAt"]) or _EPOCH
        return RetiredExport(str(data["exportId"]), str(data["campaignId"]), retired_at)

    def put(self, record: ExportRecord) -> None:
        """Write the record; raises IllegalTransition for a change the lifecycle forbids."""
        old = self._entries.get(record.id)
        check_export(record.id, None if old is None else old.status, record.status)
        data = record.to_store()
        self._table[record.id.encode()] = orjson.dumps(data)
        if old is not None:
            self._unindex(old)
        self._index(_Entry.of(data))
        if record.status == Status.PENDING:
            self.work_available.set()

    def put_alias(self, export_id: str, target_id: str) -> None:
        """Record that `export_id` (a duplicate request) is served by `target_id`."""
        self._table[export_id.encode()] = orjson.dumps({_ALIAS: target_id})
        self._aliases.setdefault(target_id, set()).add(export_id)

    def remove(self, export_id: str) -> None:
        """Forget a record (a request whose event could not be published), with its aliases."""
        self._held.discard(export_id)
        entry = self._entries.get(export_id)
        if entry is not None:
            self._unindex(entry)
        for alias in self._aliases.pop(export_id, set()):
            self._delete(alias.encode())
        self._delete(export_id.encode())

    def _delete(self, key: bytes) -> None:
        # A Faust table writes a tombstone to its changelog for each deleted key.
        if self._table.get(key) is not None:
            del self._table[key]

    def records(self) -> Iterator[ExportRecord]:
        """Every export record (an operator's tool: nothing on a request path uses it)."""
        for export_id in list(self._entries):
            record = self.get(export_id)
            if record is not None:
                yield record

    def find_duplicate(self, candidate: ExportRecord) -> ExportRecord | None:
        """An active export with the same campaign, type, params and UTC day (SPEC §4)."""
        found = self._active_by_key.get(candidate.duplicate_key())
        return None if found is None else self.get(found)

    def accept(self, record: ExportRecord, *, held: bool = False) -> tuple[ExportRecord, bool]:
        """Record a new PENDING request, or return the export that already serves it.

        Idempotent on redelivery (same id); a duplicate (SPEC §4) gets an alias to the
        active export so that its id still answers. Returns (record, created). A `held`
        record is not given to the runner until `release`d (its event is being published).
        """
        existing = self.get(record.id)
        if existing is not None:
            return existing, False
        duplicate = self.find_duplicate(record)
        if duplicate is not None:
            self.put_alias(record.id, duplicate.id)
            return duplicate, False
        if held:
            self._held.add(record.id)
        self.put(record)
        return record, True

    def release(self, export_id: str) -> None:
        """Give a held record to the runner (its event was published, or is kept)."""
        if export_id in self._held:
            self._held.discard(export_id)
            self.work_available.set()

    def next_to_run(self) -> ExportRecord | None:
        """An interrupted export first (TRIGGERED, or started and not yet triggered),
        else the oldest PENDING one."""
        queue = self._interrupted or self._queued
        return self.get(queue[0][1]) if queue else None

    def pending_count(self) -> int:
        return len(self._pending)

    def status_counts(self) -> dict[Status, int]:
        """How many exports the table holds in each status."""
        return {status: self._counts[status] for status in Status}

    def unsettled(self) -> list[ExportRecord]:
        """Ended exports whose result event may not have reached export-events, or whose
        clean-up S3 did not answer (`cleanup_pending`)."""
        found = (self.get(export_id) for export_id in sorted(self._unsettled))
        return [record for record in found if record is not None]

    def for_campaign(self, campaign_id: str) -> list[ExportRecord]:
        """Every export of the campaign, newest first."""
        return self.page(campaign_id, limit=None).items

    def page(
        self,
        campaign_id: str,
        *,
        status: Status | None = None,
        export_type: str | None = None,
        before: Order | None = None,
        limit: int | None = 50,
    ) -> ExportPage:
        """The campaign's exports newest first, from just before `before`, filtered; only
        the records returned are decoded."""
        listing = self._by_campaign.get(campaign_id)
        if listing is None:
            return ExportPage([], more=False)
        orders = listing.irange(maximum=before, inclusive=(True, False), reverse=True)
        items: list[ExportRecord] = []
        for _, export_id in orders:
            entry = self._entries[export_id]
            if (status is not None and entry.status != status) or (
                export_type is not None and entry.export_type != export_type
            ):
                continue
            if limit is not None and len(items) == limit:
                return ExportPage(items, more=True)
            record = self.get(export_id)
            if record is not None:
                items.append(record)
        return ExportPage(items, more=False)

    # CCPA deletion requests

    def get_ccpa(self, request_id: str) -> CcpaRequest | None:
        value = self._table.get(_ccpa_key(request_id))
        return None if value is None else CcpaRequest.from_store(orjson.loads(value))

    def put_ccpa(self, request: CcpaRequest) -> None:
        old = self._ccpa.get(request.request_id)
        check_ccpa(request.request_id, None if old is None else old.status, request.status)
        data = request.to_store()
        self._table[_ccpa_key(request.request_id)] = orjson.dumps(data)
        if old is not None:
            self._unindex_ccpa(old)
        self._index_ccpa(_CcpaEntry.of(data))
        if request.status == CcpaStatus.PENDING:
            self.work_available.set()

    def remove_ccpa(self, request_id: str) -> None:
        old = self._ccpa.get(request_id)
        if old is not None:
            self._unindex_ccpa(old)
        self._delete(_ccpa_key(request_id))

    def ccpa_requests(self) -> Iterator[CcpaRequest]:
        for request_id in list(self._ccpa):
            request = self.get_ccpa(request_id)
            if request is not None:
                yield request

    def ccpa_page(
        self, *, status: CcpaStatus | None = None, before: Order | None = None, limit: int = 50
    ) -> CcpaPage:
        """CCPA deletion requests newest first, from just before `before`; only the requests
        returned are decoded."""
        orders = self._ccpa_by_created.irange(maximum=before, inclusive=(True, False), reverse=True)
        items: list[CcpaRequest] = []
        for _, request_id in orders:
            if status is not None and self._ccpa[request_id].status != status:
                continue
            if len(items) == limit:
                return CcpaPage(items, more=True)
            request = self.get_ccpa(request_id)
            if request is not None:
                items.append(request)
        return CcpaPage(items, more=False)

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
        found = (self.get_ccpa(request_id) for request_id in sorted(self._ccpa_unannounced))
        return [request for request in found if request is not None]

    # The runner's queue

    def next_work(self) -> ExportRecord | CcpaRequest | None:
        """What the serial runner does next: interrupted work first (an export or a CCPA
        deletion), else the oldest queued export or deletion."""
        for exports, deletions in (
            (self._interrupted, self._ccpa_interrupted),
            (self._queued, self._ccpa_queued),
        ):
            export: Order | None = next(
                (order for order in exports if order[1] not in self._held), None
            )
            deletion: Order | None = deletions[0] if deletions else None
            if export is not None and (deletion is None or export <= deletion):
                return self.get(export[1])
            if deletion is not None:
                return self.get_ccpa(deletion[1])
        return None

    # Retention

    def retire(self, *, ended_before: dt.datetime, now: dt.datetime, limit: int = 1000) -> int:
        """Remove up to `limit` announced terminal records (exports with their duplicates'
        aliases, and CCPA requests) that ended before `ended_before`; each removal is a
        tombstone in the changelog. A retired export leaves a small marker so that its id
        answers "retired" (404) for one more retention period; older markers go too.
        Returns how many keys were removed."""
        removed = 0
        for ended, export_id in list(self._ended.irange(maximum=(ended_before, ""))):
            if removed >= limit:
                return removed
            entry = self._entries[export_id]
            if entry.unsettled or ended >= ended_before:
                continue
            marker = {"retiredAt": now.isoformat(), "campaignId": entry.campaign_id}
            for alias in (export_id, *self._aliases.get(export_id, ())):
                self._table[_retired_key(alias)] = orjson.dumps({**marker, "exportId": alias})
                self._retired.add((now, alias))
            self.remove(export_id)
            removed += 1
        for ended, request_id in list(self._ccpa_ended.irange(maximum=(ended_before, ""))):
            if removed >= limit:
                return removed
            if request_id in self._ccpa_unannounced or ended >= ended_before:
                continue
            self.remove_ccpa(request_id)
            removed += 1
        for retired_at, export_id in list(self._retired.irange(maximum=(ended_before, ""))):
            if removed >= limit:
                return removed
            self._retired.discard((retired_at, export_id))
            self._delete(_retired_key(export_id))
            removed += 1
        return removed

    def __len__(self) -> int:
        return len(self._entries)
