"""vfScoring: verified scoring records, for the Verified Fan scoring bucket."""

from __future__ import annotations

from exporters.columns import SCORING_COLUMNS
from exporters.joins import USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

SPEC = ExportSpec(
    name="vfScoring",
    description="scoring records with verified: true",
    source=Find("scoring", lambda ctx: {"campaignId": ctx.campaign_id, "verified": True}),
    joins=(USER,),
    columns=SCORING_COLUMNS,
    bucket="vfScoring",
    acl="bucket-owner-full-control",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "vfScoring", "csv")),
)
