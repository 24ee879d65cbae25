"""Column sets shared by several export types (SPEC §3 column lists)."""

from __future__ import annotations

from exporters.spec import Column, Either, col

ENTRY_COLUMNS: tuple[Column, ...] = (
    col("entryId", "doc._id"),
    col("userId", "doc.userId"),
    col("email", "user.email"),
    col("firstName", "user.firstName"),
    col("lastName", "user.lastName"),
    col("phone", "user.phone"),
    col("postalCode", "user.postalCode"),
    col("countryCode", "user.countryCode"),
    col("locale", Either("doc.locale", "user.locale")),
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
"""entries, verifiedEntries."""

SCORING_COLUMNS: tuple[Column, ...] = (
    col("userId", "doc.userId"),
    col("entryId", "doc.entryId"),
    col("email", "user.email"),
    col("marketId", "doc.marketId"),
    col("score", "doc.score"),
    col("rank", "doc.rank"),
    col("tier", "doc.tier"),
    col("verified", "doc.verified"),
    col("selected", "doc.selected"),
)
"""scoring, optInScoring, vfScoring."""

OPT_IN_COLUMNS: tuple[Column, ...] = (
    col("email", "user.email"),
    col("firstName", "user.firstName"),
    col("lastName", "user.lastName"),
    col("postalCode", "user.postalCode"),
    col("countryCode", "user.countryCode"),
    col("locale", Either("doc.locale", "user.locale")),
    col("optInAt", "doc.createdAt"),
)
"""artistOptIn, livenationOptIn: one row per opted-in entry."""
