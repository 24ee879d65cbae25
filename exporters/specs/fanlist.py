"""fanlist: one row per distinct user who entered the campaign."""

from __future__ import annotations

from exporters.folds import user_entries
from exporters.joins import USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, Either, ExportSpec, Find, GroupConsecutive, col

SPEC = ExportSpec(
    name="fanlist",
    description="one row per distinct user who entered (marketCount, firstEntryAt)",
    # Sorted by user, so that a user's entries arrive together and one user is in memory.
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id}, sort=(("userId", 1),)),
    group=GroupConsecutive("userId", user_entries),
    joins=(USER,),
    columns=(
        col("userId", "doc.userId"),
        col("email", "user.email"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("phone", "user.phone"),
        col("postalCode", "user.postalCode"),
        col("countryCode", "user.countryCode"),
        # The first entry's locale, else the user's (a kept row always has both documents).
        col("locale", Either("doc.locale", "user.locale")),
        col("marketCount", "doc.marketCount"),
        col("firstEntryAt", "doc.firstEntryAt"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "fanlist", "csv")),
)
