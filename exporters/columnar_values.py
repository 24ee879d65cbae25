"""A declared rule (`Computed`) over whole columns of values, once per distinct values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from exporters.formatting import format_cell

_UNSEEN = object()


def computed_once(fn: Callable[..., Any], columns: Sequence[list[Any]]) -> list[Any]:
    """`fn` of each row's values (one list per argument), called once per distinct tuple of
    strings and Nones: a chunk's rows share a few countries and locales, and a rule such as
    a file-safe locale costs microseconds a call.

    Only tuples of strings and Nones are remembered: they equal no tuple holding another type
    (where 1 == True == 1.0 would share a result that `fn` may tell apart); any other row,
    a hostile document's, is computed on its own.
    """
    rows = list(zip(*columns, strict=True))
    try:
        distinct = dict.fromkeys(rows)  # the distinct tuples in C, when all can be hashed
    except TypeError:  # a document or list among the values
        return _row_by_row(fn, rows)
    known = {row: fn(*row) for row in distinct if _plain(row)}
    if len(known) == len(distinct):
        return list(map(known.__getitem__, rows))
    return [
        found if (found := known.get(row, _UNSEEN)) is not _UNSEEN else fn(*row) for row in rows
    ]


def _row_by_row(fn: Callable[..., Any], rows: list[tuple[Any, ...]]) -> list[Any]:
    known: dict[tuple[Any, ...], Any] = {}
    out = []
    for row in rows:
        if _plain(row):
            found = known.get(row, _UNSEEN)
            if found is _UNSEEN:
                found = known[row] = fn(*row)
            out.append(found)
        else:
            out.append(fn(*row))
    return out


def _plain(row: tuple[Any, ...]) -> bool:
    return all(value is None or type(value) is str for value in row)


@dataclass(frozen=True)
class RuleValues:
    """A rule's value for each row: its distinct results, and each row's index into them."""

    results: list[Any]
    index: pl.Series  # UInt32, one per row

    @classmethod
    def per_row(cls, results: list[Any]) -> RuleValues:
        """One result per row, in row order."""
        return cls(results, pl.int_range(len(results), dtype=pl.UInt32, eager=True))

    def strings(self) -> pl.Series:
        """The rows' results as a String series (a result that is not a str is refused)."""
        return pl.Series(self.results, dtype=pl.String).gather(self.index)

    def cells(self) -> pl.Series:
        """The rows' cells, as format_cell writes each result."""
        cells = [v if type(v) is str else format_cell(v) for v in self.results]
        return pl.Series(cells, dtype=pl.String).gather(self.index)


def computed_distinct(
    fn: Callable[..., Any],
    columns: Sequence[pl.Series],
    odd: pl.Series | None,
    odd_values: Callable[[int], tuple[Any, ...]],
) -> RuleValues:
    """`fn` of each row's values, given as String columns (null for None), called once per
    distinct tuple, the distinct tuples found by polars: only they become Python values.

    The rows flagged `odd` (their values are not the columns': a document suspect in a field
    the rule reads) are each computed on their own, over `odd_values(row)`, the values the
    row rules read. A String column holds strs and Nones only, which are equal in Python
    exactly when they are in polars.
    """
    frame = pl.DataFrame({f"v{at}": column for at, column in enumerate(columns)})
    rows = frame.height
    odd_at: list[int] = []
    if odd is not None and odd.any():
        odd_at = odd.arg_true().to_list()
        clean_at = (~odd).arg_true()
        frame = frame.filter(~odd)
    # The dense rank of a row's tuple numbers the distinct tuples (a null apart from every
    # string); each one's first row, in order of appearance, gives its values.
    ids = frame.select(pl.struct(pl.all()).rank("dense").cast(pl.UInt32) - 1).to_series()
    firsts = ids.arg_unique()
    results: list[Any] = [None] * len(firsts)
    for number, values in zip(ids.gather(firsts).to_list(), frame[firsts].rows(), strict=True):
        results[number] = fn(*values)
    if not odd_at:
        return RuleValues(results, ids)
    odd_ids = pl.int_range(len(results), len(results) + len(odd_at), dtype=pl.UInt32, eager=True)
    index = pl.repeat(0, rows, dtype=pl.UInt32, eager=True)
    index = index.scatter(clean_at, ids).scatter(odd_at, odd_ids)
    results.extend(fn(*odd_values(row)) for row in odd_at)
    return RuleValues(results, index)
