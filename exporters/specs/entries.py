"""entries: one row per entry per market (primary, then each additional market)."""

from __future__ import annotations

from exporters.joins import MARKET, USER, entry_markets
from exporters.naming import campaign_file_name
from exporters.spec import Column, CsvFile, ExportSpec, Find, Row, col


def _entry_locale(row: Row) -> object:
    """The entry's locale, else the user's, as stored."""
    return row["doc"].get("locale") or row["user"].get("locale")


ENTRY_COLUMNS: tuple[Column, ...] = (
    col("entryId", "doc._id"),
    col("userId", "doc.userId"),
    col("email", "user.email"),
    col("firstName", "user.firstName"),
    col("lastName", "user.lastName"),
    col("phone", "user.phone"),
    col("postalCode", "user.postalCode"),
    col("countryCode", "user.countryCode"),
    col("locale", _entry_locale),
    col("marketId", "marketId"),
    col("marketName", "market.name"),
    col("marketCity", "market.city"),
    col("marketState", "market.state"),
    col("eventDate", "market.eventDate"),
    col("isPrimaryMarket", "isPrimaryMarket"),
    col("verified", "doc.verified"),
    col("artistOptIn", "doc.optIns.artist"),
    col("smsOptIn", "doc.optIns.sms"),
    col("livenationOptIn", "doc.optIns.livenation"),
    col("createdAt", "doc.createdAt"),
    col("campaignId", "campaign._id"),
    col("campaignName", "campaign.name"),
)


SPEC = ExportSpec(
    name="entries",
    description="one row per entry x market, additional markets included",
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id}),
    expand=entry_markets,
    joins=(USER, MARKET),
    columns=ENTRY_COLUMNS,
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "entries", "csv")),
    requires_markets=True,
)
