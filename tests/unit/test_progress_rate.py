"""rowsPerSecond and etaSeconds from progress reports (core/progress.py)."""

from __future__ import annotations

import pytest

from core.progress import ProgressRate, average_rows_per_second


def test_a_steady_run_gives_its_rate_and_the_time_left() -> None:
    rate = ProgressRate(started=100.0, total_documents=1000)
    # 100 documents (200 rows: two markets each) per second.
    estimate = rate.update(now=101.0, rows=200, documents=100)
    assert estimate.rows_per_second == pytest.approx(200.0)
    assert estimate.eta_seconds == pytest.approx(9.0)
    estimate = rate.update(now=105.0, rows=1000, documents=500)
    assert estimate.rows_per_second == pytest.approx(200.0)
    assert estimate.eta_seconds == pytest.approx(5.0)


def test_more_rows_than_documents_still_counts_down_to_zero() -> None:
    rate = ProgressRate(started=0.0, total_documents=10)
    estimate = rate.update(now=1.0, rows=30, documents=10)
    assert estimate.eta_seconds == 0.0


def test_passes_multiply_the_work() -> None:
    rate = ProgressRate(started=0.0, total_documents=100)
    estimate = rate.update(now=1.0, rows=50, documents=50, passes=3)
    # 250 documents left at 50 per second.
    assert estimate.eta_seconds == pytest.approx(5.0)


def test_one_slow_interval_moves_the_estimate_only_partly() -> None:
    rate = ProgressRate(started=0.0, total_documents=10_000)
    rate.update(now=1.0, rows=1000, documents=1000)
    slow = rate.update(now=11.0, rows=1100, documents=1100)  # 10 rows/s for 10 s
    assert slow.rows_per_second is not None
    assert 10 < slow.rows_per_second < 1000


def test_no_count_or_no_progress_gives_no_eta() -> None:
    assert (
        ProgressRate(started=0.0, total_documents=None)
        .update(now=1.0, rows=5, documents=5)
        .eta_seconds
        is None
    )
    stalled = ProgressRate(started=0.0, total_documents=10).update(now=1.0, rows=0, documents=0)
    assert stalled.eta_seconds is None
    assert stalled.rows_per_second == 0.0


def test_the_average_of_a_finished_run() -> None:
    assert average_rows_per_second(1000, 4.0) == 250.0
    assert average_rows_per_second(0, 4.0) is None
    assert average_rows_per_second(10, 0.0) is None
