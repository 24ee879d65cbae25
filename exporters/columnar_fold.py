"""A fold of consecutive source documents (GroupConsecutive) on the columnar engine.

The row engine (exporters.rows.grouped) cuts the sorted source into runs where a document's
key `!=` the one before it, by Python equality of the decoded values (hostile keys too), and
folds each run with the spec's fold. Here, in two steps:

- `whole_runs` re-cuts the stream of source chunks so that each chunk holds whole runs: the
  run a chunk ends with may go on in the next one, so its documents' bytes are carried into
  it (memory: a chunk plus one run, as the row engine holds one run).
- `RunFold.fold` turns a chunk of whole runs into the folded documents as typed columns
  (a `FoldedBatch`, which the engine reads as it reads a decoded source batch). A run with a
  document whose columns cannot stand for a field the fold reads is folded by the row rule
  (the fold itself, over the documents as the driver decodes them), and its folded document
  is suspect: its cells are computed by the row rules.

Which folds: `UserEntries` (fanlist), whose rules are restated over columns in `_user_runs`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import operator
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson
import polars as pl

from core.deps import Doc
from exporters.bson_columns import (
    DRIVER_CODEC_OPTIONS,
    BatchSchema,
    FieldType,
    TypedBatch,
    document_offsets,
    format_column,
)
from exporters.folds import UserEntries
from exporters.spec import GroupConsecutive, read_path

FOLDED_FIELDS: Mapping[str, FieldType] = {
    "_id": FieldType.STR,
    "userId": FieldType.STR,
    "marketCount": FieldType.INT,
    "firstEntryAt": FieldType.DATE,
    "locale": FieldType.STR,
}
"""The fields of a UserEntries document, as typed columns (an odd run's are suspect)."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RunFold:
    """How the columnar engine folds one spec's source: its key and the typed fields read."""

    group: GroupConsecutive
    schema: BatchSchema  # the key and the fields the fold reads, as source columns

    async def whole_runs(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """The chunks re-cut at run boundaries (the looking up of keys runs in a thread)."""
        carry = _Carry(self.group.key)
        async for chunk in chunks:
            whole = await asyncio.to_thread(carry.take, chunk)
            if whole:
                yield whole
        if carry.pending:
            yield carry.rest()

    def fold(self, raw: bytes) -> tuple[FoldedBatch, int]:
        """A chunk of whole runs folded, and how many source documents it held."""
        docs = self.schema.decode(raw)
        keys = pl.Series(pl.from_arrow(docs.columns[self.group.key]))
        new_run = _new_runs(docs, self.group.key, keys)
        run_of = new_run.cast(pl.UInt32).cum_sum() - 1
        starts = new_run.arg_true()
        ends = pl.concat([starts.slice(1) - 1, pl.Series([len(docs) - 1], dtype=starts.dtype)])
        fold = self.group.fold
        assert isinstance(fold, UserEntries)  # noqa: S101 (run_fold checked it)
        # A run is folded by the row rule when an entry's key, date or locale is suspect; an
        # entry suspect only in its markets has them counted by the rule's own reading.
        odd = docs.suspect_fields
        by_rule_docs = odd[self.group.key] | odd["createdAt"] | odd["locale"]
        by_rule_runs = sorted(set(run_of.gather(sorted(by_rule_docs)).to_list()))
        by_rule: dict[int, Doc] = {}
        for run in by_rule_runs:
            first, last = int(starts[run]), int(ends[run])
            entries = [docs.doc(index) for index in range(first, last + 1)]
            by_rule[run] = fold(docs.doc(last).get(self.group.key), entries)
        market_docs = frozenset().union(*(odd[name] for name in fold.market_reads))
        columns = _user_runs(docs, run_of, fold, market_docs - by_rule_docs)
        run_keys = keys.gather(ends)
        if by_rule_runs:  # their keys may be of any type: the row rule's documents hold them
            run_keys = run_keys.scatter(by_rule_runs, None)
        columns["userId"] = columns["_id"] = run_keys
        return FoldedBatch(columns, by_rule), len(docs)


def _new_runs(docs: TypedBatch, key: str, typed: pl.Series) -> pl.Series:
    """Whether each document starts a run: its key `!=` the one before it (exporters.rows)."""
    if len(typed) == 0:
        return pl.Series([], dtype=pl.Boolean)
    first = pl.Series([True])
    odd = docs.suspect_fields[key]
    if not odd:
        # Strings and None (missing or null) only: Python's `!=` is polars' ne_missing.
        return pl.concat([first, typed.slice(1).ne_missing(typed.slice(0, len(typed) - 1))])
    keys = typed.to_list()
    for index in odd:
        keys[index] = docs.doc(index).get(key)  # as the driver decodes it, hostile or not
    # The row engine's test, operands in its order: `key != previous key`.
    return pl.concat([first, pl.Series(list(map(bool, map(operator.ne, keys[1:], keys[:-1]))))])


def run_fold(group: GroupConsecutive, fields: Mapping[str, FieldType]) -> RunFold | None:
    """The columnar form of a fold, given the source's typed fields; None when it has none."""
    if not isinstance(group.fold, UserEntries) or "." in group.key:
        return None
    wanted = (group.key, *group.fold.reads)
    if any(name not in fields for name in wanted):
        return None
    return RunFold(group, BatchSchema({name: fields[name] for name in wanted}))


def _user_runs(
    docs: TypedBatch, run_of: pl.Series, fold: UserEntries, odd_markets: frozenset[int]
) -> dict[str, pl.Series]:
    """UserEntries' fields of each run from typed entry columns (exporters.folds states the
    rules); the market ids of entries in `odd_markets` are read by the rule from the decoded
    entries. A run with another suspect entry gets values here that its row-rule document
    replaces.
    """
    frame = pl.DataFrame(
        {
            "run": run_of,
            "market": pl.from_arrow(docs.columns["marketId"]),
            "more": pl.from_arrow(docs.columns["additionalMarketIds"]),
            "at": pl.from_arrow(docs.columns["createdAt"]),
            "locale": pl.from_arrow(docs.columns["locale"]),
        }
    ).with_row_index("entry")
    if odd_markets:
        odd = sorted(odd_markets)
        runs = run_of.gather(odd).to_list()
        found = [
            (run, m)
            for run, i in zip(runs, odd, strict=True)
            for m in fold.markets_of_entry(docs.doc(i))
        ]
        cleared = pl.Series("odd", [False] * len(frame)).scatter(odd, True)
        frame = frame.with_columns(
            pl.when(cleared).then(None).otherwise(pl.col(name)).alias(name)
            for name in ("market", "more")
        )
        # One more row per id the rule found: no date, no locale, after the run's entries.
        extra = pl.DataFrame(
            {
                "entry": pl.Series(range(len(frame), len(frame) + len(found)), dtype=pl.UInt32),
                "run": pl.Series([run for run, _ in found], dtype=run_of.dtype),
                "market": pl.Series([m for _, m in found], dtype=pl.String),
            }
        )
        frame = pl.concat([frame, extra], how="diagonal")
    ids = pl.col("market").append(pl.col("more").list.explode(keep_nulls=False))
    truthy = pl.col("locale").is_not_null() & (pl.col("locale") != "")
    # By time within each run, the dated entries first (by time, then position), then the
    # undated ones in order: so a run's first date is its earliest (Python's datetimes order
    # as their milliseconds do), and its first truthy locale is the fold's.
    folded = (
        frame.sort(["run", "at", "entry"], nulls_last=True)
        .group_by("run", maintain_order=True)
        .agg(
            # Distinct non-empty market ids, primary and additional alike (nulls never count).
            ids.filter(ids.is_not_null() & (ids != "")).n_unique().alias("marketCount"),
            pl.col("at").first().alias("firstEntryAt"),
            pl.col("locale").filter(truthy).first(),
        )
    )
    return {
        "marketCount": folded["marketCount"].cast(pl.Int64),
        "firstEntryAt": folded["firstEntryAt"],
        "locale": folded["locale"],
    }


class FoldedBatch:
    """The folded documents of a chunk, read by the engine as it reads a TypedBatch."""

    def __init__(self, columns: Mapping[str, pl.Series], by_rule: Mapping[int, Doc]) -> None:
        self._columns = columns
        self._by_rule = by_rule
        self._suspect = frozenset(by_rule)
        self._rows = len(columns["userId"])

    @property
    def suspect(self) -> frozenset[int]:
        return self._suspect

    @property
    def suspect_fields(self) -> Mapping[str, frozenset[int]]:
        # A row-rule document may hold any value in any of its fields.
        return dict.fromkeys(FOLDED_FIELDS, self._suspect)

    def __len__(self) -> int:
        return self._rows

    def doc(self, index: int) -> Doc:
        """Folded document `index` as the row engine's fold returns it."""
        found = self._by_rule.get(index)
        if found is not None:
            return found
        user_id = self._columns["userId"][index]
        millis = self._columns["firstEntryAt"].cast(pl.Int64)[index]
        return {
            "_id": user_id,
            "userId": user_id,
            "marketCount": self._columns["marketCount"][index],
            "firstEntryAt": None if millis is None else _EPOCH + dt.timedelta(milliseconds=millis),
            "locale": self._columns["locale"][index],
        }

    def values(self, dotted: str) -> list[Any]:
        """Python values of a STR field; row-rule documents read as they are."""
        values: list[Any] = self._columns[dotted].to_list()
        parts = dotted.split(".")
        for index, doc in self._by_rule.items():
            values[index] = read_path(doc, parts)
        return values

    def formatted(self, dotted: str) -> pl.Series:
        """The field's cells (null for ''); rows of row-rule documents are to be replaced."""
        return format_column(self._columns[dotted].to_arrow(), FOLDED_FIELDS[dotted])


def _new_run(key: Any, previous: Any) -> bool:
    """The row engine's test of a run's end (exporters.rows), operands in its order."""
    return bool(key != previous)


class _Carry:
    """The run a chunk ended with, held (as document bytes) until a chunk ends it."""

    def __init__(self, key: str) -> None:
        self._key = key
        self.pending: list[bytes] = []
        self._last_key: Any = None

    def take(self, chunk: bytes) -> bytes:
        """The bytes of the whole runs this chunk completes (with those carried before it)."""
        offsets = document_offsets(chunk)
        count = len(offsets) - 1
        if count == 0:
            return b""
        cut = self._last_boundary(chunk, offsets)
        last_key = self._key_at(chunk, offsets, count - 1)
        if cut == 0 and self.pending and self._continues(chunk, offsets):
            self.pending.append(chunk)  # the carried run goes on through the whole chunk
            self._last_key = last_key
            return b""
        whole = b"".join([*self.pending, chunk[: offsets[cut]]])
        self.pending = [chunk[offsets[cut] :]]
        self._last_key = last_key
        return whole

    def rest(self) -> bytes:
        rest = b"".join(self.pending)
        self.pending = []
        return rest

    def _last_boundary(self, chunk: bytes, offsets: Sequence[int]) -> int:
        """The first document of the chunk's last run (0 when no run starts after it)."""
        at = len(offsets) - 2
        key = self._key_at(chunk, offsets, at)
        while at > 0:
            before = self._key_at(chunk, offsets, at - 1)
            if _new_run(key, before):
                return at
            at, key = at - 1, before
        return 0

    def _continues(self, chunk: bytes, offsets: Sequence[int]) -> bool:
        """Whether the chunk's first document is in the run carried from before."""
        return not _new_run(self._key_at(chunk, offsets, 0), self._last_key)

    def _key_at(self, chunk: bytes, offsets: Sequence[int], index: int) -> Any:
        # Decoded as the driver decodes it: equality of keys is that of the row engine's.
        doc = bson.decode(chunk[offsets[index] : offsets[index + 1]], DRIVER_CODEC_OPTIONS)
        return doc.get(self._key)
