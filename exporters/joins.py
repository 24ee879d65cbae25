"""Joins and expansions shared by the specs (users, markets, entries, promoters, codes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.deps import Doc
from exporters.spec import Join, Row, RowTest

USER_FIELDS = {
    "email": 1,
    "firstName": 1,
    "lastName": 1,
    "phone": 1,
    "postalCode": 1,
    "countryCode": 1,
    "locale": 1,
}

USER = Join(
    name="user",
    collection="users",
    key=lambda row: row["doc"].get("userId"),
    key_path="doc.userId",
    projection=USER_FIELDS,
    required=True,
)
"""The row's user; a row whose user no longer exists is skipped (SPEC §3 row rules)."""

ASSIGNED_USER = Join(
    name="user",
    collection="users",
    key=lambda row: row["doc"].get("assignedUserId"),
    key_path="doc.assignedUserId",
    projection=USER_FIELDS,
    required=True,
)
"""A code's assigned user (codeAssignments: only assigned codes are read)."""

ASSIGNED_USER_IF_ANY = Join(
    name="user",
    collection="users",
    key=lambda row: row["doc"].get("assignedUserId"),
    key_path="doc.assignedUserId",
    projection=USER_FIELDS,
    required_if_set=True,
)
"""A code's assigned user when it has one: unassigned codes keep empty user columns,
codes assigned to a user who no longer exists are skipped."""

MARKET = Join(
    name="market",
    collection="markets",
    key=lambda row: row.get("marketId"),
    key_path="marketId",
    cached=True,
)
"""The market named by the row's `marketId`; a missing market leaves empty columns."""

ENTRY_OF_RECORD = Join(
    name="entry",
    collection="entries",
    key=lambda row: row["doc"].get("entryId"),
    key_path="doc.entryId",
    projection={"optIns": 1, "locale": 1},
)
"""The entry a scoring record belongs to (opt-ins, locale)."""

PROMOTER = Join(
    name="promoter",
    collection="promoters",
    key=lambda row: row.get("promoterId"),
    key_path="promoterId",
    cached=True,
)


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Earliest:
    """A join's `choose`: of several documents, the one whose `date` is earliest (documents
    without a date last), then the least `str(_id)`; the first found of equal ones.

    Declared rather than a plain function, so that the columnar engine can order the same
    documents by its typed columns.
    """

    date: str

    def order(self, doc: Doc) -> tuple[dt.datetime, str]:
        assigned = doc.get(self.date)
        if not isinstance(assigned, dt.datetime):
            return (_NEVER, str(doc["_id"]))
        if assigned.tzinfo is None:
            assigned = assigned.replace(tzinfo=dt.UTC)
        return (assigned, str(doc["_id"]))

    def __call__(self, docs: list[Doc]) -> Doc:
        return min(docs, key=self.order)


earliest_assigned = Earliest("assignedAt")
"""Of several codes, the one assigned first (codes without a date last, then by id)."""


PRESALE_CODE = Join(
    name="code",
    collection="codes",
    key=lambda row: row["doc"].get("entryId"),
    key_path="doc.entryId",
    field="assignedEntryId",
    projection={"code": 1, "assignedAt": 1, "assignedEntryId": 1},
    choose=earliest_assigned,
)
"""The code assigned to the scoring record's entry (earliest `assignedAt` if several)."""


def as_list(value: Any) -> list[Any]:
    """A list field as a list: a lone value counts as one item, anything else as none."""
    if isinstance(value, list | tuple):
        return list(value)
    return [] if value is None or isinstance(value, dict) else [value]


def markets_of(primary: Any, additional: Any) -> list[Any]:
    """An entry's markets: the primary first, then each distinct additional one."""
    markets = [primary]
    for market_id in as_list(additional):
        # A list, not a set: a hostile id may be a document or a list, which cannot be hashed.
        if market_id is None or market_id in markets:
            continue
        markets.append(market_id)
    return markets


class EntryMarkets:
    """The expansion to one row per market of an entry (`marketId`, `isPrimaryMarket`).

    `reads` names the entry fields it depends on, so that the columnar engine can compute the
    same markets with `markets_of` from its columns.
    """

    reads = ("marketId", "additionalMarketIds")

    def __call__(self, row: Row) -> Iterable[Row]:
        entry = row["doc"]
        markets = markets_of(entry.get("marketId"), entry.get("additionalMarketIds"))
        for index, market_id in enumerate(markets):
            yield {**row, "marketId": market_id, "isPrimaryMarket": index == 0}


entry_markets = EntryMarkets()


class EntryPromoters:
    """The expansion to one row per distinct promoter the entry opted in to (`promoterId`).

    `reads` names the entry field it depends on and `adds` the row value it sets, so that the
    columnar engine can compute the same rows from its columns.
    """

    reads = ("optIns.promoterIds",)
    adds = "promoterId"

    def __call__(self, row: Row) -> Iterable[Row]:
        opt_ins: Any = row["doc"].get("optIns")
        if not isinstance(opt_ins, dict):
            return
        seen: set[str] = set()
        for promoter_id in as_list(opt_ins.get("promoterIds")):
            if isinstance(promoter_id, str) and promoter_id and promoter_id not in seen:
                seen.add(promoter_id)
                yield {**row, "promoterId": promoter_id}


entry_promoters = EntryPromoters()


def _any_true(*values: Any) -> bool:
    return any(value is True for value in values)


def opted_in(*flags: str, of: str = "entry") -> RowTest:
    """A row filter: the document `of` (a join, or "doc") has any of these opt-ins set to true."""
    return RowTest(tuple(f"{of}.optIns.{flag}" for flag in flags), _any_true)
