"""Expected rows computed from the fixture files by the tests' own reading of SPEC §3.

Written apart from exporters/: it reads the JSONL files itself and builds each row from
the column rules, so that a bug in a spec or the engine shows up as a difference.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from bson import json_util

DATA = Path(__file__).parent / "data"


def load(collection: str, directory: Path = DATA) -> list[dict[str, Any]]:
    path = directory / f"{collection}.jsonl"
    with path.open(encoding="utf-8") as lines:
        return [json_util.loads(line) for line in lines if line.strip()]


def cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return str(value.isoformat(timespec="seconds")) + "Z"
    return str(value)


def entries_rows(campaign_id: str, directory: Path = DATA) -> list[list[str]]:
    campaign = next(c for c in load("campaigns", directory) if c["_id"] == campaign_id)
    users = {u["_id"]: u for u in load("users", directory)}
    markets = {m["_id"]: m for m in load("markets", directory)}
    rows = []
    for e in load("entries", directory):
        if e.get("campaignId") != campaign_id or e.get("userId") not in users:
            continue
        u = users[e["userId"]]
        market_ids = [e.get("marketId")]
        extras = e.get("additionalMarketIds")
        if isinstance(extras, str):
            extras = [extras]  # a lone id where a list belongs counts as one market
        elif not isinstance(extras, list):
            extras = []
        for extra in extras:
            if extra is not None and extra not in market_ids:
                market_ids.append(extra)
        opt = e.get("optIns") or {}
        for n, market_id in enumerate(market_ids):
            m = markets.get(market_id) or {}
            rows.append(
                [
                    cell(v)
                    for v in (
                        e["_id"],
                        e["userId"],
                        u.get("email"),
                        u.get("firstName"),
                        u.get("lastName"),
                        u.get("phone"),
                        u.get("postalCode"),
                        u.get("countryCode"),
                        e.get("locale") or u.get("locale"),
                        market_id,
                        m.get("name"),
                        m.get("city"),
                        m.get("state"),
                        m.get("eventDate"),
                        n == 0,
                        e.get("verified"),
                        opt.get("artist"),
                        opt.get("sms"),
                        opt.get("livenation"),
                        e.get("createdAt"),
                        campaign_id,
                        campaign.get("name"),
                    )
                ]
            )
    return rows


def codes_rows(campaign_id: str, directory: Path = DATA) -> list[list[str]]:
    markets = {m["_id"]: m for m in load("markets", directory)}
    rows = []
    for c in load("codes", directory):
        if c.get("campaignId") != campaign_id:
            continue
        m = markets.get(c.get("marketId")) or {}
        rows.append(
            [
                cell(v)
                for v in (
                    c.get("code"),
                    c.get("type"),
                    c.get("status"),
                    c.get("marketId"),
                    m.get("name"),
                    c.get("assignedUserId"),
                    c.get("assignedAt"),
                    c.get("waveId"),
                )
            ]
        )
    return rows
