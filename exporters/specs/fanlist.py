"""fanlist: one row per distinct user who entered the campaign."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.deps import Doc
from exporters.joins import USER, as_list
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find, GroupConsecutive, col


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def fold_user_entries(user_id: Any, entries: list[Doc]) -> Doc:
    """A user's entries as one document: distinct markets, first entry, its locale."""
    markets: set[str] = set()
    for entry in entries:
        for market_id in (entry.get("marketId"), *as_list(entry.get("additionalMarketIds"))):
            if isinstance(market_id, str) and market_id:
                markets.add(market_id)
    dated = sorted(
        (created, index) for index, e in enumerate(entries) if (created := _utc(e.get("createdAt")))
    )
    by_time = [entries[i] for _, i in dated] + [e for e in entries if not _utc(e.get("createdAt"))]
    locale = next((e["locale"] for e in by_time if e.get("locale")), None)
    return {
        "_id": user_id,
        "userId": user_id,
        "marketCount": len(markets),
        "firstEntryAt": dated[0][0] if dated else None,
        "locale": locale,
    }


SPEC = ExportSpec(
    name="fanlist",
    description="one row per distinct user who entered (marketCount, firstEntryAt)",
    # Sorted by user, so that a user's entries arrive together and one user is in memory.
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id}, sort=(("userId", 1),)),
    group=GroupConsecutive("userId", fold_user_entries),
    joins=(USER,),
    columns=(
        col("userId", "doc.userId"),
        col("email", "user.email"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("phone", "user.phone"),
        col("postalCode", "user.postalCode"),
        col("countryCode", "user.countryCode"),
        col("locale", lambda row: row["doc"].get("locale") or row["user"].get("locale")),
        col("marketCount", "doc.marketCount"),
        col("firstEntryAt", "doc.firstEntryAt"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "fanlist", "csv")),
)
