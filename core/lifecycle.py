"""The lifecycles of an export and of a CCPA deletion: their states and allowed changes.

Every write of a record goes through `check_export` / `check_ccpa` (the status store calls
them with the stored status), so an illegal change raises instead of reaching the table.
A write that keeps the status is an update (progress, bookkeeping) and is always allowed.

Tries of an export (SPEC §4, "a worker killed mid-export loses nothing"): a try counts
against EXPORT_MAX_ATTEMPTS only when it got no further than the best earlier try.
Progress is the stage reached and the rows written (`progress_of`), as last stored. Random
kills therefore cost time, while an export that kills the worker at the same point on
every try (a poison export) fails after EXPORT_MAX_ATTEMPTS tries without progress.
A try stopped by a shutdown (`clean_stop`) is not counted at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import ExportServiceError
from core.models import CcpaStatus, ExportRecord, Status

EXPORT_TRANSITIONS: Mapping[Status | None, frozenset[Status]] = {
    None: frozenset({Status.PENDING}),
    Status.PENDING: frozenset({Status.TRIGGERED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}),
    Status.TRIGGERED: frozenset({Status.FINISHED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}),
    Status.FINISHED: frozenset({Status.DELETED}),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.DELETED: frozenset(),
}
"""Stored status (None: no record yet) -> the statuses a write may change it to."""

CCPA_TRANSITIONS: Mapping[CcpaStatus | None, frozenset[CcpaStatus]] = {
    None: frozenset({CcpaStatus.PENDING}),
    CcpaStatus.PENDING: frozenset({CcpaStatus.RUNNING, CcpaStatus.FAILED}),
    CcpaStatus.RUNNING: frozenset({CcpaStatus.COMPLETED, CcpaStatus.FAILED}),
    # The same request id sent again queues a FAILED deletion once more (SPEC §5).
    CcpaStatus.FAILED: frozenset({CcpaStatus.PENDING}),
    CcpaStatus.COMPLETED: frozenset(),
}


class IllegalTransition(ExportServiceError):
    code, http_status = "ILLEGAL_TRANSITION", 409


def _allowed(stored: object, new: object, table: Mapping[object, frozenset[object]]) -> bool:
    return (stored is not None and stored == new) or new in table[stored]


def check_export(record_id: str, stored: Status | None, new: Status) -> None:
    """Raise IllegalTransition unless an export stored as `stored` may become `new`."""
    if not _allowed(stored, new, EXPORT_TRANSITIONS):  # type: ignore[arg-type]
        raise IllegalTransition(
            f"export {record_id} cannot go from {stored or 'nothing'} to {new}",
            details={"exportId": record_id, "from": stored, "to": new},
        )


def check_ccpa(request_id: str, stored: CcpaStatus | None, new: CcpaStatus) -> None:
    if not _allowed(stored, new, CCPA_TRANSITIONS):  # type: ignore[arg-type]
        raise IllegalTransition(
            f"CCPA request {request_id} cannot go from {stored or 'nothing'} to {new}",
            details={"requestId": request_id, "from": stored, "to": new},
        )


def progress_of(record: ExportRecord) -> int:
    """How far the stored try got: 0 before the trigger, then 1 + the rows written."""
    return 1 + record.row_count if record.status == Status.TRIGGERED else 0


@dataclass(frozen=True)
class NextTry:
    """The record to store as a new try starts, or why no try may start."""

    record: ExportRecord
    exhausted: bool


def start_try(record: ExportRecord, max_tries_without_progress: int) -> NextTry:
    """Count the try that ends now (if any) and start the next one.

    `record` is the stored record as the runner picks it: a first try, a try interrupted
    by a crash (attempts > 0), or one stopped by a shutdown (clean_stop).
    """
    strikes, best = record.strikes, record.best_progress
    if record.attempts > 0 and not record.clean_stop:
        reached = progress_of(record)
        if reached > best:
            strikes, best = 0, reached
        else:
            strikes += 1
    if strikes >= max_tries_without_progress:
        return NextTry(record.evolve(strikes=strikes, best_progress=best), exhausted=True)
    started = record.evolve(
        attempts=record.attempts + 1, strikes=strikes, best_progress=best, clean_stop=False
    )
    return NextTry(started, exhausted=False)
