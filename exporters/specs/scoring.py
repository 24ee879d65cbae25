"""scoring: every scoring record of the campaign, for the scoring systems."""

from __future__ import annotations

from exporters.columns import SCORING_COLUMNS
from exporters.joins import USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

SPEC = ExportSpec(
    name="scoring",
    description="every scoring record",
    source=Find("scoring", lambda ctx: {"campaignId": ctx.campaign_id}),
    joins=(USER,),
    columns=SCORING_COLUMNS,
    bucket="scoring",
    acl="bucket-owner-full-control",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "scoring", "csv")),
)
