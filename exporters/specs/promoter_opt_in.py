"""promoterOptIn: a row per entry and promoter it opted in to; a CSV per promoter in a ZIP."""

from __future__ import annotations

from exporters.joins import PROMOTER, USER, entry_promoters
from exporters.naming import campaign_file_name, safe_part
from exporters.spec import Computed, ExportSpec, Find, ZipOfCsv, col

SPEC = ExportSpec(
    name="promoterOptIn",
    description="entries opted in to a promoter; one {promoterId}.csv per promoter",
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id}),
    expand=entry_promoters,
    joins=(USER, PROMOTER),
    columns=(
        col("email", "user.email"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("postalCode", "user.postalCode"),
        col("countryCode", "user.countryCode"),
        col("promoterId", "promoterId"),
        col("promoterName", "promoter.name"),
    ),
    bucket="exports",
    acl="private",
    layout=ZipOfCsv(
        zip_name=lambda ctx: campaign_file_name(ctx.campaign.get("name"), "promoterOptIn", "zip"),
        group=Computed(("promoterId",), str),
        member=lambda promoter_id, _: f"{safe_part(promoter_id, fallback='promoter')}.csv",
    ),
)
