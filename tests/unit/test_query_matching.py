"""The in-process stand-ins' query matching (devstack.query, used by tests.fakes and the
bench's replay) on promoterOptIn's pushed-down filter and MongoDB's array rules."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.query import matches, path_values
from exporters.registry import get_spec
from exporters.spec import ExportContext, NoParams
from tests.promoter_shapes import OPT_INS, PROMOTER_IDS, gives_rows, hostile_entries

ENTRIES = hostile_entries("c1", "u1")
ENTRY_IDS = [entry["_id"] for entry in ENTRIES]


def _query(campaign_id: str = "c1") -> dict[str, Any]:
    ctx = ExportContext(export_id="x", campaign={"_id": campaign_id}, markets={}, params=NoParams())
    return dict(get_spec("promoterOptIn").source.query(ctx))


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_every_entry_that_gives_a_row_passes_the_filter(entry: dict[str, Any]) -> None:
    if gives_rows(entry):
        assert matches(entry, _query())
    assert not matches(entry, _query("another-campaign"))


def test_the_shapes_include_rows_and_entries_left_out() -> None:
    with_rows = {entry["_id"] for entry in ENTRIES if gives_rows(entry)}
    assert with_rows >= {"list", "lone-string", "non-strings-then-id"}
    assert {name for name in OPT_INS if name in with_rows} == set()
    left_out = {entry["_id"] for entry in ENTRIES if not matches(entry, _query())}
    assert left_out & with_rows == set()
    assert {"empty-list", "no-opt-ins", "opt-ins-without-promoter-ids"} <= left_out
    assert set(PROMOTER_IDS) | set(OPT_INS) | {"no-opt-ins"} == set(ENTRY_IDS)


@pytest.mark.parametrize(
    ("name", "selected"),
    [
        ("empty-list", False),
        ("null", True),  # present, and not an empty array
        ("document", True),
        ("nested", True),  # [["p1"]] has one element
        ("opt-ins-null", False),
        ("opt-ins-string", False),
        ("opt-ins-list-of-ids", False),  # no documents in the array to look into
        ("opt-ins-list-of-documents", True),
        ("opt-ins-list-mixed", False),  # one value reached is [], so $not of $size 0 fails
        ("opt-ins-empty-document", False),
        ("no-opt-ins", False),
    ],
)
def test_mongodb_answers_for_arrays_and_missing_fields(name: str, selected: bool) -> None:
    (entry,) = (entry for entry in ENTRIES if entry["_id"] == name)
    assert matches(entry, _query()) is selected


def test_a_path_crosses_arrays_through_their_documents_and_positions() -> None:
    doc = {"a": [{"b": 1}, {"c": 2}, {"b": [3]}, [{"b": 4}], 5]}
    assert path_values(doc, "a.b") == [1, [3]]  # the array inside the array is not crossed
    assert path_values(doc, "a.1.c") == [2]
    assert path_values(doc, "a.x") == []
    assert path_values({"a": None}, "a.b") == []
    assert path_values({"a": {"b": None}}, "a.b") == [None]


def test_exists_size_and_not() -> None:
    assert matches({"a": []}, {"a": {"$size": 0}})
    assert not matches({"a": [[]]}, {"a": {"$size": 0}})
    assert matches({}, {"a": {"$not": {"$size": 0}}})
    assert matches({}, {"a": {"$exists": False}})
    assert not matches({"a": None}, {"a": {"$exists": False}})
    assert matches({"a": [{"b": 1}]}, {"a.b": {"$exists": True}})


def test_equality_in_and_ne_are_unchanged() -> None:
    doc = {"campaignId": "c1", "optIns": {"sms": True}}
    assert matches(doc, {"campaignId": "c1", "optIns.sms": True})
    assert matches(doc, {"campaignId": {"$in": ["c1", "c2"]}, "marketId": {"$ne": "m1"}})
    assert not matches(doc, {"campaignId": {"$ne": "c1"}})


def test_other_operators_are_refused() -> None:
    with pytest.raises(NotImplementedError, match=r"\$type"):
        matches({"a": "x"}, {"a": {"$type": "string"}})
