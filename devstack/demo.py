"""A deterministic demo dataset (one campaign, its fans, codes and scoring) for `make run`."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["DEMO_CAMPAIGN_ID", "blank_optional_fields", "write_demo_dataset"]

DEMO_CAMPAIGN_ID = "demo-campaign"

Doc = dict[str, Any]

_CAMPAIGN_CREATED = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
_PROMOTERS: tuple[Doc, ...] = (
    {
        "_id": "promoter-livenation",
        "name": "Live Nation",
        "privacyPolicyUrl": "https://www.livenation.com/privacy",
    },
    {
        "_id": "promoter-local",
        "name": "Bühne & Co, Ltd.",
        "privacyPolicyUrl": "https://promoter.example.com/privacy",
    },
)
_MARKETS: tuple[Doc, ...] = (
    {
        "_id": "market-la",
        "campaignId": DEMO_CAMPAIGN_ID,
        "name": "Kia Forum, Los Angeles",
        "city": "Inglewood",
        "state": "CA",
        "countryCode": "US",
        "eventDate": datetime(2026, 6, 12, 3, 0, tzinfo=UTC),
        "promoterIds": ["promoter-livenation"],
    },
    {
        # No state: optional fields are missing in real data too.
        "_id": "market-london",
        "campaignId": DEMO_CAMPAIGN_ID,
        "name": "The O2",
        "city": "London",
        "countryCode": "GB",
        "eventDate": datetime(2026, 6, 20, 19, 30, tzinfo=UTC),
        "promoterIds": ["promoter-livenation", "promoter-local"],
    },
)
# (firstName, lastName): the awkward ones CSV writers and SFMC get wrong.
_SPECIAL_NAMES = (
    ("Zoë", "Ødegård"),
    ('Renée "Ray"', "García-Márquez"),
    ("Jean-Luc", "Picard, Jr."),
    ("Mia 🎸", "O'Brien"),
    ("Łukasz", "Żółkiewski"),
    ("Siobhán", "Ní Bhriain"),
    ("José, María", "Núñez"),
)
_FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Chris", "Morgan", "Jamie", "Riley", "Casey")
_LAST_NAMES = ("Smith", "Jones", "Brown", "Lee", "Garcia", "Martin", "Walker", "Young", "King")
# countryCode -> (weight, locales): includes the en_UK and en_MX spellings SFMC rules rewrite.
_COUNTRIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "US": (50, ("en_US", "en_US", "en_US", "es_US", "en_MX")),
    "CA": (10, ("en_CA", "fr_CA")),
    "MX": (5, ("es_MX",)),
    "GB": (25, ("en_GB", "en_GB", "en_UK")),
    "IE": (5, ("en_IE",)),
    "DE": (5, ("de_DE",)),
}


def write_demo_dataset(directory: Path, *, entries: int = 3000, seed: int = 7) -> str:
    """Write the demo dataset into `directory` (relaxed Extended JSON) and return its campaign id.

    The same arguments always give the same bytes. Includes what real data has: users with
    several entries, missing optional fields, two entries (and their scoring) whose user was
    deleted, names with commas, quotes, accents and an emoji, one entry holding two codes, and
    an SMS wave of unselected fans.
    """
    if entries < 1:
        raise ValueError("entries must be at least 1")
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    users = _users(rng, max(1, round(entries * 0.9)))
    entry_docs = _entries(rng, users, entries)
    scoring = _scoring(rng, entry_docs)
    codes = _codes(rng, scoring, max(20, entries // 10))

    directory.mkdir(parents=True, exist_ok=True)
    _write_jsonl(directory / "campaigns.jsonl", [_campaign()])
    _write_jsonl(directory / "markets.jsonl", _MARKETS)
    _write_jsonl(directory / "promoters.jsonl", _PROMOTERS)
    _write_jsonl(directory / "users.jsonl", users)
    _write_jsonl(directory / "entries.jsonl", entry_docs)
    _write_jsonl(directory / "scoring.jsonl", scoring)
    _write_jsonl(directory / "codes.jsonl", codes)
    _write_sms_wave(directory / "sms-waves" / DEMO_CAMPAIGN_ID / "wave-1.csv", rng, scoring)
    return DEMO_CAMPAIGN_ID


def _campaign() -> Doc:
    return {
        "_id": DEMO_CAMPAIGN_ID,
        # A slash and an ampersand: file names carry the campaign name, made safe.
        "name": "Demo Tour 2026 / Live & Loud",
        "artist": "The Demo Band",
        "locales": ["en_US", "en_GB", "fr_CA", "es_MX"],
        "promoterIds": [p["_id"] for p in _PROMOTERS],
        "createdAt": _CAMPAIGN_CREATED,
    }


def _users(rng: random.Random, count: int) -> list[Doc]:
    countries = list(_COUNTRIES)
    weights = [_COUNTRIES[c][0] for c in countries]
    users = []
    for i in range(count):
        country = rng.choices(countries, weights)[0]
        if i < len(_SPECIAL_NAMES):
            first, last = _SPECIAL_NAMES[i]
        else:
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        user: Doc = {
            "_id": f"user-{i + 1:05d}",
            "email": f"fan{i + 1:05d}@example.com",
            "firstName": first,
            "lastName": last,
            "phone": f"+1555{rng.randrange(10**7):07d}",
            "postalCode": f"{rng.randrange(10**5):05d}",
            "countryCode": country,
            "locale": rng.choice(_COUNTRIES[country][1]),
        }
        users.append(blank_optional_fields(user, i))
    return users


def blank_optional_fields(user: Doc, i: int) -> Doc:
    """The i-th user as real data has some: phone, postal code or locale missing or null."""
    if i % 8 == 3:
        del user["phone"]
    elif i % 13 == 5:
        user["phone"] = None
    if i % 17 == 9:
        del user["postalCode"]
    if i % 29 == 11:
        del user["locale"]
    return user


def _entries(rng: random.Random, users: Sequence[Doc], count: int) -> list[Doc]:
    # The first len(users) entries give every user one; the rest are second entries, which is
    # what makes fanlist's marketCount differ from 1. Two entries point at deleted users.
    user_ids = [u["_id"] for u in users]
    user_ids += [rng.choice(user_ids) for _ in range(count - len(user_ids))]
    if count >= 50:
        user_ids[10] = "user-deleted-1"
        user_ids[20] = "user-deleted-2"
    locales = {u["_id"]: u.get("locale") for u in users}
    market_ids = [m["_id"] for m in _MARKETS]
    docs = []
    for i, user_id in enumerate(user_ids[:count]):
        market = _MARKETS[0] if rng.random() < 0.6 else _MARKETS[1]
        others = [m for m in market_ids if m != market["_id"]]
        roll = rng.random()
        additional: list[str] | None = others if roll < 0.15 else [] if roll < 0.95 else None
        created = _CAMPAIGN_CREATED + timedelta(seconds=rng.randrange(14 * 24 * 3600))
        if i % 3 == 0:
            # Milliseconds that the CSVs must truncate.
            created += timedelta(milliseconds=rng.randrange(1, 1000))
        doc: Doc = {
            "_id": f"entry-{i + 1:05d}",
            "campaignId": DEMO_CAMPAIGN_ID,
            "userId": user_id,
            "marketId": market["_id"],
            "additionalMarketIds": additional,
            "locale": locales.get(user_id) if rng.random() < 0.9 else None,
            "verified": rng.random() < 0.7,
            "optIns": {
                "artist": rng.random() < 0.6,
                "sms": rng.random() < 0.3,
                "livenation": rng.random() < 0.4,
                "promoterIds": [p for p in market["promoterIds"] if rng.random() < 0.3],
            },
            "createdAt": created,
        }
        docs.append({k: v for k, v in doc.items() if v is not None})
    return docs


def _scoring(rng: random.Random, entries: Sequence[Doc]) -> list[Doc]:
    scores = {e["_id"]: round(rng.uniform(0, 100), 2) for e in entries}
    ranked = sorted(entries, key=lambda e: (-scores[e["_id"]], e["_id"]))
    total = len(ranked)
    docs = []
    for rank, entry in enumerate(ranked, start=1):
        tier = "gold" if rank <= total * 0.1 else "silver" if rank <= total * 0.4 else "bronze"
        docs.append(
            {
                "_id": f"score-{entry['_id']}",
                "campaignId": DEMO_CAMPAIGN_ID,
                "userId": entry["userId"],
                "entryId": entry["_id"],
                "marketId": entry["marketId"],
                "score": scores[entry["_id"]],
                "rank": rank,
                "tier": tier,
                "verified": entry["verified"],
                "selected": rank <= total * 0.3,
            }
        )
    return docs


def _codes(rng: random.Random, scoring: Sequence[Doc], count: int) -> list[Doc]:
    selected = [s for s in scoring if s["selected"]]
    assigned_count = min(len(selected), round(count * 0.6))
    values: set[str] = set()
    docs = []
    for i in range(count):
        value = f"DEMO-{rng.randrange(16**8):08X}"
        while value in values:
            value = f"DEMO-{rng.randrange(16**8):08X}"
        values.add(value)
        code: Doc = {
            "_id": f"code-{i + 1:05d}",
            "campaignId": DEMO_CAMPAIGN_ID,
            "marketId": _MARKETS[i % 2]["_id"],
            "code": value,
            "type": "vip" if i % 10 == 0 else "presale",
        }
        # The last code goes to the first selected fan again, later: the reminder e-mail must
        # pick the earliest assignment.
        holder = selected[i] if i < assigned_count else None
        if i == count - 1 and selected:
            holder = selected[0]
        if holder is None:
            code["status"] = "AVAILABLE"
            if i % 2:
                code |= {"assignedUserId": None, "assignedEntryId": None, "waveId": None}
        else:
            wave = 1 if i < assigned_count // 2 else 2
            code |= {
                "marketId": holder["marketId"],
                "status": "REDEEMED" if i % 4 == 0 else "ASSIGNED",
                "assignedUserId": holder["userId"],
                "assignedEntryId": holder["entryId"],
                "waveId": f"wave-{wave}",
                "assignedAt": datetime(2026, 5, wave, 17, 0, tzinfo=UTC)
                + timedelta(seconds=i if i < count - 1 else 86400),
            }
        docs.append(code)
    return docs


def _write_sms_wave(path: Path, rng: random.Random, scoring: Sequence[Doc]) -> None:
    # Unselected fans already scheduled for SMS: the waitlist export must leave them out.
    waitlisted = sorted({s["userId"] for s in scoring if not s["selected"]})
    chosen = sorted(rng.sample(waitlisted, k=len(waitlisted) // 20)) if waitlisted else []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["userId"])
        writer.writerows([user_id] for user_id in chosen)


def _write_jsonl(path: Path, docs: Iterable[Doc]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for doc in docs:
            handle.write(json.dumps(_relaxed(doc), ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")


def _relaxed(value: Any) -> Any:
    # Relaxed Extended JSON as mongoexport writes it: only dates need a wrapper here.
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"$date": text.replace(".000Z", "Z")}
    if isinstance(value, dict):
        return {k: _relaxed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_relaxed(v) for v in value]
    return value
