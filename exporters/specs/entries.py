"""entries: one row per entry per market (primary, then each additional market)."""

from __future__ import annotations

from exporters.columns import ENTRY_COLUMNS
from exporters.joins import MARKET, USER, entry_markets
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

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
