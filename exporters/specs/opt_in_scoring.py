"""optInScoring: scoring records whose entry opted in to the artist or to Live Nation."""

from __future__ import annotations

from exporters.columns import SCORING_COLUMNS
from exporters.joins import ENTRY_OF_RECORD, USER, opted_in
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find

SPEC = ExportSpec(
    name="optInScoring",
    description="scoring records whose entry has optIns.artist or optIns.livenation",
    source=Find("scoring", lambda ctx: {"campaignId": ctx.campaign_id}),
    joins=(USER, ENTRY_OF_RECORD),
    where=opted_in("artist", "livenation"),
    columns=SCORING_COLUMNS,
    bucket="scoring",
    acl="bucket-owner-full-control",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "optInScoring", "csv")),
)
