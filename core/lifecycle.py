"""The lifecycles of an export and of a CCPA deletion: their states and allowed changes.

Every write of a record goes through `check_export` / `check_ccpa` (the status store calls
them with the stored status), so an illegal change raises instead of reaching the table.
A write that keeps the status is an update (progress, bookkeeping) and is always allowed.

Tries of an export (SPEC §4, "a worker killed mid-export loses nothing"): a try counts
against EXPORT_MAX_ATTEMPTS only when it ended where the try before it ended. How far a
try got (`reached`) is stored as it goes: 0 when it starts, 1 once triggered, then 1 + the
rows written at each progress write; "where the one before ended" is that value or up to
one progress interval's rows below it (the last progress write before a crash at the same
row lands anywhere in that interval). An export that kills the worker at the same point on
every try (a poison export) fails after EXPORT_MAX_ATTEMPTS such tries in a row. Kills at
random moments land at different points and cost time: counting every try that got no
further (the earlier rule) failed a legitimate export in about one kill soak in five, since
a run of kills landing ever earlier is common (one in three by `make soak-crash` on a busy
machine; one in five in a simulation of its timings, against one in five thousand with this
rule and 5 tries). A try stopped by a shutdown
(`clean_stop`) is not counted. Whatever happens, an export gets at most
`TRIES_PER_ATTEMPT` x EXPORT_MAX_ATTEMPTS tries, so that a poison export whose crash
point wanders a little still ends.
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


TRIES_PER_ATTEMPT = 4


@dataclass(frozen=True)
class NextTry:
    """The record to store as a new try starts, or why no try may start."""

    record: ExportRecord
    exhausted: bool


def reach_tolerance(
    record: ExportRecord, *, progress_interval_rows: int, progress_interval_seconds: float
) -> int:
    """The rows one progress interval adds at the stored try's last rate: how far below the
    previous try's reach a try may end and still be ending at the same point."""
    rate = record.rows_per_second or 0.0
    return int(min(progress_interval_rows, rate * progress_interval_seconds))


def start_try(record: ExportRecord, max_tries_without_progress: int, tolerance: int = 0) -> NextTry:
    """Count the try that ends now (if any) and start the next one.

    `record` is the stored record as the runner picks it: a first try, a try interrupted
    by a crash (attempts > 0), or one stopped by a shutdown (clean_stop). `tolerance`:
    see `reach_tolerance`.
    """
    strikes, previous = record.strikes, record.previous_reach
    if record.attempts > 0 and not record.clean_stop:
        reached = record.reached  # how far the stored try got
        ended_where_the_last_did = previous - tolerance <= reached <= previous
        strikes = strikes + 1 if ended_where_the_last_did else 0
        previous = reached
    exhausted = (
        strikes >= max_tries_without_progress
        or record.attempts >= TRIES_PER_ATTEMPT * max_tries_without_progress
    )
    if exhausted:
        return NextTry(record.evolve(strikes=strikes, previous_reach=previous), exhausted=True)
    started = record.evolve(
        # A try after a clean stop continues the stopped one: not a new try.
        attempts=record.attempts + (0 if record.clean_stop else 1),
        strikes=strikes,
        previous_reach=previous,
        reached=0,
        clean_stop=False,
    )
    return NextTry(started, exhausted=False)
