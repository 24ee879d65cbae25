"""The local stack's patched FerretDB: look-ups use indexes and give MongoDB's answers.

Runs against the stack's FerretDB process over the wire protocol (pymongo). The stack runs
FerretDB with the patch set's verification on, so every document read here is also decoded,
projected and filtered by FerretDB's own code. Expected results are computed in Python from
the documents inserted, following MongoDB's matching rules (a field equal to a value, or an
array holding it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, MongoClient
from pymongo.database import Database

from devstack.stack import LocalStack

Doc = dict[str, Any]

# Strings that a stored JSON form could get wrong: escapes, quotes, unicode, control chars.
HOSTILE = (
    'quote "in" it',
    "back\\slash",
    "line\nbreak\r\n",
    "tab\tand\x01control",
    "Zoë 🎤 ünïcode",
    "<html>&amp;</html>",
    "",
    "a" * 300,
)


HEX = "65f1c0ffee00000000000001"


def _documents() -> list[Doc]:
    docs: list[Doc] = []
    for i, text in enumerate(HOSTILE):
        docs.append(
            {
                "_id": f"id-{text}",
                "campaignId": text,
                "entryId": f"e{i}",
                "n": i,
                "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
                "nested": {"x": [text, i, None, {"y": -0.0}]},
            }
        )
    docs += [
        # MongoDB matches {campaignId: "c"} against an array holding "c".
        {"_id": "array-holding", "campaignId": ["other", "c"], "entryId": ["e1", "e-x"]},
        {"_id": "array-without", "campaignId": ["other"], "entryId": []},
        {"_id": "number", "campaignId": 5, "entryId": 1},
        {"_id": "null", "campaignId": None, "entryId": None},
        {"_id": "missing"},
        {"_id": "plain", "campaignId": "c", "entryId": "e1", "empty": {}, "list": []},
    ]
    return docs


def _matches(value: Any, wanted: set[Any]) -> bool:
    if isinstance(value, list):
        return any(item in wanted for item in value if not isinstance(item, list))
    return value in wanted


def _expected(docs: list[Doc], field: str, wanted: set[Any]) -> set[str]:
    return {d["_id"] for d in docs if field in d and _matches(d[field], wanted)}


@pytest.fixture(scope="module")
def database(stack: LocalStack) -> Iterator[Database[Doc]]:
    client: MongoClient[Doc] = MongoClient(stack.mongo_url, tz_aware=True)
    db = client[f"pushdown-{uuid.uuid4().hex[:8]}"]
    db.docs.insert_many(_documents())
    db.docs.create_index([("campaignId", ASCENDING)])
    db.docs.create_index([("entryId", ASCENDING)])
    yield db
    client.drop_database(db.name)
    client.close()


@pytest.mark.parametrize("text", HOSTILE)
def test_equality_on_an_indexed_field_finds_what_mongodb_would(
    database: Database[Doc], text: str
) -> None:
    found = {d["_id"] for d in database.docs.find({"campaignId": text})}
    assert found == _expected(_documents(), "campaignId", {text})


def test_equality_includes_arrays_holding_the_value(database: Database[Doc]) -> None:
    found = {d["_id"] for d in database.docs.find({"campaignId": "c"})}
    assert found == {"plain", "array-holding"}


def test_in_on_id_and_on_an_indexed_field(database: Database[Doc]) -> None:
    ids = [f"id-{t}" for t in HOSTILE[::2]] + ["no-such-id", "plain"]
    found = {d["_id"] for d in database.docs.find({"_id": {"$in": ids}})}
    assert found == {d["_id"] for d in _documents() if d["_id"] in ids}

    entry_ids = {"e1", "e3", "e-x", "nope"}
    found = {d["_id"] for d in database.docs.find({"entryId": {"$in": sorted(entry_ids)}})}
    assert found == _expected(_documents(), "entryId", entry_ids)


def test_a_string_id_never_matches_an_objectid_of_the_same_hex(database: Database[Doc]) -> None:
    # FerretDB stores an ObjectID as its hex string (so the two cannot share a collection);
    # a look-up by the string must still not return the ObjectID's document.
    database.oids.insert_one({"_id": ObjectId(HEX), "kind": "objectid"})
    assert list(database.oids.find({"_id": HEX})) == []
    assert list(database.oids.find({"_id": {"$in": [HEX, "x"]}})) == []
    assert [d["kind"] for d in database.oids.find({"_id": ObjectId(HEX)})] == ["objectid"]
    mixed = database.oids.find({"_id": {"$in": [HEX, ObjectId(HEX)]}})
    assert [d["kind"] for d in mixed] == ["objectid"]


def test_documents_come_back_whole_and_projected(database: Database[Doc]) -> None:
    by_id = {d["_id"]: d for d in _documents()}
    found = list(database.docs.find({"_id": {"$in": sorted(by_id)}}))
    assert len(found) == len(by_id)
    for doc in found:
        assert doc == by_id[doc["_id"]]
    projected = list(database.docs.find({"campaignId": HOSTILE[4]}, {"n": 1, "when": 1}))
    assert projected == [
        {"_id": f"id-{HOSTILE[4]}", "n": 4, "when": by_id[f"id-{HOSTILE[4]}"]["when"]}
    ]
    without_id = database.docs.find_one({"_id": "plain"}, {"_id": 0, "entryId": 1})
    assert without_id == {"entryId": "e1"}


def test_counts_match(database: Database[Doc]) -> None:
    reply = database.command("count", "docs", query={"campaignId": "c"})
    assert reply["n"] == len(_expected(_documents(), "campaignId", {"c"}))


def _plan(database: Database[Doc], query: Doc) -> str:
    reply = database.command("explain", {"find": "docs", "filter": query})
    return str(reply["queryPlanner"])


@pytest.mark.parametrize(
    "query",
    [
        {"_id": "plain"},
        {"_id": {"$in": ["plain", "missing"]}},
        {"campaignId": "c"},
        {"entryId": {"$in": ["e1", "e2"]}},
        {"campaignId": "c", "optIns.sms": True, "verified": True},
    ],
)
def test_lookups_are_index_searches_not_scans(database: Database[Doc], query: Doc) -> None:
    """The cost of a look-up grows with what it finds, not with the collection."""
    plan = _plan(database, query)
    assert "USING INDEX" in plan, plan
    assert "SCAN" not in plan, plan


def test_a_filter_on_an_unindexed_field_still_answers(database: Database[Doc]) -> None:
    found = {d["_id"] for d in database.docs.find({"n": {"$gte": 6}})}
    assert found == {d["_id"] for d in _documents() if isinstance(d.get("n"), int) and d["n"] >= 6}
