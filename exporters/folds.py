"""Folds of consecutive source documents (GroupConsecutive), as the row rules define them.

A fold is a callable class, like the expansion EntryMarkets: the row engine calls it on the
decoded documents of a run, and the columnar engine recognises it to compute the same
documents from typed columns (exporters.columnar_fold).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.deps import Doc
from exporters.joins import as_list


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class UserEntries:
    """A user's entries as one document: distinct markets, first entry, its locale.

    `reads` names the entry fields the fold depends on (besides the run's key), so that the
    columnar engine knows which documents its columns cannot stand for.
    """

    reads = ("marketId", "additionalMarketIds", "createdAt", "locale")
    market_reads = ("marketId", "additionalMarketIds")  # what `markets_of_entry` reads

    @staticmethod
    def markets_of_entry(entry: Doc) -> set[str]:
        """The market ids an entry counts for: its non-empty string ids, primary or not."""
        ids = (entry.get("marketId"), *as_list(entry.get("additionalMarketIds")))
        return {market_id for market_id in ids if isinstance(market_id, str) and market_id}

    def __call__(self, user_id: Any, entries: list[Doc]) -> Doc:
        markets = set().union(*map(self.markets_of_entry, entries))
        dated = sorted(
            (created, index)
            for index, e in enumerate(entries)
            if (created := _utc(e.get("createdAt")))
        )
        by_time = [entries[i] for _, i in dated] + [
            e for e in entries if not _utc(e.get("createdAt"))
        ]
        locale = next((e["locale"] for e in by_time if e.get("locale")), None)
        return {
            "_id": user_id,
            "userId": user_id,
            "marketCount": len(markets),
            "firstEntryAt": dated[0][0] if dated else None,
            "locale": locale,
        }


user_entries = UserEntries()
