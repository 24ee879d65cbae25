"""waitlist: fans not selected, minus everyone already scheduled in an SMS wave."""

from __future__ import annotations

from exporters.joins import MARKET, USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find, SmsWaveExclusion, col

SPEC = ExportSpec(
    name="waitlist",
    description="scoring records with selected: false, minus users in scheduled SMS waves",
    source=Find("scoring", lambda ctx: {"campaignId": ctx.campaign_id, "selected": False}),
    exclude=SmsWaveExclusion(bucket="vfScoring"),
    joins=(USER, MARKET),
    columns=(
        col("userId", "doc.userId"),
        col("email", "user.email"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("phone", "user.phone"),
        col("marketId", "doc.marketId"),
        col("marketName", "market.name"),
        col("score", "doc.score"),
        col("rank", "doc.rank"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "waitlist", "csv")),
)
