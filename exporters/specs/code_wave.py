"""codeWave: the codes of one wave (`params.waveId`) with their user's contact details."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exporters.joins import ASSIGNED_USER_IF_ANY, MARKET
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportContext, ExportSpec, Find, col


class CodeWaveParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    wave_id: str = Field(alias="waveId", min_length=1, max_length=128, strict=True)


def _query(ctx: ExportContext) -> dict[str, Any]:
    params = ctx.params
    assert isinstance(params, CodeWaveParams)  # noqa: S101 (parse_params made it)
    return {"campaignId": ctx.campaign_id, "waveId": params.wave_id}


SPEC = ExportSpec(
    name="codeWave",
    description="codes of one wave with user contact; user columns empty when unassigned",
    source=Find("codes", _query),
    joins=(ASSIGNED_USER_IF_ANY, MARKET),
    columns=(
        col("code", "doc.code"),
        col("userId", "doc.assignedUserId"),
        col("email", "user.email"),
        col("phone", "user.phone"),
        col("firstName", "user.firstName"),
        col("marketId", "doc.marketId"),
        col("marketName", "market.name"),
        col("waveId", "doc.waveId"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "codeWave", "csv")),
    params=CodeWaveParams,
)
