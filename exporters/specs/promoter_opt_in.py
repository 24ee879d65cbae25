"""promoterOptIn: a row per entry and promoter it opted in to; a CSV per promoter in a ZIP."""

from __future__ import annotations

from exporters.joins import PROMOTER, USER, entry_promoters
from exporters.naming import campaign_file_name, safe_part
from exporters.spec import Computed, ExportSpec, Find, ZipOfCsv, col

SPEC = ExportSpec(
    name="promoterOptIn",
    description="entries opted in to a promoter; one {promoterId}.csv per promoter",
    # The server leaves out entries that cannot give a row (most of a campaign's): without
    # the list, or with an empty one. A superset of `entry_promoters`' entries, which it still
    # filters: presence and emptiness only, not `$type: "string"`, which would drop an id
    # stored as a BSON symbol (the driver decodes it to a str, so it makes a row today).
    source=Find(
        "entries",
        lambda ctx: {
            "campaignId": ctx.campaign_id,
            "optIns.promoterIds": {"$exists": True, "$not": {"$size": 0}},
        },
    ),
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
