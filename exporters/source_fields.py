"""The types the columnar engine reads each collection's fields as (SPEC §2 data model).

A field that is not listed here keeps its export type on the row engine; a value of another
type than the one listed makes its document take the row rules (exporters.bson_columns).
Markets and promoters are small and cached as documents, so they need no entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporters.bson_columns import FieldType

_S, _B, _D = FieldType.STR, FieldType.BOOL, FieldType.DATE

COLLECTION_FIELDS: Mapping[str, Mapping[str, FieldType]] = {
    "entries": {
        "_id": _S,
        "campaignId": _S,
        "userId": _S,
        "marketId": _S,
        "additionalMarketIds": FieldType.STR_LIST,
        "locale": _S,
        "verified": _B,
        "optIns.artist": _B,
        "optIns.sms": _B,
        "optIns.livenation": _B,
        "optIns.promoterIds": FieldType.STR_LIST,
        "createdAt": _D,
    },
    "users": {
        name: _S
        for name in (
            "_id",
            "email",
            "firstName",
            "lastName",
            "phone",
            "postalCode",
            "countryCode",
            "locale",
        )
    },
    "scoring": {
        "_id": _S,
        "campaignId": _S,
        "userId": _S,
        "entryId": _S,
        "marketId": _S,
        "score": FieldType.FLOAT,
        "rank": FieldType.INT,
        "tier": _S,
        "verified": _B,
        "selected": _B,
    },
    "codes": {
        "_id": _S,
        "campaignId": _S,
        "marketId": _S,
        "code": _S,
        "type": _S,
        "status": _S,
        "assignedUserId": _S,
        "assignedEntryId": _S,
        "waveId": _S,
        "assignedAt": _D,
    },
}
