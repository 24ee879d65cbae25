"""A generated dataset of any size with the awkward data real campaigns hold (`make bench-stack`).

One large campaign (`big`) holds most entries, two small ones share the collections so that a
campaign filter has something to skip. The data is hostile on purpose: names with quotes,
commas, CR/LF, accents and emoji; missing and null fields; integer phone numbers; entries of
deleted users; markets that no longer exist; repeated and lone additional market ids. The
same arguments always give the same bytes, and files are written as they are generated, so
the size is bounded by the disk, not by memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from devstack.demo import blank_optional_fields

__all__ = [
    "BIG_CAMPAIGN_ID",
    "COLLECTIONS",
    "GENERATOR_VERSION",
    "GeneratedCounts",
    "generated_documents",
    "write_generated_dataset",
]

# Part of the name of cached datasets (bench/stack_export.py): bump it when the output changes.
GENERATOR_VERSION = 2

BIG_CAMPAIGN_ID = "big"
_SMALL_CAMPAIGNS = ("small-1", "small-2")
_ENTRIES_PER_USER = 1.2  # in the big campaign
_SMALL_ENTRIES_PER_USER = 0.1  # in each small campaign
_DELETED_USER_EVERY = 97  # one entry in 97 names a user that no longer exists
_CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

Doc = dict[str, Any]

_FIRST = ("Zoë", 'Renée "Ray"', "José, María", "Mia 🎸", "Łukasz", "Line\nBreak", "Car\r\nRiage")
_LAST = ("O'Brien", "Picard, Jr.", "Ødegård", "Ní Bhriain", '""', "Żółkiewski", "García-Márquez")
_PLAIN = ("Alex", "Sam", "Jordan", "Taylor", "Chris", "Morgan", "Jamie", "Riley", "Casey")
_COUNTRIES = (("US", "en_US"), ("GB", "en_GB"), ("CA", "fr_CA"), ("MX", "es_MX"), ("IE", "en_IE"))


@dataclass(frozen=True)
class GeneratedCounts:
    """How many documents of each collection were written."""

    users: int
    entries: int
    big_entries: int
    scoring: int
    codes: int


def _markets(campaign_id: str, count: int) -> list[Doc]:
    markets: list[Doc] = []
    for i in range(count):
        market: Doc = {
            "_id": f"{campaign_id}-m{i}",
            "campaignId": campaign_id,
            "name": f'Hall {i}, "Main" Stage ✨' if i % 3 == 0 else f"Arena {i}",
            "city": "Zürich" if i % 2 else "New York",
            "countryCode": ("US", "GB", "CH")[i % 3],
            "eventDate": _CREATED + timedelta(days=90 + i, milliseconds=i * 7),
            "promoterIds": [f"promoter-{i % 3}"],
        }
        if i % 4 != 1:
            market["state"] = "NY"
        markets.append(market)
    return markets


def _user(rng: random.Random, i: int) -> Doc:
    country, locale = _COUNTRIES[i % len(_COUNTRIES)]
    special = i % 10 == 0
    user: Doc = {
        "_id": f"u{i:08d}",
        "email": f"fan{i}@example.com",
        "firstName": _FIRST[i % len(_FIRST)] if special else rng.choice(_PLAIN),
        "lastName": _LAST[i % len(_LAST)] if special else f"Last{i}",
        "phone": f"+1555{rng.randrange(10**7):07d}",
        "postalCode": f"{rng.randrange(10**5):05d}",
        "countryCode": country,
        "locale": locale,
    }
    if i % 9 == 4:
        user["phone"] = 15550000000 + i  # stored as a number by some upstream system
    return blank_optional_fields(user, i)


def _entry(
    rng: random.Random, n: int, campaign_id: str, user_count: int, markets: list[Doc]
) -> Doc:
    user_index = rng.randrange(user_count)
    user_id = f"u{user_index:08d}"
    if n % _DELETED_USER_EVERY == 5:
        user_id = f"deleted-{n}"
    primary = markets[rng.randrange(len(markets))]["_id"]
    roll = rng.random()
    additional: Any
    if roll < 0.3:
        additional = rng.sample([m["_id"] for m in markets], k=min(2, len(markets)))
    elif roll < 0.35:
        additional = [primary, f"{campaign_id}-gone", f"{campaign_id}-gone"]  # dangling, repeated
    elif roll < 0.37:
        additional = markets[0]["_id"]  # a lone value where a list belongs
    elif roll < 0.4:
        additional = None
    else:
        additional = []
    entry: Doc = {
        "_id": f"{campaign_id}-e{n:08d}",
        "campaignId": campaign_id,
        "userId": user_id,
        "marketId": primary,
        "additionalMarketIds": additional,
        "locale": rng.choice(("en_US", "fr_CA", None)),
        "verified": rng.random() < 0.7,
        "optIns": {
            "artist": rng.random() < 0.6,
            "sms": rng.random() < 0.3,
            "livenation": rng.random() < 0.4,
            "promoterIds": [f"promoter-{rng.randrange(3)}"] if rng.random() < 0.3 else [],
        },
        "createdAt": _CREATED + timedelta(seconds=n, milliseconds=n % 1000),
    }
    if n % 11 == 7:
        del entry["additionalMarketIds"]
    if n % 23 == 2:
        del entry["locale"]
    return entry


def _relaxed(value: Any) -> Any:
    # Relaxed Extended JSON as mongoexport writes it: only dates need a wrapper here.
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"$date": text}
    if isinstance(value, dict):
        return {k: _relaxed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relaxed(v) for v in value]
    return value


class _Writer:
    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb")
        self.count = 0

    def write(self, doc: Doc) -> None:
        self._handle.write(orjson.dumps(_relaxed(doc)))
        self._handle.write(b"\n")
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def _entries(rng: random.Random, users: int) -> Iterator[tuple[str, Doc]]:
    plans = [(BIG_CAMPAIGN_ID, round(users * _ENTRIES_PER_USER), 12)]
    plans += [(c, round(users * _SMALL_ENTRIES_PER_USER), 3) for c in _SMALL_CAMPAIGNS]
    for campaign_id, count, market_count in plans:
        markets = _markets(campaign_id, market_count)
        for n in range(count):
            yield campaign_id, _entry(rng, n, campaign_id, users, markets)


def _scoring_and_code(n: int, entry: Doc) -> Iterator[tuple[str, Doc]]:
    """The n-th entry of the big campaign: most are scored, every third has a code."""
    if n % 6 != 0:
        yield (
            "scoring",
            {
                "_id": f"s{n:08d}",
                "campaignId": entry["campaignId"],
                "userId": entry["userId"],
                "entryId": entry["_id"],
                "marketId": entry["marketId"],
                "score": (n % 10_000) / 7 if n % 50 else -0.0,
                "rank": n,
                "tier": ("gold", "silver", "bronze")[n % 3],
                "verified": entry["verified"],
                "selected": n % 3 == 0,
            },
        )
    if n % 3 != 0:
        return
    code: Doc = {
        "_id": f"c{n:08d}",
        "campaignId": entry["campaignId"],
        "marketId": entry["marketId"],
        "code": f"CODE-{n:08X}",
        "type": "presale",
        "status": "AVAILABLE",
    }
    if n % 2 == 0:
        code |= {
            "status": "ASSIGNED",
            "assignedUserId": entry["userId"],
            "assignedEntryId": entry["_id"],
            "waveId": f"wave-{n % 4}",
            "assignedAt": _CREATED + timedelta(days=30, seconds=n),
        }
    yield "codes", code


COLLECTIONS = ("campaigns", "markets", "promoters", "users", "entries", "scoring", "codes")


def generated_documents(*, users: int, seed: int = 1) -> Iterator[tuple[str, Doc]]:
    """The dataset of `users` users as (collection, document), in the order they are written."""
    if users < 10:
        raise ValueError("users must be at least 10")
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    for campaign_id in (BIG_CAMPAIGN_ID, *_SMALL_CAMPAIGNS):
        yield (
            "campaigns",
            {
                "_id": campaign_id,
                "name": f'Tour "{campaign_id}" / 2026, Ünïcode 🎤',
                "artist": "The Generated Band",
                "createdAt": _CREATED,
            },
        )
        for market in _markets(campaign_id, 12 if campaign_id == BIG_CAMPAIGN_ID else 3):
            yield "markets", market
    for i in range(3):
        yield "promoters", {"_id": f"promoter-{i}", "name": f"Promoter, {i} & Co"}
    for i in range(users):
        yield "users", _user(rng, i)
    big_entries = 0
    for campaign_id, entry in _entries(rng, users):
        yield "entries", entry
        if campaign_id == BIG_CAMPAIGN_ID:
            big_entries += 1
            yield from _scoring_and_code(big_entries, entry)


def write_generated_dataset(directory: Path, *, users: int, seed: int = 1) -> GeneratedCounts:
    """Write `<collection>.jsonl` files for `users` users into `directory`."""
    if users < 10:
        raise ValueError("users must be at least 10")
    directory.mkdir(parents=True, exist_ok=True)
    writers = {name: _Writer(directory / f"{name}.jsonl") for name in COLLECTIONS}
    big_entries = 0
    try:
        for collection, doc in generated_documents(users=users, seed=seed):
            writers[collection].write(doc)
            if collection == "entries" and doc["campaignId"] == BIG_CAMPAIGN_ID:
                big_entries += 1
    finally:
        for writer in writers.values():
            writer.close()
    return GeneratedCounts(
        users=writers["users"].count,
        entries=writers["entries"].count,
        big_entries=big_entries,
        scoring=writers["scoring"].count,
        codes=writers["codes"].count,
    )
