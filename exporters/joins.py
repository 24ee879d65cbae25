"""Joins and expansions shared by the specs (users, markets, entries, promoters, codes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from core.deps import Doc
from exporters.spec import Join, Row

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
    projection=USER_FIELDS,
    required=True,
)
"""The row's user; a row whose user no longer exists is skipped (SPEC §3 row rules)."""

ASSIGNED_USER = Join(
    name="user",
    collection="users",
    key=lambda row: row["doc"].get("assignedUserId"),
    projection=USER_FIELDS,
    required=True,
)
"""A code's assigned user (codeAssignments: only assigned codes are read)."""

ASSIGNED_USER_IF_ANY = Join(
    name="user",
    collection="users",
    key=lambda row: row["doc"].get("assignedUserId"),
    projection=USER_FIELDS,
    required_if_set=True,
)
"""A code's assigned user when it has one: unassigned codes keep empty user columns,
codes assigned to a user who no longer exists are skipped."""

MARKET = Join(
    name="market",
    collection="markets",
    key=lambda row: row.get("marketId"),
    cached=True,
)
"""The market named by the row's `marketId`; a missing market leaves empty columns."""

ENTRY_OF_RECORD = Join(
    name="entry",
    collection="entries",
    key=lambda row: row["doc"].get("entryId"),
    projection={"optIns": 1, "locale": 1},
)
"""The entry a scoring record belongs to (opt-ins, locale)."""

PROMOTER = Join(
    name="promoter",
    collection="promoters",
    key=lambda row: row.get("promoterId"),
    cached=True,
)


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def _assigned_order(code: Doc) -> tuple[dt.datetime, str]:
    assigned = code.get("assignedAt")
    if not isinstance(assigned, dt.datetime):
        return (_NEVER, str(code["_id"]))
    if assigned.tzinfo is None:
        assigned = assigned.replace(tzinfo=dt.UTC)
    return (assigned, str(code["_id"]))


def earliest_assigned(codes: list[Doc]) -> Doc:
    """Of several codes, the one assigned first (codes without a date last, then by id)."""
    return min(codes, key=_assigned_order)


PRESALE_CODE = Join(
    name="code",
    collection="codes",
    key=lambda row: row["doc"].get("entryId"),
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


def entry_markets(row: Row) -> Iterable[Row]:
    """One row per market of an entry: the primary first, then each distinct additional one."""
    entry = row["doc"]
    primary = entry.get("marketId")
    yield {**row, "marketId": primary, "isPrimaryMarket": True}
    seen = {primary}
    for market_id in as_list(entry.get("additionalMarketIds")):
        if market_id is None or market_id in seen:
            continue
        seen.add(market_id)
        yield {**row, "marketId": market_id, "isPrimaryMarket": False}


def entry_promoters(row: Row) -> Iterable[Row]:
    """One row per distinct promoter the entry opted in to."""
    opt_ins: Any = row["doc"].get("optIns")
    if not isinstance(opt_ins, dict):
        return
    seen: set[str] = set()
    for promoter_id in as_list(opt_ins.get("promoterIds")):
        if isinstance(promoter_id, str) and promoter_id and promoter_id not in seen:
            seen.add(promoter_id)
            yield {**row, "promoterId": promoter_id}


def entry_locale(row: Row) -> object:
    """The entry's locale, else the user's, as stored (SPEC §3 row rules)."""
    entry = row.get("entry") if "entry" in row else row["doc"]
    return ((entry or {}).get("locale")) or (row.get("user") or {}).get("locale")


def opted_in(*flags: str) -> Any:
    """A row filter: the row's entry (or the entry itself) has any of these opt-ins."""

    def check(row: Row) -> bool:
        entry = row.get("entry") if "entry" in row else row["doc"]
        opt_ins = (entry or {}).get("optIns")
        return isinstance(opt_ins, dict) and any(opt_ins.get(flag) is True for flag in flags)

    return check
