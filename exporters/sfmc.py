"""Salesforce Marketing Cloud rules shared by the reminder types: locale, region, layout."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from exporters.joins import ENTRY_OF_RECORD, MARKET, PRESALE_CODE, USER
from exporters.naming import safe_part
from exporters.spec import Column, Computed, Find, Join, col

_LOCALE_ALIASES = {"en-uk": "en-gb", "en-mx": "en-us"}
_REGIONS = {"US": "NA", "CA": "NA", "MX": "NA", "GB": "UK", "IE": "UK"}
REGIONS = ("NA", "UK")


def sfmc_locale(value: object) -> str:
    """`en_US` -> `en-us`; `en-uk` -> `en-gb`, `en-mx` -> `en-us`; missing or empty -> `en-us`."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return "en-us"
    normalised = text.replace("_", "-").lower()
    return _LOCALE_ALIASES.get(normalised, normalised)


def _country(value: Any) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _region_of(user_country: Any, market_country: Any) -> str:
    country = _country(user_country) or _country(market_country)
    return _REGIONS.get(country, "NA")


def _locale_of(entry_locale: Any, user_locale: Any) -> str:
    return sfmc_locale(entry_locale or user_locale)


def _region_and_locale_of(
    user_country: Any, market_country: Any, entry_locale: Any, user_locale: Any
) -> str:
    locale = safe_part(_locale_of(entry_locale, user_locale), fallback="en-us")
    return f"{_region_of(user_country, market_country)}/{locale}"


_REGION_PATHS = ("user.countryCode", "market.countryCode")
# The entry's locale, else the user's, as stored (SPEC §3 row rules): `entry_locale` over
# the joined entry of record, which every reminder row has (found or None).
_LOCALE_PATHS = ("entry.locale", "user.locale")

region = Computed(_REGION_PATHS, _region_of)
"""By the user's countryCode (case-insensitive), else the market's; unknown -> NA."""

row_locale = Computed(_LOCALE_PATHS, _locale_of)
"""The SFMC locale of the row's entry of record, else of its user."""

region_and_locale = Computed(_REGION_PATHS + _LOCALE_PATHS, _region_and_locale_of)
"""The ZIP group of a row: `{region}/{locale}` (the locale made safe for a file name)."""


def split_member(group: str, number: int) -> str:
    """`{region}/{locale}_{n}.csv`, n from 1."""
    return f"{group}_{number}.csv"


REMINDER_COLUMNS: tuple[Column, ...] = (
    col("SubscriberKey", "doc.userId"),
    col("EmailAddress", "user.email"),
    col("FirstName", "user.firstName"),
    col("Locale", row_locale),
    col("MarketName", "market.name"),
    col("EventDate", "market.eventDate"),
    col("PresaleCode", "code.code"),
    col("CampaignName", "campaign.name"),
)

REMINDER_SOURCE = Find("scoring", lambda ctx: {"campaignId": ctx.campaign_id, "selected": True})
"""Selected fans (scoring.selected)."""

REMINDER_JOINS: tuple[Join, ...] = (USER, MARKET, ENTRY_OF_RECORD, PRESALE_CODE)


def _whole_number(value: object) -> object:
    """A JSON integer: JSON Schema counts 489.0 as one; strings and booleans are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


class SampleParams(BaseModel):
    """reminderEmailSample: at most `sampleSize` rows per region and locale."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sample_size: Annotated[int, BeforeValidator(_whole_number)] = Field(
        10, ge=1, le=1000, alias="sampleSize"
    )
