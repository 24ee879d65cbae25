"""codes: every code of the campaign with its market (no user columns, nothing skipped)."""

from __future__ import annotations

from exporters.joins import MARKET
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find, col

SPEC = ExportSpec(
    name="codes",
    description="every code of the campaign",
    source=Find("codes", lambda ctx: {"campaignId": ctx.campaign_id}),
    joins=(MARKET,),
    columns=(
        col("code", "doc.code"),
        col("type", "doc.type"),
        col("status", "doc.status"),
        col("marketId", "doc.marketId"),
        col("marketName", "market.name"),
        col("assignedUserId", "doc.assignedUserId"),
        col("assignedAt", "doc.assignedAt"),
        col("waveId", "doc.waveId"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "codes", "csv")),
)
