"""The short version of `make bench-status`: a tiny run of the status-load bench works and
reports every figure beside its baseline (not a timing test: no target is asserted)."""

from __future__ import annotations

from bench import status_load


def test_a_tiny_status_bench_run_reports_every_figure() -> None:
    result = status_load.run(records=2000, campaigns=20, samples=20, intake=200, idle_seconds=1)
    assert result.records == 2000
    assert result.intake_events == 200
    for figure in (
        "recovery_seconds",
        "recovery_empty_seconds",
        "get_ms_p99",
        "post_ms_p99",
        "post_empty_table_ms_p99",
        "post_no_export_running_ms_p99",
        "post_no_export_running_empty_table_ms_p99",
        "heartbeat_ms_p99",
        "intake_per_second",
        "produced_per_second",
        "worker_rss_mib",
    ):
        assert getattr(result, figure) > 0, figure
    assert result.idle_cpu_percent >= 0
