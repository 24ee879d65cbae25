"""autoReminderEmail: reminderEmail rows as one CSV object per region, where SFMC looks."""

from __future__ import annotations

from exporters.naming import safe_part
from exporters.sfmc import REGIONS, REMINDER_COLUMNS, REMINDER_JOINS, REMINDER_SOURCE, region
from exporters.spec import CsvPerGroup, ExportContext, ExportSpec


def sfmc_key(ctx: ExportContext, region_name: str) -> str:
    """`{region}/{campaignId}_{YYYYMMDD}.csv`, the UTC date of the run (SFMC automation)."""
    day = ctx.started_at.strftime("%Y%m%d")
    return f"{region_name}/{safe_part(ctx.campaign_id, fallback='campaign')}_{day}.csv"


SPEC = ExportSpec(
    name="autoReminderEmail",
    description="reminderEmail rows, one CSV object per region in the sfmc bucket",
    source=REMINDER_SOURCE,
    joins=REMINDER_JOINS,
    columns=REMINDER_COLUMNS,
    bucket="sfmc",
    acl="private",
    layout=CsvPerGroup(group=region, object_key=sfmc_key, known_groups=REGIONS),
    requires_markets=True,
)
