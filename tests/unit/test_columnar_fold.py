"""The columnar form of fanlist's fold (exporters.columnar_fold) against the row rules.

The fuzzed equivalence test compares whole exports; these look at the two steps on their
own, where the fuzz rarely goes: keys that are equal in Python but not alike (0, False,
0.0), keys never equal to themselves (NaN), runs longer than several chunks, and the
progress count of the source documents read.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator
from typing import Any

import bson
from bson import Int64

from core.deps import Doc
from exporters.bson_columns import DRIVER_CODEC_OPTIONS
from exporters.columnar import ColumnarPlan, columnar_plan
from exporters.columnar_fold import FOLDED_FIELDS, RunFold
from exporters.formatting import format_cell
from exporters.registry import get_spec
from exporters.rows import _Run
from exporters.runner import Progress, RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore, _sort_key
from tests.unit.test_columnar_equivalence import dataset

UTC = dt.UTC
_NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
_MISSING = object()

# Consecutive keys as the sorted source may hold them: runs the row engine folds together
# (0, False, 0.0, Int64(5) and 5, equal lists and documents, missing and null) and apart (NaN).
HOSTILE_KEYS: list[Any] = [
    "u1",
    "u1",
    _MISSING,
    None,
    0,
    False,
    0.0,
    float("nan"),
    float("nan"),
    [1],
    [1],
    {"a": 1},
    {"a": 1},
    "u2",
    *["u3"] * 20,  # longer than several chunks
    "",
    "",
    Int64(5),
    5,
    _NOW,
    _NOW,
    "u4",
]


def _plan() -> ColumnarPlan:
    plan = columnar_plan(get_spec("fanlist"))
    assert plan.fold is not None
    return plan


def _fold() -> RunFold:
    fold = _plan().fold
    assert fold is not None
    return fold


def _entries(keys: list[Any], rng: random.Random) -> list[Doc]:
    entries = []
    for number, key in enumerate(keys):
        entry: Doc = {
            "_id": f"e{number}",
            "campaignId": "c1",
            "marketId": rng.choice(["m1", "m2", "", None]),
            "additionalMarketIds": rng.choice([["m1", "m3"], [], "m4", None]),
            "createdAt": rng.choice([_NOW - dt.timedelta(seconds=number), None, "2026"]),
            "locale": rng.choice(["en_US", "", None, 7, ["fr_CA"]]),
        }
        if key is not _MISSING:
            entry["userId"] = key
        entries.append(entry)
    return entries


def _decoded(raw: list[bytes]) -> list[Doc]:
    return [bson.decode(one, DRIVER_CODEC_OPTIONS) for one in raw]


def _run_starts(docs: list[Doc]) -> set[int]:
    """Where the row engine starts a run: its own test of consecutive keys."""
    starts = {0}
    for number in range(1, len(docs)):
        if docs[number].get("userId") != docs[number - 1].get("userId"):
            starts.add(number)
    return starts


def _row_rule_docs(docs: list[Doc]) -> list[Doc]:
    """The folded documents exporters.rows makes of these documents, in one batch."""
    group = get_spec("fanlist").group
    assert group is not None
    run = _Run(group)
    folded = run.fold(docs)
    return [*folded, group.fold(run.key, run.pending)] if run.pending else folded


async def _chunks(replies: list[bytes]) -> AsyncIterator[bytes]:
    for reply in replies:
        yield reply


async def test_whole_runs_cut_only_where_the_row_engine_starts_a_run() -> None:
    docs = [bson.encode(doc) for doc in _entries(HOSTILE_KEYS, random.Random(1))]
    starts = _run_starts(_decoded(docs))
    for seed in range(60):
        rng = random.Random(seed)
        replies, at = [], 0
        while at < len(docs):
            size = rng.randint(0, 7)  # an empty reply too, now and then
            replies.append(b"".join(docs[at : at + size]))
            at += size
        # Each reply alone, or several joined (the cut then walks back through them).
        chunk_bytes = rng.choice([0, 300, 1500])
        out = [chunk async for chunk in _fold().whole_runs(_chunks(replies), chunk_bytes)]
        assert b"".join(out) == b"".join(docs)
        firsts, at = [], 0
        for chunk in out:
            assert chunk
            firsts.append(at)
            at += len(bson.decode_all(chunk))
        assert set(firsts) <= starts, seed


async def test_a_run_longer_than_a_chunk_is_carried_whole() -> None:
    docs = [bson.encode(doc) for doc in _entries(["u0", *["u1"] * 9, "u2"], random.Random(2))]
    replies = [b"".join(docs[at : at + 3]) for at in range(0, len(docs), 3)]
    out = [chunk async for chunk in _fold().whole_runs(_chunks(replies), 0)]
    assert [len(bson.decode_all(chunk)) for chunk in out] == [1, 9, 1]


def _typed_entries(rng: random.Random) -> list[Doc]:
    """Runs of values of their declared types but for lone market ids (the common case)."""
    # Missing and null keys sort first, and are one run.
    entries: list[Doc] = [{"_id": "e-none", "userId": None}, {"_id": "e-missing"}]
    for user in range(60):
        for _ in range(rng.randint(1, 5)):
            entries.append(
                {
                    "_id": f"e{len(entries)}",
                    "userId": f"u{user:02d}",
                    "marketId": rng.choice(["m1", "m2", ""]),
                    "additionalMarketIds": rng.choice([["m2", "m3", "m3", ""], [], "m4"]),
                    # Equal times too: the earlier position wins.
                    "createdAt": rng.choice([_NOW - dt.timedelta(days=rng.randrange(3)), None]),
                    "locale": rng.choice(["en_US", "fr_CA", "", None]),
                }
            )
    return entries


def _hostile_sources() -> list[list[Doc]]:
    sources = [_entries(HOSTILE_KEYS, random.Random(seed)) for seed in range(4)]
    sources += [_typed_entries(random.Random(seed)) for seed in range(4)]
    for seed in range(6):
        entries = dataset(seed)["entries"]
        sources.append(sorted(entries, key=lambda doc: _sort_key(doc.get("userId"))))
    return sources


def test_a_chunk_of_whole_runs_folds_to_the_row_rules_documents() -> None:
    fold = _fold()
    typed = by_rule = 0
    for entries in _hostile_sources():
        raw = [bson.encode(doc) for doc in entries]
        expected = _row_rule_docs(_decoded(raw))
        batch, read = fold.fold(b"".join(raw))
        assert read == len(entries)
        assert len(batch) == len(expected)
        for name in FOLDED_FIELDS:
            cells = batch.formatted(name).fill_null("").to_list()
            for index, want in enumerate(expected):
                got = batch.doc(index)
                assert format_cell(got[name]) == format_cell(want[name]), (index, name)
                assert type(got[name]) is type(want[name]) or want[name] == got[name]
                if index not in batch.suspect_fields[name]:
                    assert cells[index] == format_cell(want[name]), (index, name)
        user_ids = batch.values("userId")
        assert [format_cell(u) for u in user_ids] == [format_cell(d["userId"]) for d in expected]
        by_rule += len(batch.suspect)
        typed += len(batch) - len(batch.suspect)
    assert typed > 100
    assert by_rule > 10


async def test_progress_counts_the_entries_read_not_the_rows() -> None:
    rng = random.Random(3)
    users = [{"_id": f"u{n}", "email": f"u{n}@example.com"} for n in range(30)]
    entries = _entries([f"u{rng.randrange(30)}" for _ in range(200)], rng)
    entries.append({"_id": "last", "campaignId": "c1", "userId": "u99"})
    users.append({"_id": "u99"})
    source = InMemorySource(
        {"campaigns": [{"_id": "c1", "name": "c"}], "users": users, "entries": entries}
    )
    spec = get_spec("fanlist")
    ctx = await load_context(spec, source, export_id="x", campaign_id="c1", params={})
    reports: list[Progress] = []

    async def report(progress: Progress) -> None:
        reports.append(progress)

    options = RunOptions(
        bucket_names={"exports": "e"},
        columnar_batch_size=7,
        progress_interval_rows=1,
        engine="columnar",
    )
    result = await run_export(
        spec, ctx, source=source, store=InMemoryStore(), options=options, on_progress=report
    )
    assert result.row_count == len({entry["userId"] for entry in entries})
    assert reports[-1].documents_read == len(entries)
    assert reports[-1].row_count == result.row_count


def test_a_chunk_without_documents_folds_to_none() -> None:
    batch, read = _fold().fold(b"")
    assert (len(batch), read) == (0, 0)
    assert batch.values("userId") == []
    assert [batch.formatted(name).to_list() for name in FOLDED_FIELDS] == [[]] * 5
