"""The short version of `make bench`: the engine bench runs and measures what it says.

Not a timing test: it checks that a tiny run of the bench reports, on the columnar engine and
on the row engine, the rows the export wrote, its figures beside the baselines, and the
loop's lag, so that the one-command benchmark keeps working.
"""

from __future__ import annotations

from typing import Any

import bson
import pytest

from bench import engine


@pytest.mark.parametrize(
    ("export_type", "engine_used"),
    [("entries", "columnar"), ("fanlist", "columnar"), ("fanlist", "rows")],
)
async def test_a_tiny_bench_run_reports_every_figure(export_type: str, engine_used: str) -> None:
    directory = engine.ensure_dataset(users=3000, seed=7)
    result = await engine._run_type(export_type, directory, engine_used, batch_size=100, repeat=3)
    assert result["engine"] == engine_used
    assert result["rows"] > 100
    assert result["repeat"] == 3
    low, high = result["rows_per_cpu_second_range"]
    assert 0 < low <= result["rows_per_cpu_second"] <= high
    for figure in (
        "rows_per_cpu_second",
        "first_export_rows_per_cpu_second",
        "probed_rows_per_cpu_second",
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


async def test_the_replay_answers_a_joins_look_ups_with_its_projection_applied() -> None:
    from bson.codec_options import CodecOptions

    from exporters.joins import ENTRY_OF_RECORD

    source = engine.ReplaySource(engine.ensure_dataset(users=3000, seed=7))
    join = ENTRY_OF_RECORD
    source.prepare("scoring", {}, [(join.collection, join.field, join.projection)])
    entries = [bson.decode(raw) for raw in source.raw["entries"][:50]]
    ids = [doc["_id"] for doc in entries]
    (reply,) = await source.find_in_raw("entries", "_id", ids, projection=join.projection)
    got = {doc["_id"]: doc for doc in bson.decode_all(reply)}
    assert join.projection is not None
    kept = {"_id", *join.projection}
    # The fields a server would send, in the document's order, each value as it was.
    assert got == {doc["_id"]: {k: v for k, v in doc.items() if k in kept} for doc in entries}
    assert all(
        list(got[i]) == [k for k in doc if k in kept] for i, doc in zip(ids, entries, strict=True)
    )
    assert any(set(doc) - kept for doc in entries)  # the projection left something out
    exact: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=False)
    every = [bson.decode(raw, exact) for raw in source.raw["users"]]
    for raw, doc in zip(source.raw["users"], every, strict=True):
        assert bson.decode(engine.projected(raw, {"email": 1}), exact) == {
            k: v for k, v in doc.items() if k in ("_id", "email")
        }
