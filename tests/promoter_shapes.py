"""Hostile shapes of an entry's `optIns.promoterIds`, shared by the tests of promoterOptIn's
pushed-down filter in process (tests/unit) and over the wire (tests/e2e)."""

from __future__ import annotations

import copy
from typing import Any

from bson import Int64

from exporters.joins import entry_promoters

# promoterIds values, by name; the entry's optIns is {"promoterIds": value}.
PROMOTER_IDS: dict[str, Any] = {
    "list": ["p1", "p2"],
    "lone-string": "p1",
    "lone-empty-string": "",
    "empty-list": [],
    "only-empty-string": [""],
    "empty-string-then-id": ["", "p2"],
    "duplicates": ["p1", "p1", "p2", "p1"],
    "ints": [1, 2],
    "lone-int": 5,
    "lone-long": Int64(7),
    "non-strings-then-id": [1, None, True, {"id": "p1"}, "p3"],
    "null": None,
    "nulls": [None],
    "document": {"0": "p1"},
    "empty-document": {},
    "bools": [True, False],
    # Arrays in arrays: as_list keeps the inner list whole, which is not a string.
    "nested": [["p1"]],
    "nested-then-id": [["p1"], "p2"],
    "id-then-empty-list": ["p1", []],
}
# optIns values other than a document holding promoterIds, by name.
OPT_INS: dict[str, Any] = {
    "opt-ins-null": None,
    "opt-ins-string": "p1",
    "opt-ins-list-of-ids": ["p1"],
    "opt-ins-list-of-documents": [{"promoterIds": ["p1"]}],
    "opt-ins-list-mixed": [{"promoterIds": []}, {"promoterIds": ["p2"]}],
    "opt-ins-without-promoter-ids": {"artist": True},
    "opt-ins-empty-document": {},
}
# Shapes FerretDB 1.24 refuses to store ("nested arrays are not supported").
NOT_STORABLE_ON_FERRETDB = frozenset({"nested", "nested-then-id", "id-then-empty-list"})


def hostile_entries(campaign_id: str, user_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """An entry per shape (`_id` its name after `prefix`), plus one without optIns at all."""
    opt_ins: dict[str, Any] = {name: {"promoterIds": ids} for name, ids in PROMOTER_IDS.items()}
    opt_ins |= OPT_INS
    entries = [
        {"_id": prefix + name, "campaignId": campaign_id, "userId": user_id, "optIns": value}
        for name, value in opt_ins.items()
    ]
    entries.append({"_id": f"{prefix}no-opt-ins", "campaignId": campaign_id, "userId": user_id})
    return copy.deepcopy(entries)


def gives_rows(entry: dict[str, Any]) -> bool:
    """Whether promoterOptIn's row rule (`entry_promoters`) makes any row of the entry."""
    return any(True for _ in entry_promoters({"doc": entry}))
