"""The columnar form of the promoters expansion: an entry's rows from its typed columns."""

from __future__ import annotations

from typing import Any

import polars as pl

from exporters.bson_columns import TypedBatch
from exporters.joins import EntryPromoters, entry_promoters


def promoter_rows(docs: TypedBatch) -> tuple[list[int], list[Any]]:
    """Each row's entry and promoter id, as `entry_promoters` lists them: the distinct
    non-empty string ids of the entry's `optIns.promoterIds`, in list order.

    Entries whose list is exact are expanded by polars; those suspect in it (a lone id, an
    item of another type) by `entry_promoters` itself over the decoded entry.
    """
    field = EntryPromoters.reads[0]
    # `entry_promoters` reads the list through `as_list`: a lone id is a list of one.
    suspect = sorted(docs.list_suspect(field))
    frame = pl.DataFrame({"id": pl.from_arrow(docs.columns[field])}).with_row_index("doc")
    if suspect:
        frame = frame.filter(~pl.col("doc").is_in(pl.Series(suspect, dtype=pl.UInt32)))
    # An entry without the list (or without optIns, or whose optIns is not a document) has a
    # null list, which explodes into a null id: no row, as on the row engine.
    parts = [
        frame.explode("id")
        .filter(pl.col("id").is_not_null() & (pl.col("id") != ""))
        .unique(subset=["doc", "id"], keep="first", maintain_order=True)
    ]
    if suspect:
        rows: dict[str, list[Any]] = {"doc": [], "id": []}
        for index in suspect:
            for row in entry_promoters({"doc": docs.doc(index)}):
                rows["doc"].append(index)
                rows["id"].append(row[EntryPromoters.adds])
        parts.append(pl.DataFrame(rows, schema={"doc": pl.UInt32, "id": pl.String}))
    # A stable sort by entry puts a suspect entry's rows in its place, each entry's in order.
    table = pl.concat(parts).sort("doc", maintain_order=True)
    return table["doc"].to_list(), table["id"].to_list()
