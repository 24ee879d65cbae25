"""livenationOptIn: entries that opted in to Live Nation's marketing."""

from __future__ import annotations

from exporters.columns import OPT_IN_COLUMNS
from exporters.joins import USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

SPEC = ExportSpec(
    name="livenationOptIn",
    description="entries with optIns.livenation",
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id, "optIns.livenation": True}),
    joins=(USER,),
    columns=OPT_IN_COLUMNS,
    bucket="exports",
    acl="private",
    layout=CsvFile(
        lambda ctx: campaign_file_name(ctx.campaign.get("name"), "livenationOptIn", "csv")
    ),
)
