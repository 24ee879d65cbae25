"""A small hand-made dataset with the awkward cases of SPEC §2-3, shared by unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

UTC = dt.UTC


def dataset() -> dict[str, list[dict[str, Any]]]:
    return {
        "campaigns": [
            {
                "_id": "c1",
                "name": 'Summer, "Live" 🎤',
                "createdAt": dt.datetime(2026, 1, 1, tzinfo=UTC),
            },
            {"_id": "c2", "name": "Other"},
            {"_id": "empty", "name": "No markets"},
        ],
        "markets": [
            {
                "_id": "m1",
                "campaignId": "c1",
                "name": "Zürich Hall",
                "city": "Zürich",
                "countryCode": "CH",
                "eventDate": dt.datetime(2026, 5, 1, 17, 0, 0, 123000, tzinfo=UTC),
            },
            {
                "_id": "m2",
                "campaignId": "c1",
                "name": "NYC, MSG",
                "city": "New York",
                "state": "NY",
                "countryCode": "US",
                # naive, as BSON dates come back without tz_aware: UTC by the data model
                "eventDate": dt.datetime(2026, 6, 1, 20, 0),
            },
            {"_id": "m9", "campaignId": "c2", "name": "Elsewhere"},
        ],
        "users": [
            {
                "_id": "u1",
                "email": "a@x.com",
                "firstName": "Zoë",
                "lastName": "O'Brien",
                "phone": "+1 555",
                "postalCode": "10001",
                "countryCode": "US",
                "locale": "en_US",
            },
            {
                "_id": "u2",
                "email": "b@x.com",
                "firstName": "Line\nBreak",
                "lastName": '"Quoted"',
                "phone": None,
                "countryCode": "GB",
            },
            {"_id": "u3", "email": "c@x.com", "firstName": "مرحبا", "lastName": "🎸"},
        ],
        "entries": [
            {
                "_id": "e1",
                "campaignId": "c1",
                "userId": "u1",
                "marketId": "m1",
                "additionalMarketIds": ["m2", "m1", None],
                "locale": None,
                "verified": True,
                "optIns": {"artist": True, "sms": False, "livenation": True, "promoterIds": []},
                "createdAt": dt.datetime(2026, 2, 1, 10, 0, 0, 999000, tzinfo=UTC),
            },
            {
                "_id": "e2",
                "campaignId": "c1",
                "userId": "u2",
                "marketId": "m2",
                "locale": "fr_FR",
                "verified": False,
                "createdAt": dt.datetime(2026, 2, 2, tzinfo=UTC),
            },
            {"_id": "e3", "campaignId": "c1", "userId": "ghost", "marketId": "m1"},
            {
                "_id": "e4",
                "campaignId": "c1",
                "userId": "u3",
                "marketId": "gone",
                "additionalMarketIds": ["m1"],
            },
            {"_id": "e5", "campaignId": "c2", "userId": "u1", "marketId": "m9"},
        ],
        "codes": [
            {
                "_id": "k1",
                "campaignId": "c1",
                "marketId": "m2",
                "code": "AB,C1",
                "type": "presale",
                "status": "ASSIGNED",
                "assignedUserId": "u1",
                "assignedEntryId": "e1",
                "waveId": "w1",
                "assignedAt": dt.datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC),
            },
            {
                "_id": "k2",
                "campaignId": "c1",
                "marketId": "nowhere",
                "code": "XYZ",
                "status": "AVAILABLE",
                "assignedUserId": None,
            },
            {"_id": "k3", "campaignId": "c2", "code": "OTHER", "status": "AVAILABLE"},
        ],
    }
