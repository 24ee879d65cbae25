"""reminderEmailSample: reminderEmail with at most `sampleSize` rows per region and locale."""

from __future__ import annotations

from exporters.naming import safe_part
from exporters.sfmc import (
    REMINDER_COLUMNS,
    REMINDER_JOINS,
    REMINDER_SOURCE,
    SampleParams,
    region_and_locale,
    split_member,
)
from exporters.spec import ExportContext, ExportSpec, ZipOfCsv


def zip_name(ctx: ExportContext) -> str:
    name = safe_part(str(ctx.campaign.get("name") or ""), fallback="campaign", limit=120)
    return f"Combined - {name} ASU - Reminder Email Sample Data.zip"


def sample_size(ctx: ExportContext) -> int:
    params = ctx.params
    assert isinstance(params, SampleParams)  # noqa: S101 (parse_params made it)
    return params.sample_size


SPEC = ExportSpec(
    name="reminderEmailSample",
    description="reminderEmail rows, at most params.sampleSize (default 10) per region+locale",
    source=REMINDER_SOURCE,
    joins=REMINDER_JOINS,
    columns=REMINDER_COLUMNS,
    bucket="exports",
    acl="private",
    layout=ZipOfCsv(
        zip_name=zip_name,
        group=region_and_locale,
        member=split_member,
        split=True,
        limit_per_group=sample_size,
    ),
    params=SampleParams,
    requires_markets=True,
)
