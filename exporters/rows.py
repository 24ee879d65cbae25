"""From source batches to joined, filtered rows: grouping, expansion, batched joins.

The per-document work (folds, expansion, filters) runs in a worker thread, a batch at a
time, so that a running export leaves the event loop to views and heartbeats; only the
look-ups, which wait on the database, run on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from core.deps import Doc, DocumentSource
from exporters.spec import ExportContext, ExportSpec, GroupConsecutive, Join, Row


async def grouped(
    batches: AsyncIterator[list[Doc]], group: GroupConsecutive
) -> AsyncIterator[list[Doc]]:
    """Fold runs of documents with the same key (the source is sorted by it), across batches."""
    run = _Run(group)
    async for batch in batches:
        folded = await asyncio.to_thread(run.fold, batch)
        if folded:
            yield folded
    if run.pending:
        yield [await asyncio.to_thread(group.fold, run.key, run.pending)]


class _Run:
    """The run of documents with one key that a batch left open (it may go on in the next)."""

    def __init__(self, group: GroupConsecutive) -> None:
        self._group = group
        self.key: Any = None
        self.pending: list[Doc] = []

    def fold(self, batch: list[Doc]) -> list[Doc]:
        """The runs this batch closes, folded."""
        folded: list[Doc] = []
        for doc in batch:
            key = doc.get(self._group.key)
            if self.pending and key != self.key:
                folded.append(self._group.fold(self.key, self.pending))
                self.pending = []
            self.key = key
            self.pending.append(doc)
        return folded


class Joiner:
    """Runs a spec's joins over a batch of rows with one look-up per join."""

    def __init__(self, joins: Sequence[Join], source: DocumentSource, ctx: ExportContext) -> None:
        self._joins = joins
        self._source = source
        self._caches: dict[str, dict[str, Doc | None]] = {j.name: {} for j in joins if j.cached}
        for join in joins:
            if join.cached and join.collection == "markets" and join.field == "_id":
                self._caches[join.name].update(ctx.markets)

    async def apply(self, rows: list[Row]) -> list[Row]:
        for join in self._joins:
            keys = {k for k in (join.key(r) for r in rows) if isinstance(k, str)}
            found = await self._lookup(join, keys) if keys else {}
            for row in rows:
                key = join.key(row)
                row[join.name] = found.get(key) if isinstance(key, str) else None
        return rows

    async def _fetch(self, join: Join, keys: set[str]) -> dict[str, Doc]:
        if join.field == "_id":
            return await self._source.find_by_ids(join.collection, keys, projection=join.projection)
        matches: dict[str, list[Doc]] = {}
        for doc in await self._source.find_in(
            join.collection, join.field, keys, projection=join.projection
        ):
            matches.setdefault(str(doc.get(join.field)), []).append(doc)
        choose = join.choose or (lambda docs: docs[0])
        return {key: choose(docs) for key, docs in matches.items()}

    async def _lookup(self, join: Join, keys: set[str]) -> Mapping[str, Doc | None]:
        if not join.cached:
            return await self._fetch(join, keys)
        cache = self._caches[join.name]
        missing = keys - cache.keys()
        if missing:
            fetched = await self._fetch(join, missing)
            for key in missing:
                cache[key] = fetched.get(key)
        return cache


class RowBuilder:
    """Turns source documents into the rows to write, counting skipped source documents."""

    def __init__(self, spec: ExportSpec, ctx: ExportContext, source: DocumentSource) -> None:
        self._spec = spec
        self._ctx = ctx
        self._joiner = Joiner(spec.joins, source, ctx)
        self._required = tuple(j.name for j in spec.joins if j.required)
        self._required_if_set = tuple((j.name, j.key) for j in spec.joins if j.required_if_set)
        self.skipped = 0

    def _missing_required(self, row: Row) -> bool:
        if any(row.get(name) is None for name in self._required):
            return True
        return any(
            row.get(name) is None and key(row) not in (None, "")
            for name, key in self._required_if_set
        )

    async def build(self, docs: list[Doc], keep: Callable[[Row], bool] | None = None) -> list[Row]:
        """Rows of these documents; `keep` (a pass filter) is applied before any look-up."""
        rows = await asyncio.to_thread(self._expanded, docs, keep)
        rows = await self._joiner.apply(rows)
        return await asyncio.to_thread(self._kept, rows)

    def _expanded(self, docs: list[Doc], keep: Callable[[Row], bool] | None) -> list[Row]:
        base = {"campaign": self._ctx.campaign, "params": self._ctx.params}
        rows = [{**base, "doc": doc, "marketId": doc.get("marketId")} for doc in docs]
        if keep is not None:
            rows = [row for row in rows if keep(row)]
        return [expanded for row in rows for expanded in self._spec.expand(row)]

    def _kept(self, rows: list[Row]) -> list[Row]:
        """The rows to write; counts the source documents skipped for a missing required join."""
        spec = self._spec
        kept: list[Row] = []
        skipped_docs: set[int] = set()
        for row in rows:
            if self._missing_required(row):
                skipped_docs.add(id(row["doc"]))
            elif spec.where is None or spec.where(row):
                kept.append(row)
        self.skipped += len(skipped_docs)
        return kept
