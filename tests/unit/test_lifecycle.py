"""The lifecycles (core/lifecycle.py): every pair of states, and how tries are counted."""

from __future__ import annotations

import itertools

import pytest

from core.lifecycle import (
    TRIES_PER_ATTEMPT,
    IllegalTransition,
    check_ccpa,
    check_export,
    reach_tolerance,
    start_try,
)
from core.models import CcpaStatus, ExportRecord, Status
from topics.status import StatusStore

P, T, F, X, E, D, C = (
    Status.PENDING,
    Status.TRIGGERED,
    Status.FINISHED,
    Status.FAILED,
    Status.EXPIRED,
    Status.DELETED,
    Status.CANCELLED,
)
# Written from the rules, not read from the module: a new export is PENDING; it is
# triggered, or ends FAILED/EXPIRED/CANCELLED from either active state; only a triggered
# one FINISHES; CCPA deletes FINISHED exports; nothing leaves the other terminal states.
EXPORT_MOVES = {
    (None, P),
    (P, T),
    (P, X),
    (P, E),
    (P, C),
    (T, F),
    (T, X),
    (T, E),
    (T, C),
    (F, D),
}
CCPA_MOVES = {
    (None, CcpaStatus.PENDING),
    (CcpaStatus.PENDING, CcpaStatus.RUNNING),
    (CcpaStatus.PENDING, CcpaStatus.FAILED),
    (CcpaStatus.RUNNING, CcpaStatus.COMPLETED),
    (CcpaStatus.RUNNING, CcpaStatus.FAILED),
    (CcpaStatus.FAILED, CcpaStatus.PENDING),
}


@pytest.mark.parametrize(("stored", "new"), list(itertools.product([None, *Status], list(Status))))
def test_every_pair_of_export_states(stored: Status | None, new: Status) -> None:
    allowed = (stored, new) in EXPORT_MOVES or stored == new
    if allowed:
        check_export("e1", stored, new)
    else:
        with pytest.raises(IllegalTransition):
            check_export("e1", stored, new)


@pytest.mark.parametrize(
    ("stored", "new"), list(itertools.product([None, *CcpaStatus], list(CcpaStatus)))
)
def test_every_pair_of_ccpa_states(stored: CcpaStatus | None, new: CcpaStatus) -> None:
    allowed = (stored, new) in CCPA_MOVES or stored == new
    if allowed:
        check_ccpa("r1", stored, new)
    else:
        with pytest.raises(IllegalTransition):
            check_ccpa("r1", stored, new)


def test_the_store_refuses_an_illegal_write_and_keeps_the_record() -> None:
    store = StatusStore({})
    record = ExportRecord(id="e1", campaign_id="c1", export_type="codes")
    with pytest.raises(IllegalTransition):
        store.put(record.evolve(status=Status.FINISHED))  # never stored: must start PENDING
    store.put(record)
    with pytest.raises(IllegalTransition):
        store.put(record.evolve(status=Status.FINISHED))  # not triggered
    assert store.get("e1") == record
    assert store.next_to_run() == record


def started(record: ExportRecord, limit: int = 3) -> ExportRecord:
    step = start_try(record, limit)
    assert not step.exhausted
    assert step.record.reached == 0  # a new try has got nowhere yet
    return step.record


def killed_at(record: ExportRecord, rows: int | None) -> ExportRecord:
    """The record as a try killed after `rows` rows (None: before its trigger) left it."""
    if rows is None:
        return record
    return record.evolve(status=Status.TRIGGERED, row_count=rows, reached=1 + rows)


def test_tries_that_get_further_than_the_one_before_are_not_counted() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"))
    assert (record.attempts, record.strikes) == (1, 0)
    for rows in (100, 200, 5000, 5001, 90_000):  # killed each time, a bit further
        record = started(killed_at(record, rows))
        assert record.strikes == 0
        assert record.previous_reach == 1 + rows
    assert record.attempts == 6


def test_random_kills_that_go_back_and_forth_do_not_fail_the_export() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=3)
    for rows in (5000, None, 300, 9000, 10, 4000, None, 2000):
        record = started(killed_at(record, rows), limit=3)
        assert record.strikes < 3


def test_a_poison_export_fails_after_the_limit_of_tries_without_progress() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=2)
    # Every try dies at row 700.
    record = started(killed_at(record, 700), limit=2)
    assert record.strikes == 0  # the first time it got there: progress
    record = started(killed_at(record, 700), limit=2)
    assert record.strikes == 1
    step = start_try(killed_at(record, 700), 2)
    assert step.exhausted
    assert step.record.strikes == 2


def test_a_death_before_the_trigger_is_a_try_without_progress() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=2)
    record = started(killed_at(record, None), limit=2)  # died while preparing
    assert record.strikes == 1
    assert start_try(record, 2).exhausted


def test_every_export_gets_a_bounded_number_of_tries() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=2)
    tries = 1
    rows = 0
    while True:
        rows = 1000 if rows != 1000 else 2000  # a crash point that wanders: always "progress"
        step = start_try(killed_at(record, rows), 2)
        if step.exhausted:
            break
        record, tries = step.record, tries + 1
        assert tries < 100
    assert tries == TRIES_PER_ATTEMPT * 2


def test_a_clean_stop_is_not_a_try() -> None:
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=1)
    for _ in range(2):  # shutdowns past the grace period, each before any progress
        record = started(record.evolve(clean_stop=True), limit=1)
        assert record.strikes == 0
    assert start_try(record, 1).exhausted  # a crash at the same point counts


def test_kills_that_land_ever_earlier_do_not_fail_the_export() -> None:
    # Each try got less far than the one before, but nowhere near where it ended: kills at
    # random moments, not an export that kills the worker (the earlier rule failed it).
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=3)
    for rows in (90_000, 60_000, 30_000, 10_000, 2_000):
        step = start_try(killed_at(record, rows), 3, tolerance=5_000)
        assert not step.exhausted
        record = step.record
    assert record.attempts == 6


def test_a_poison_export_whose_last_progress_write_lands_anywhere_in_an_interval_fails() -> None:
    # The crash is at the same row each time; the last progress write before it is up to one
    # interval's rows earlier, depending on timing.
    record = started(ExportRecord(id="e1", campaign_id="c1", export_type="codes"), limit=3)
    record = started(killed_at(record, 70_000), limit=3)
    for rows in (64_000, 61_000):
        step = start_try(killed_at(record, rows), 3, tolerance=10_000)
        assert not step.exhausted
        record = step.record
    assert start_try(killed_at(record, 58_000), 3, tolerance=10_000).exhausted


def test_the_tolerance_is_one_progress_interval_of_rows_at_the_last_rate() -> None:
    record = ExportRecord(id="e1", campaign_id="c1", export_type="codes")

    def tolerance(of: ExportRecord) -> int:
        return reach_tolerance(of, progress_interval_rows=10_000, progress_interval_seconds=1.0)

    assert tolerance(record) == 0  # no rate yet: only the same reach counts
    assert tolerance(record.evolve(rows_per_second=4_000.0)) == 4_000
    assert tolerance(record.evolve(rows_per_second=50_000.0)) == 10_000
