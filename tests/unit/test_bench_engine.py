"""The short version of `make bench`: the engine bench runs and measures what it says.

Not a timing test: it checks that a tiny run of the bench reports, on the columnar engine and
on the row engine, the rows the export wrote, its figures beside the baselines, and the
loop's lag, so that the one-command benchmark keeps working.
"""

from __future__ import annotations

import pytest

from bench import engine


@pytest.mark.parametrize(
    ("export_type", "engine_used"),
    [("entries", "columnar"), ("fanlist", "columnar"), ("fanlist", "rows")],
)
async def test_a_tiny_bench_run_reports_every_figure(export_type: str, engine_used: str) -> None:
    directory = engine.ensure_dataset(users=3000, seed=7)
    result = await engine._run_type(export_type, directory, engine_used, batch_size=100)
    assert result["engine"] == engine_used
    assert result["rows"] > 100
    for figure in (
        "rows_per_cpu_second",
        "source_docs_per_cpu_second",
        "csv_writer_rows_per_cpu_second",
        "decode_rows_per_cpu_second",
    ):
        assert result[figure] > 0, figure
    lag = result["loop_lag_ms"]
    assert lag["samples"] >= 2, lag
    assert lag["max"] >= lag["p50"] >= 0
    if engine_used == "columnar":
        assert result["decode_arrow_rows_per_cpu_second"] > 0
    assert "| " + export_type + " |" in engine._table([result])
