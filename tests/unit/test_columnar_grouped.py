"""The columnar engine's parts for grouped layouts, each against the row rule it stands for.

(The whole types are compared byte for byte with the row engine in
test_columnar_equivalence.py; these tests name the part that breaks.)
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Any

import bson
import polars as pl

from exporters.bson_columns import BatchSchema, FieldType
from exporters.cell_frames import GroupedCells, member_pieces
from exporters.columnar import ColumnarPlan, plan_or_reason
from exporters.columnar_joins import chosen_index
from exporters.columnar_rows import promoter_rows
from exporters.columnar_values import computed_distinct, computed_once
from exporters.formatting import format_cell
from exporters.joins import earliest_assigned, entry_promoters
from exporters.registry import get_spec
from exporters.spec import ZipOfCsv

UTC = dt.UTC


def _cells(groups: list[str]) -> GroupedCells:
    frame = pl.DataFrame({"c0": [f"r{i}" for i in range(len(groups))]})
    return GroupedCells(frame, pl.Series(groups, dtype=pl.String))


def test_pieces_are_cut_at_the_split_and_the_limit_after_the_rows_written_before() -> None:
    # "a" already holds 3 rows: its parts of 4 rows go on at row 4 of part 1, and a limit of
    # 6 rows keeps 3 more; "b" starts afresh.
    pieces = member_pieces(_cells(["a", "b", "a", "a", "b", "a", "a"]), {"a": 3}, split=4, limit=6)
    found = [(p.group, p.number, p.frame["c0"].to_list()) for p in pieces]
    assert found == [("a", 1, ["r0"]), ("b", 1, ["r1", "r4"]), ("a", 2, ["r2", "r3"])]


def test_pieces_without_split_or_limit_are_one_per_group_in_order_of_first_row() -> None:
    pieces = member_pieces(_cells(["b", "a", "b"]), {"b": 10}, split=0, limit=None)
    assert [(p.group, p.number, p.frame["c0"].to_list()) for p in pieces] == [
        ("b", 1, ["r0", "r2"]),
        ("a", 1, ["r1"]),
    ]


def test_a_computed_rule_runs_once_per_distinct_strings_and_never_mixes_types() -> None:
    calls: list[tuple[Any, ...]] = []

    def rule(*values: Any) -> str:
        calls.append(values)
        return repr(values)

    column: list[Any] = ["x", None, "x", 1, True, 1.0, "x", None]
    assert computed_once(rule, [column]) == [repr((v,)) for v in column]
    assert calls.count(("x",)) == 1 and calls.count((None,)) == 1  # noqa: PT018
    # A document among the values cannot be hashed: the rows are still computed.
    column = [{"a": 1}, "x", "x"]
    assert computed_once(rule, [column]) == [repr((v,)) for v in column]


def test_a_rule_over_string_columns_is_the_rule_of_each_row_once_per_distinct_tuple() -> None:
    # computed_distinct finds the distinct tuples in polars: None and "" (and "US" and "us")
    # must stay apart, and the flagged rows must get the rule of their own values.
    texts = ["US", "us", "", " ", None, "en_US", "Zoë 🎤"]
    odd_values: list[Any] = [7, True, ["US"], {"a": 1}, None, "us"]
    calls: list[tuple[Any, ...]] = []

    def rule(*values: Any) -> Any:
        calls.append(values)
        return repr(values) if values[1] != " " else len(values)  # some not a str

    for seed in range(30):
        rng = random.Random(seed)
        rows = rng.randrange(0, 40)
        a = [rng.choice(texts) for _ in range(rows)]
        b = [rng.choice(texts) for _ in range(rows)]
        odd_rows = {r for r in range(rows) if rng.random() < 0.2} if seed % 3 else set()
        own = {r: (rng.choice(odd_values), rng.choice(texts)) for r in odd_rows}
        calls.clear()
        odd = pl.Series([r in odd_rows for r in range(rows)], dtype=pl.Boolean)
        found = computed_distinct(
            rule,
            [pl.Series(a, dtype=pl.String), pl.Series(b, dtype=pl.String)],
            odd if odd_rows or seed % 2 else None,  # an odd series without a flag, or none
            own.__getitem__,
        )
        expected = [rule(*own[r]) if r in odd_rows else rule(a[r], b[r]) for r in range(rows)]
        assert found.cells().to_list() == [format_cell(v) for v in expected], seed
        clean = [(a[r], b[r]) for r in range(rows) if r not in odd_rows]
        distinct = list(dict.fromkeys(clean))
        # Each distinct tuple once, in order of its first row, then each flagged row.
        assert calls[: len(distinct) + len(odd_rows)] == distinct + [own[r] for r in sorted(own)]


def _random_code(rng: random.Random, number: int) -> dict[str, Any]:
    dates: list[Any] = [
        dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=rng.randrange(3)),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        None,
        "2026-01-01",
        0,
    ]
    ids: list[Any] = [f"k{number:03d}", f"K{rng.randrange(3)}", number, None]
    doc: dict[str, Any] = {"_id": rng.choice(ids[:2]) if rng.random() < 0.9 else rng.choice(ids)}
    doc["assignedEntryId"] = rng.choice(["e1", "e2", "e3", 7, ["e1"], None])
    if rng.random() < 0.9:
        doc["assignedAt"] = rng.choice(dates)
    doc["code"] = f"C{number}"
    return doc


def test_the_earliest_code_per_key_is_the_row_rules_choice() -> None:
    schema = BatchSchema(
        {
            "_id": FieldType.STR,
            "assignedEntryId": FieldType.STR,
            "assignedAt": FieldType.DATE,
            "code": FieldType.STR,
        }
    )
    for seed in range(40):
        rng = random.Random(seed)
        docs = [_random_code(rng, n) for n in range(rng.randrange(1, 30))]
        batch = schema.decode(b"".join(bson.encode(doc) for doc in docs))
        # The row engine: documents grouped by str(field) in the order found, then `choose`.
        groups: dict[str, list[int]] = {}
        for at in range(len(batch)):
            groups.setdefault(str(batch.doc(at).get("assignedEntryId")), []).append(at)
        expected = {}
        for key, ats in groups.items():
            chosen = earliest_assigned([batch.doc(at) for at in ats])
            expected[key] = next(at for at in ats if batch.doc(at) is chosen)
        assert chosen_index(batch, "assignedEntryId", earliest_assigned) == expected, seed


def test_promoter_rows_are_the_expansions_rows() -> None:
    opt_ins: list[Any] = [
        {"promoterIds": ["p1", "p2", "p1", ""]},
        {"promoterIds": "p3"},  # a lone id: suspect, expanded by the row rule
        {"promoterIds": ["p2", 5, "p4"]},  # an item of another type: likewise
        {"promoterIds": []},
        {},
        "not a document",
        None,
        {"promoterIds": ["p5"]},
    ]
    docs = [{"_id": f"e{i}", "optIns": value} for i, value in enumerate(opt_ins)]
    docs.append({"_id": "e-missing"})
    batch = BatchSchema({"optIns.promoterIds": FieldType.STR_LIST}).decode(
        b"".join(bson.encode(doc) for doc in docs)
    )
    expected = [
        (index, row["promoterId"])
        for index, doc in enumerate(docs)
        for row in entry_promoters({"doc": doc})
    ]
    row_doc, promoters = promoter_rows(batch)
    assert list(zip(row_doc, promoters, strict=True)) == expected
    assert batch.suspect  # the row rule's part was reached


def test_what_has_no_columnar_form_keeps_the_row_engine() -> None:
    spec = get_spec("reminderEmail")
    assert isinstance(spec.layout, ZipOfCsv)
    plain_group = replace(spec, layout=replace(spec.layout, group=lambda row: "g"))
    assert plan_or_reason(plain_group) == "layout ZipOfCsv grouped by a plain function"
    first_code = replace(spec, joins=(*spec.joins[:3], replace(spec.joins[3], choose=None)))
    assert plan_or_reason(first_code) == "join code: not by _id, and no columnar choice"
    market_by_name = replace(spec, joins=(spec.joins[0], replace(spec.joins[1], field="name")))
    assert plan_or_reason(market_by_name) == "join market: cached, by another field than _id"
    assert isinstance(plan_or_reason(spec), ColumnarPlan)
