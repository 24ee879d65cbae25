"""smsOptIn: entries that opted in to SMS and whose user has a phone number."""

from __future__ import annotations

from exporters.joins import MARKET, USER
from exporters.naming import campaign_file_name
from exporters.spec import CsvFile, ExportSpec, Find, RowTest, col


def _is_phone(phone: object) -> bool:
    return isinstance(phone, str) and bool(phone.strip())


_has_phone = RowTest(("user.phone",), _is_phone)


SPEC = ExportSpec(
    name="smsOptIn",
    description="entries with optIns.sms and a phone number",
    source=Find("entries", lambda ctx: {"campaignId": ctx.campaign_id, "optIns.sms": True}),
    joins=(USER, MARKET),
    where=_has_phone,
    columns=(
        col("phone", "user.phone"),
        col("firstName", "user.firstName"),
        col("lastName", "user.lastName"),
        col("countryCode", "user.countryCode"),
        col("marketName", "market.name"),
    ),
    bucket="exports",
    acl="private",
    layout=CsvFile(lambda ctx: campaign_file_name(ctx.campaign.get("name"), "smsOptIn", "csv")),
)
