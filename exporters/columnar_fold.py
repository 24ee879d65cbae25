"""A fold of consecutive source documents (GroupConsecutive) on the columnar engine.

The row engine (exporters.rows.grouped) cuts the sorted source into runs where a document's
key `!=` the one before it, by Python equality of the decoded values (hostile keys too), and
folds each run with the spec's fold. Here, in two steps:

- `whole_runs` joins the source's replies into chunks that hold whole runs: the run a chunk
  ends with may go on in the next one, so its documents' bytes are carried into it (memory:
  a chunk plus one run, as the row engine holds one run).
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
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import bson
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

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
from exporters.reply_chunks import reply_groups
from exporters.spec import GroupConsecutive, read_path

FOLDED_FIELDS: Mapping[str, FieldType] = {
    "_id": FieldType.STR,
    "userId": FieldType.STR,
    "marketCount": FieldType.INT,
    "firstEntryAt": FieldType.DATE,
    "locale": FieldType.STR,
}
"""The fields of a UserEntries document, as typed columns (an odd run's are suspect)."""

_EMPTY = {
    "_id": pa.string(),
    "userId": pa.string(),
    "marketCount": pa.int64(),
    "firstEntryAt": pa.timestamp("ms"),
    "locale": pa.string(),
}  # FOLDED_FIELDS' Arrow types, for a chunk without documents
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NO_DATE = np.iinfo(np.int64).max  # an undated entry's time: after every date
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RunFold:
    """How the columnar engine folds one spec's source: its key and the typed fields read."""

    group: GroupConsecutive
    schema: BatchSchema  # the key and the fields the fold reads, as source columns

    async def whole_runs(
        self, replies: AsyncIterator[bytes], chunk_bytes: int
    ) -> AsyncGenerator[bytes, None]:
        """The replies joined into chunks of at least `chunk_bytes` as
        `exporters.reply_chunks.coalesced` joins them (0: each reply alone), each cut after
        its last whole run.

        The cut is looked for from the end of the chunk's last reply: only the replies it
        walks back through are split into documents (in a thread, with the keys decoded).
        """
        carry = _Carry(self.group.key)
        async with aclosing(reply_groups(replies, chunk_bytes)) as groups:
            async for held in groups:
                if whole := await asyncio.to_thread(carry.take, held):
                    yield whole
        if carry.pending:
            yield carry.rest()

    def fold(self, raw: bytes) -> tuple[FoldedBatch, int]:
        """A chunk of whole runs folded, and how many source documents it held."""
        docs = self.schema.decode(raw)
        if len(docs) == 0:
            return FoldedBatch({name: pa.nulls(0, kind) for name, kind in _EMPTY.items()}, {}), 0
        key = self.group.key
        new_run = _new_runs(docs, key)
        run_of = np.cumsum(new_run) - 1
        starts = np.flatnonzero(new_run)
        ends = np.append(starts[1:] - 1, len(docs) - 1)
        fold = self.group.fold
        assert isinstance(fold, UserEntries)  # noqa: S101 (run_fold checked it)
        # A run is folded by the row rule when an entry's key, date or locale is suspect; an
        # entry suspect only in its markets has them counted by the rule's own reading.
        odd = docs.suspect_fields
        by_rule_docs = odd[key] | odd["createdAt"] | odd["locale"]
        by_rule_runs = sorted(set(run_of[sorted(by_rule_docs)].tolist()))
        by_rule: dict[int, Doc] = {}
        for run in by_rule_runs:
            first, last = int(starts[run]), int(ends[run])
            entries = [docs.doc(index) for index in range(first, last + 1)]
            by_rule[run] = fold(docs.doc(last).get(key), entries)
        # `markets_of_entry` reads the additional ids through `as_list` (a lone id is a list
        # of one in the column).
        odd_markets = frozenset().union(*map(docs.list_suspect, fold.market_reads))
        columns = _user_runs(docs, run_of, starts, fold, odd_markets - by_rule_docs)
        run_keys = docs.columns[key].take(pa.array(ends))
        if by_rule_runs:  # their keys may be of any type: the row rule's documents hold them
            typed = np.ones(len(starts), dtype=bool)
            typed[by_rule_runs] = False
            run_keys = pc.if_else(pa.array(typed), run_keys, pa.scalar(None, run_keys.type))
        columns["userId"] = columns["_id"] = run_keys
        return FoldedBatch(columns, by_rule), len(docs)


def _new_runs(docs: TypedBatch, key: str) -> Flags:
    """Whether each document starts a run: its key `!=` the one before it (exporters.rows)."""
    count = len(docs)
    odd = docs.suspect_fields[key]
    if not odd:
        # Strings and None (missing or null) only: Python's `!=` is "not the same string, or
        # not both None".
        keys = docs.columns[key]
        before, after = keys.slice(0, count - 1), keys.slice(1)
        same = pc.or_(
            pc.fill_null(pc.equal(after, before), False),
            pc.and_(pc.is_null(after), pc.is_null(before)),
        )
        changed: Flags = pc.invert(same).to_numpy(zero_copy_only=False)
        return np.concatenate([[True], changed])
    values = pl.Series(pl.from_arrow(docs.columns[key])).to_list()
    for index in odd:
        values[index] = docs.doc(index).get(key)  # as the driver decodes it, hostile or not
    # The row engine's test, operands in its order: `key != previous key`.
    return np.array([True, *map(bool, map(operator.ne, values[1:], values[:-1]))], dtype=bool)


def run_fold(group: GroupConsecutive, fields: Mapping[str, FieldType]) -> RunFold | None:
    """The columnar form of a fold, given the source's typed fields; None when it has none."""
    if not isinstance(group.fold, UserEntries) or "." in group.key:
        return None
    wanted = (group.key, *group.fold.reads)
    if any(name not in fields for name in wanted):
        return None
    return RunFold(group, BatchSchema({name: fields[name] for name in wanted}))


def _user_runs(
    docs: TypedBatch, run_of: Ints, starts: Ints, fold: UserEntries, odd_markets: frozenset[int]
) -> dict[str, pa.Array]:
    """UserEntries' fields of each run from typed entry columns (exporters.folds states the
    rules); the market ids of entries in `odd_markets` are read by the rule from the decoded
    entries. A run with another suspect entry gets values here that its row-rule document
    replaces. With numpy and pyarrow's kernels, which run on the calling thread: polars'
    sorts and group-bys cost as much again in its pool's threads, for chunks this small.
    """
    dates = pc.fill_null(pc.cast(docs.columns["createdAt"], pa.int64()), _NO_DATE).to_numpy()
    # Python's datetimes order as their milliseconds do: a run's first date is its least.
    first = np.minimum.reduceat(dates, starts)
    return {
        "marketCount": pa.array(_market_counts(docs, run_of, len(starts), fold, odd_markets)),
        "firstEntryAt": pa.array(first, mask=first == _NO_DATE).cast(pa.timestamp("ms")),
        "locale": _first_locales(docs.columns["locale"], run_of, dates, len(starts)),
    }


def _market_counts(
    docs: TypedBatch, run_of: Ints, runs: int, fold: UserEntries, odd_markets: frozenset[int]
) -> Ints:
    """Each run's distinct non-empty market ids, primary and additional alike."""
    more = docs.columns["additionalMarketIds"]
    primary = docs.columns["marketId"]
    # (Of one string type whichever the decoder builds, string or large_string.)
    ids = pa.concat_arrays([primary, pc.list_flatten(more).cast(primary.type)])
    owners = np.concatenate([np.arange(len(docs)), pc.list_parent_indices(more).to_numpy()])
    # A null id (missing, or a null item) never counts, nor does "".
    counted: Flags = pc.fill_null(pc.not_equal(ids, ""), False).to_numpy(zero_copy_only=False)
    extra_runs: list[int] = []
    extra_ids: list[str] = []
    if odd_markets:
        odd = np.array(sorted(odd_markets))
        is_odd = np.zeros(len(docs), dtype=bool)
        is_odd[odd] = True
        counted &= ~is_odd[owners]
        for run, index in zip(run_of[odd].tolist(), odd.tolist(), strict=True):
            found = fold.markets_of_entry(docs.doc(index))
            extra_runs += [run] * len(found)
            extra_ids += found
    id_runs = np.concatenate([run_of[owners[counted]], np.array(extra_runs, dtype=np.int64)])
    kept = pa.concat_arrays([ids.filter(pa.array(counted)), pa.array(extra_ids, ids.type)])
    codes = pc.dictionary_encode(kept).indices.to_numpy().astype(np.int64)
    width = int(codes.max()) + 1 if len(codes) else 1
    # Each (run, id) once: sorted, then the first of equal neighbours (np.unique hashes them,
    # several times slower here).
    pairs = np.sort(id_runs * width + codes)
    distinct = pairs[_firsts(pairs)]
    counts: Ints = np.bincount(distinct // width, minlength=runs).astype(np.int64)
    return counts


def _first_locales(locales: pa.Array, run_of: Ints, dates: Ints, runs: int) -> pa.Array:
    """Each run's first truthy locale by time: dated entries by (time, position), then the
    undated ones (their date is _NO_DATE) by position; that is, the first by position of
    the run's candidates at their least date (no sort: they come in run order)."""
    truthy: Flags = pc.fill_null(pc.not_equal(locales, ""), False).to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(truthy)
    chosen = np.full(runs, -1, dtype=np.int64)
    if len(candidates):
        their_runs = run_of[candidates]
        their_dates = dates[candidates]
        begins_run = _firsts(their_runs)
        segment = np.cumsum(begins_run) - 1
        least = np.minimum.reduceat(their_dates, np.flatnonzero(begins_run))
        at_least = np.flatnonzero(their_dates == least[segment])
        picked = at_least[_firsts(segment[at_least])]
        chosen[their_runs[picked]] = candidates[picked]
    return pc.take(locales, pa.array(chosen, mask=chosen < 0))


def _firsts(values: Ints) -> Flags:
    """Whether each value differs from the one before it (the first always does)."""
    first = np.ones(len(values), dtype=bool)
    first[1:] = values[1:] != values[:-1]
    return first


class FoldedBatch:
    """The folded documents of a chunk, read by the engine as it reads a TypedBatch."""

    def __init__(self, columns: Mapping[str, pa.Array], by_rule: Mapping[int, Doc]) -> None:
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

    @property
    def cell_suspect_fields(self) -> Mapping[str, frozenset[int]]:
        return self.suspect_fields

    def __len__(self) -> int:
        return self._rows

    def doc(self, index: int) -> Doc:
        """Folded document `index` as the row engine's fold returns it."""
        found = self._by_rule.get(index)
        if found is not None:
            return found
        user_id = self._columns["userId"][index].as_py()
        millis = pc.cast(self._columns["firstEntryAt"], pa.int64())[index].as_py()
        return {
            "_id": user_id,
            "userId": user_id,
            "marketCount": self._columns["marketCount"][index].as_py(),
            "firstEntryAt": None if millis is None else _EPOCH + dt.timedelta(milliseconds=millis),
            "locale": self._columns["locale"][index].as_py(),
        }

    def values(self, dotted: str) -> list[Any]:
        """Python values of a STR field; row-rule documents read as they are."""
        # polars builds the Python objects several times faster than Array.to_pylist.
        values: list[Any] = pl.Series(pl.from_arrow(self._columns[dotted])).to_list()
        parts = dotted.split(".")
        for index, doc in self._by_rule.items():
            values[index] = read_path(doc, parts)
        return values

    def formatted(self, dotted: str) -> pl.Series:
        """The field's cells (null for ''); rows of row-rule documents are to be replaced."""
        return format_column(self._columns[dotted], FOLDED_FIELDS[dotted])


def _new_run(key: Any, previous: Any) -> bool:
    """The row engine's test of a run's end (exporters.rows), operands in its order."""
    return bool(key != previous)


class _Carry:
    """The run the replies so far ended with, held (as document bytes) until one ends it."""

    def __init__(self, key: str) -> None:
        self._key = key
        self.pending: list[bytes] = []
        self._last_key: Any = None  # the key of the last document held

    def take(self, replies: list[bytes]) -> bytes:
        """The bytes of the whole runs these replies complete (with those held before)."""
        backwards = self._backwards(replies)
        last = next(backwards, None)
        if last is None:
            return b""  # no documents
        later_key = last_key = self._key_at(replies, last)
        later = last
        cut = None  # where the last run starts: (reply, byte offset)
        for place in backwards:
            key = self._key_at(replies, place)
            if _new_run(later_key, key):
                cut = later[:2]
                break
            later_key, later = key, place
        if cut is None:  # one run throughout: it may go on from the one held
            if self.pending and not _new_run(later_key, self._last_key):
                self.pending += replies
                self._last_key = last_key
                return b""
            cut = later[:2]
        at, offset = cut
        whole = b"".join([*self.pending, *replies[:at], replies[at][:offset]])
        self.pending = [replies[at][offset:], *replies[at + 1 :]]
        self._last_key = last_key
        return whole

    def rest(self) -> bytes:
        rest = b"".join(self.pending)
        self.pending = []
        return rest

    @staticmethod
    def _backwards(replies: list[bytes]) -> Iterator[tuple[int, int, int]]:
        """(reply, start, end) of each document, the last first; a reply is split into
        documents only when the walk reaches it."""
        for at in range(len(replies) - 1, -1, -1):
            offsets = document_offsets(replies[at])
            for index in range(len(offsets) - 2, -1, -1):
                yield at, offsets[index], offsets[index + 1]

    def _key_at(self, replies: list[bytes], place: tuple[int, int, int]) -> Any:
        # Decoded as the driver decodes it: equality of keys is that of the row engine's.
        at, start, end = place
        return bson.decode(replies[at][start:end], DRIVER_CODEC_OPTIONS).get(self._key)
