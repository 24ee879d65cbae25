"""The short version of `make bench-tracing`: the three modes run and are measured alike."""

from __future__ import annotations

from bench import engine, tracing_cost


async def test_a_tiny_tracing_bench_measures_every_mode() -> None:
    report = await tracing_cost.measure(engine.ensure_dataset(users=3000, seed=7), repeat=1)
    assert report["rows"] > 1000
    assert set(report["modes"]) == {"baseline", "off", "on"}
    for figures in report["modes"].values():
        assert figures["cpu_seconds_median"] > 0
    assert report["modes"]["baseline"]["x_baseline"] == 1.0
    # Only the SDK records: the run span, its S3 parts and completion at least.
    assert report["spans_exported_when_on"] >= 2
    assert "| off |" in tracing_cost._table(report)
    assert report["noop_span_ns"] > 0
