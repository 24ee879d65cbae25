"""A declared rule (`Computed`) over whole columns of values, once per distinct values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
