"""Joins and expansions shared by the specs (users, markets, per-market entry rows)."""

from __future__ import annotations

from collections.abc import Iterable

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

MARKET = Join(
    name="market",
    collection="markets",
    key=lambda row: row.get("marketId"),
    cached=True,
)
"""The market named by the row's `marketId`; a missing market leaves empty columns."""


def entry_markets(row: Row) -> Iterable[Row]:
    """One row per market of an entry: the primary first, then each distinct additional one."""
    entry = row["doc"]
    primary = entry.get("marketId")
    yield {**row, "marketId": primary, "isPrimaryMarket": True}
    seen = {primary}
    for market_id in entry.get("additionalMarketIds") or ():
        if market_id is None or market_id in seen:
            continue
        seen.add(market_id)
        yield {**row, "marketId": market_id, "isPrimaryMarket": False}
