"""codeAssignments: assigned codes with their user and entry."""

from __future__ import annotations

from exporters.joins import ASSIGNED_USER, MARKET
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find, col

SPEC = ExportSpec(
    name="codeAssignments",
    description="codes with an assignedUserId, joined with user and entry",
    source=Find(
        "codes", lambda ctx: {"campaignId": ctx.campaign_id, "assignedUserId": {"$ne": None}}
    ),
    joins=(ASSIGNED_USER, MARKET),
    columns=(
        col("code", "doc.code"),
        col("marketId", "doc.marketId"),
        col("marketName", "market.name"),
        col("userId", "doc.assignedUserId"),
        col("email", "user.email"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("entryId", "doc.assignedEntryId"),
        col("assignedAt", "doc.assignedAt"),
        col("waveId", "doc.waveId"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(
        lambda ctx: campaign_file_name(ctx.campaign.get("name"), "codeAssignments", "csv")
    ),
)
