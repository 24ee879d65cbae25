"""SFMC rules of SPEC §3: locale normalisation and region mapping."""

from __future__ import annotations

from typing import Any

import pytest

from exporters.sfmc import region, sfmc_locale


@pytest.mark.parametrize(
    ("stored", "sfmc"),
    [
        ("en_US", "en-us"),
        ("EN_us", "en-us"),
        ("fr_CA", "fr-ca"),
        ("en_UK", "en-gb"),
        ("en-uk", "en-gb"),
        ("en_MX", "en-us"),
        ("es_MX", "es-mx"),
        ("", "en-us"),
        ("   ", "en-us"),
        (None, "en-us"),
    ],
)
def test_locale(stored: Any, sfmc: str) -> None:
    assert sfmc_locale(stored) == sfmc


@pytest.mark.parametrize(
    ("user_country", "market_country", "expected"),
    [
        ("US", "GB", "NA"),
        ("ca", None, "NA"),
        ("Mx", None, "NA"),
        ("GB", "US", "UK"),
        ("ie", None, "UK"),
        ("DE", "GB", "NA"),  # the user's country wins, and anything else is NA
        (None, "GB", "UK"),  # no user country: the market's
        ("", "IE", "UK"),
        (None, None, "NA"),
    ],
)
def test_region(user_country: Any, market_country: Any, expected: str) -> None:
    row = {"user": {"countryCode": user_country}, "market": {"countryCode": market_country}}
    assert region(row) == expected


def test_region_without_user_or_market_documents() -> None:
    assert region({"user": None, "market": None}) == "NA"
