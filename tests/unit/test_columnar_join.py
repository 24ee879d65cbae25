"""A looked-up join's index: each row's position in the reply, by string _id only."""

from __future__ import annotations

from typing import Any

import bson

from exporters.bson_columns import BatchSchema, FieldType
from exporters.columnar import _indexed, _JoinPlan
from exporters.joins import USER

PLAN = _JoinPlan(USER, ("doc", "userId"), BatchSchema({"_id": FieldType.STR}))


def _reply(*docs: dict[str, Any]) -> list[bytes]:
    return [b"".join(bson.encode(doc) for doc in docs)]


def test_only_string_ids_are_found_and_the_others_never_match() -> None:
    reply = _reply({"_id": "a"}, {"_id": 5}, {"_id": "b"}, {"_id": None}, {})
    keys = ["b", 5, "a", "zz", None, "b"]
    assert _indexed(PLAN, reply, keys).index == [2, None, 0, None, None, 2]


def test_unhashable_ids_and_keys_never_match() -> None:
    reply = _reply({"_id": "a"}, {"_id": {"x": 1}}, {"_id": None}, {"_id": ["b"]})
    keys = ["a", None, {"x": 1}, ["b"], "b"]
    assert _indexed(PLAN, reply, keys).index == [0, None, None, None, None]
