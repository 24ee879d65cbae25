"""The in-process stand-ins' query matching (devstack.query, used by tests.fakes and the
bench's replay) and MongoDB's array rules."""

from __future__ import annotations

import pytest

from devstack.query import matches, path_values


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
