"""The columnar form of a join's choice among several matching documents (`Earliest`)."""

from __future__ import annotations

import polars as pl

from exporters.bson_columns import TypedBatch
from exporters.joins import Earliest


def chosen_index(batch: TypedBatch, field: str, choose: Earliest) -> dict[str, int]:
    """Per key, the index of the document `choose` picks among the batch's documents whose
    `str(doc.get(field))` is that key (the row engine's grouping), in the order found.

    Keys whose candidates the typed columns stand for exactly are chosen by polars: the
    earliest date (missing or null last, after every date a document can hold), then the
    least `_id`, the first found of equal ones, as `min` over `choose.order`. A key with a
    candidate suspect in a field the rule reads (a date of another type, an `_id` that is
    not a string or is null, a key that is not a string) is chosen by `choose` itself over
    all its candidates as the driver decodes them.
    """
    if not len(batch):
        return {}
    date = choose.date
    frame = pl.DataFrame(
        {
            "key": pl.from_arrow(batch.columns[field]),
            "date": pl.from_arrow(batch.columns[date]),
            "id": pl.from_arrow(batch.columns["_id"]),
        }
    ).with_row_index("at")
    odd = set(batch.suspect_fields[field] | batch.suspect_fields[date])
    odd |= batch.suspect_fields["_id"]
    # str(None) is "None": a null key or _id is read by the row rule too.
    odd.update(frame.filter(pl.col("key").is_null() | pl.col("id").is_null())["at"].to_list())
    clean = frame
    odd_keys: set[str] = set()
    if odd:
        odd_keys = {str(batch.doc(at).get(field)) for at in odd}
        clean = frame.filter(
            ~pl.col("at").is_in(pl.Series(sorted(odd), dtype=pl.UInt32))
            & ~pl.col("key").is_in(pl.Series(sorted(odd_keys), dtype=pl.String))
        )
    best = clean.sort(["key", "date", "id"], nulls_last=True, maintain_order=True).unique(
        "key", keep="first", maintain_order=True
    )
    position: dict[str, int] = dict(zip(best["key"].to_list(), best["at"].to_list(), strict=True))
    if odd_keys:
        candidates: dict[str, list[int]] = {}
        for at, value in enumerate(batch.values(field)):
            key = str(value)
            if key in odd_keys:
                candidates.setdefault(key, []).append(at)
        for key, ats in candidates.items():
            docs = [batch.doc(at) for at in ats]
            chosen = choose(docs)
            position[key] = next(at for at, doc in zip(ats, docs, strict=True) if doc is chosen)
    return position
