"""reminderEmail: selected fans with their presale code, a ZIP by region and locale (SFMC)."""

from __future__ import annotations

from exporters.naming import safe_part
from exporters.sfmc import (
    REMINDER_COLUMNS,
    REMINDER_JOINS,
    REMINDER_SOURCE,
    region_and_locale,
    split_member,
)
from exporters.spec import ExportContext, ExportSpec, ZipOfCsv


def zip_name(ctx: ExportContext) -> str:
    name = safe_part(str(ctx.campaign.get("name") or ""), fallback="campaign", limit=120)
    return f"Combined - {name} ASU - Reminder Email Data.zip"


SPEC = ExportSpec(
    name="reminderEmail",
    description="selected fans with their code; {region}/{locale}_{n}.csv in a ZIP",
    source=REMINDER_SOURCE,
    joins=REMINDER_JOINS,
    columns=REMINDER_COLUMNS,
    bucket="exports",
    acl="private",
    layout=ZipOfCsv(zip_name=zip_name, group=region_and_locale, member=split_member, split=True),
    requires_markets=True,
)
