"""verifiedEntries: the entries rows of verified entries only, for the scoring systems."""

from __future__ import annotations

from exporters.columns import ENTRY_COLUMNS
from exporters.joins import MARKET, USER, entry_markets
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

SPEC = ExportSpec(
    name="verifiedEntries",
    description="entries rows of verified entries",
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id, "verified": True}),
    expand=entry_markets,
    joins=(USER, MARKET),
    columns=ENTRY_COLUMNS,
    bucket="vfScoring",
    acl="private",
    layout=CsvFile(
        lambda ctx: campaign_file_name(ctx.campaign.get("name"), "verifiedEntries", "csv")
    ),
    requires_markets=True,
)
