"""The generated per-spec cells function computes exactly what the column rules say.

`reference_cells` (each column's reader, then format_cell) is the definition; rows are
generated at random, seeded, with every shape a path can meet: missing steps, None, lists,
non-document values where a document belongs, documents of the wrong kind, and hostile
scalars.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import OrderedDict
from typing import Any

import pytest

from exporters.cells import compile_cells, reference_cells
from exporters.registry import SPECS
from exporters.spec import Column, col

SCALARS: tuple[Any, ...] = (
    None,
    "",
    "plain",
    'quote " and, comma',
    "line\r\nbreak",
    "Zoë 🎤",
    0,
    -7,
    2**70,
    True,
    False,
    0.1,
    -0.0,
    1e-7,
    1e21,
    float("nan"),
    float("inf"),
    dt.datetime(2026, 5, 1, 17, 0, 0, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 5, 1, 17, 0, 0),
    dt.datetime(2026, 5, 1, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2026, 1, 2),
    ["a", 1, None],
)


NOT_DOCUMENTS: tuple[Any, ...] = (None, "text", 42, ["not", "a", "document"])


def _rows(columns: tuple[Column, ...], count: int, seed: int) -> list[dict[str, Any]]:
    """Rows along the columns' paths, each step sometimes missing or not a document."""
    rng = random.Random(seed)
    paths = [c.path for c in columns if c.path]
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {"doc": {}}
        for path in paths:
            if rng.random() < 0.1:
                continue  # the whole path is missing
            node = row
            for part in path[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    roll = rng.random()
                    if roll < 0.08:
                        node[part] = rng.choice(NOT_DOCUMENTS)
                        break
                    # A dict subclass takes the generated function's generic path.
                    child = OrderedDict() if roll < 0.16 else {}
                    node[part] = child
                node = child
            else:
                node[path[-1]] = rng.choice(SCALARS)
        rows.append(row)
    return rows


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_spec_gives_the_reference_cells(spec: Any) -> None:
    rows = _rows(spec.columns, 400, seed=len(spec.name))
    expected = _safe_reference(spec.columns, rows)
    assert compile_cells(spec.columns)(expected[0]) == expected[1]


def _safe_reference(
    columns: tuple[Column, ...], rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The rows the reference can read (function readers may refuse odd shapes) and cells."""
    readable = []
    for row in rows:
        try:
            reference_cells(columns, [row])
        except (AttributeError, TypeError, KeyError):
            continue
        readable.append(row)
    assert len(readable) >= len(rows) // 10, "the generator should produce readable rows"
    return readable, reference_cells(columns, readable)


def test_deep_paths_and_function_columns_together() -> None:
    columns = (
        col("a", "doc.optIns.artist"),
        col("b", "doc.optIns"),
        col("c", lambda row: row.get("x")),
        col("d", "x"),
        col("e", "doc._id"),
    )
    rows = _rows(columns, 2000, seed=7)
    assert compile_cells(columns)(rows) == reference_cells(columns, rows)


def test_a_value_that_is_not_a_document_ends_the_path() -> None:
    columns = (col("deep", "doc.optIns.artist"),)
    rows: list[dict[str, Any]] = [
        {"doc": {"optIns": "yes"}},
        {"doc": {"optIns": None}},
        {"doc": ["optIns"]},
        {"doc": {"optIns": {"artist": True}}},
        {"doc": OrderedDict(optIns={"artist": False})},
        {},
    ]
    assert compile_cells(columns)(rows) == [[""], [""], [""], ["true"], ["false"], [""]]
