"""A running export leaves the event loop free: its per-row work runs in worker threads.

Every export type runs on both engines over a generated dataset of two sizes while a profile
hook counts, on the loop's thread only, the calls into the code that does per-row and
per-cell work (cells, formatting, CSV encoding, the specs' folds, expansions and filters).
Setting an export up calls some of it on the loop (the generated cells function is compiled
there, the header is encoded there), but the number of such calls must not grow with the
rows: anything that does is row work on the loop, and the test names it. A timing test could
not tell a slow machine from a blocked loop.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest

import exporters
from devstack.generate import BIG_CAMPAIGN_ID, generated_documents
from exporters.registry import SPECS, get_spec
from exporters.runner import RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore

BUCKETS = {"exports": "b-exports", "scoring": "b-scoring", "vfScoring": "b-vf", "sfmc": "b-sfmc"}
PARAMS: dict[str, dict[str, Any]] = {"codeWave": {"waveId": "wave-0"}}

_PACKAGE = Path(exporters.__file__).parent
_ROW_WORK_FILES = {
    str(_PACKAGE / name)
    for name in ("cells.py", "formatting.py", "csv_encoding.py", "columns.py", "folds.py")
} | {str(path) for path in (_PACKAGE / "specs").glob("*.py")}


class LoopCalls:
    """Calls into row-work code made on the thread that installs it, by code object."""

    def __init__(self, allowed: set[CodeType]) -> None:
        self.counts: Counter[CodeType] = Counter()
        self._allowed = allowed

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        if event != "call" or code in self._allowed:
            return
        if code.co_filename in _ROW_WORK_FILES or code.co_filename.startswith("<cells"):
            self.counts[code] += 1


def _source(users: int) -> InMemorySource:
    data: dict[str, list[dict[str, Any]]] = {}
    for collection, doc in generated_documents(users=users, seed=5):
        data.setdefault(collection, []).append(doc)
    return InMemorySource(data)


async def _loop_calls(export_type: str, engine: str, users: int) -> tuple[Counter[CodeType], int]:
    spec = get_spec(export_type)
    source, store = _source(users), InMemoryStore()
    ctx = await load_context(
        spec, source, export_id="x1", campaign_id=BIG_CAMPAIGN_ID, params=PARAMS.get(export_type)
    )
    # A join's key is read on the loop for each row: it is what the look-up sends.
    join_keys = {join.key.__code__ for join in spec.joins if hasattr(join.key, "__code__")}
    calls = LoopCalls(join_keys)
    options = RunOptions(bucket_names=BUCKETS, batch_size=50, engine=engine)  # type: ignore[arg-type]
    sys.setprofile(calls)
    try:
        result = await run_export(spec, ctx, source=source, store=store, options=options)
    finally:
        sys.setprofile(None)
    return calls.counts, result.row_count


@pytest.mark.parametrize("engine", ["columnar", "rows"])
@pytest.mark.parametrize("export_type", [spec.name for spec in SPECS])
async def test_no_row_work_runs_on_the_event_loop(export_type: str, engine: str) -> None:
    small, small_rows = await _loop_calls(export_type, engine, users=40)
    large, large_rows = await _loop_calls(export_type, engine, users=160)
    assert large_rows > small_rows or export_type == "reminderEmailSample"
    grown = sorted(
        f"{Path(code.co_filename).name}:{code.co_name} ({small[code]} -> {count})"
        for code, count in large.items()
        if count > small[code]
    )
    assert grown == [], f"{export_type} ({engine}) ran row work on the event loop"
