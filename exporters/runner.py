"""The engine: streams any ExportSpec from the document source through CSV into S3."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from core.deps import Doc, DocumentSource, ObjectStore
from core.errors import CampaignNotFound, InvalidParams, NoMarketsFound
from core.models import StoredObject
from exporters.csv_encoding import encode_rows
from exporters.formatting import format_cell
from exporters.naming import object_key
from exporters.sink import ObjectSink
from exporters.spec import ExportContext, ExportSpec, Join, Row

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Engine knobs, taken from settings by the caller."""

    bucket_names: Mapping[str, str]
    acl_disabled_buckets: frozenset[str] = frozenset()
    batch_size: int = 1000
    part_size: int = 8 * 1024 * 1024
    max_in_flight: int = 2
    progress_interval_seconds: float = 1.0
    progress_interval_rows: int = 10_000


@dataclass(frozen=True)
class Progress:
    row_count: int
    skipped_count: int


@dataclass(frozen=True)
class ExportResult:
    bucket: str
    objects: tuple[StoredObject, ...]
    row_count: int
    skipped_count: int


ProgressCallback = Callable[[Progress], Awaitable[None]]


def parse_params(spec: ExportSpec, params: Mapping[str, Any] | None) -> BaseModel:
    """Validate request parameters against the spec's model (400 INVALID_PARAMS)."""
    try:
        return spec.params.model_validate(dict(params or {}))
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        raise InvalidParams(f"invalid params for {spec.name}", details={"errors": errors}) from exc


async def load_context(
    spec: ExportSpec,
    source: DocumentSource,
    *,
    export_id: str,
    campaign_id: str,
    params: Mapping[str, Any] | None,
) -> ExportContext:
    """Campaign, its markets and parsed params; raises the request-time errors of SPEC §4."""
    parsed = parse_params(spec, params)
    campaign = await source.find_one("campaigns", {"_id": campaign_id})
    if campaign is None:
        raise CampaignNotFound(campaign_id=campaign_id)
    markets: dict[str, Doc] = {}
    async with aclosing(source.find("markets", {"campaignId": campaign_id})) as batches:
        async for batch in batches:
            markets.update((str(m["_id"]), m) for m in batch)
    if spec.requires_markets and not markets:
        raise NoMarketsFound(campaign_id=campaign_id)
    return ExportContext(export_id=export_id, campaign=campaign, markets=markets, params=parsed)


def planned_keys(spec: ExportSpec, ctx: ExportContext) -> list[str]:
    """The object keys a run of this export writes (the same on every attempt)."""
    return [object_key(spec.name, ctx.campaign_id, ctx.export_id, spec.layout.file_name(ctx))]


async def count_source(spec: ExportSpec, ctx: ExportContext, source: DocumentSource) -> int:
    """The preliminary count (`totalCount`): source documents, before expansion and joins."""
    return await source.count(spec.source.collection, spec.source.query(ctx))


class _Joiner:
    """Runs a spec's joins over a batch of rows with one look-up per join."""

    def __init__(self, joins: Sequence[Join], source: DocumentSource, ctx: ExportContext) -> None:
        self._joins = joins
        self._source = source
        self._caches: dict[str, dict[str, Doc | None]] = {j.name: {} for j in joins if j.cached}
        if "markets" in {j.collection for j in joins if j.cached}:
            for join in joins:
                if join.collection == "markets" and join.cached:
                    self._caches[join.name].update(ctx.markets)

    async def apply(self, rows: list[Row]) -> list[Row]:
        for join in self._joins:
            keys = {k for k in (join.key(r) for r in rows) if isinstance(k, str)}
            found = await self._lookup(join, keys)
            for row in rows:
                key = join.key(row)
                row[join.name] = found.get(key) if isinstance(key, str) else None
        return rows

    async def _lookup(self, join: Join, keys: set[str]) -> Mapping[str, Doc | None]:
        if not join.cached:
            return await self._source.find_by_ids(join.collection, keys, projection=join.projection)
        cache = self._caches[join.name]
        missing = keys - cache.keys()
        if missing:
            fetched = await self._source.find_by_ids(
                join.collection, missing, projection=join.projection
            )
            for key in missing:
                cache[key] = fetched.get(key)
        return cache


class _RowBuilder:
    """Turns source batches into formatted cells, counting skipped source documents."""

    def __init__(self, spec: ExportSpec, ctx: ExportContext, source: DocumentSource) -> None:
        self._spec = spec
        self._ctx = ctx
        self._joiner = _Joiner(spec.joins, source, ctx)
        self._required = tuple(j.name for j in spec.joins if j.required)
        self._getters = tuple(c.get for c in spec.columns)
        self.skipped = 0

    async def build(self, docs: list[Doc]) -> list[list[str]]:
        spec = self._spec
        base = {"campaign": self._ctx.campaign, "params": self._ctx.params}
        rows = [
            expanded
            for doc in docs
            for expanded in spec.expand({**base, "doc": doc, "marketId": doc.get("marketId")})
        ]
        rows = await self._joiner.apply(rows)
        kept: list[Row] = []
        skipped_docs: set[int] = set()
        for row in rows:
            if any(row.get(name) is None for name in self._required):
                skipped_docs.add(id(row["doc"]))
                continue
            if spec.where is None or spec.where(row):
                kept.append(row)
        self.skipped += len(skipped_docs)
        getters = self._getters
        fmt = format_cell
        # The hottest loop of an export: most cells are already strings.
        return [
            [v if type(v) is str else fmt(v) for v in [get(row) for get in getters]] for row in kept
        ]


class _Progress:
    def __init__(self, callback: ProgressCallback | None, options: RunOptions) -> None:
        self._callback = callback
        self._every_s = options.progress_interval_seconds
        self._every_rows = options.progress_interval_rows
        self._last_time = time.monotonic()
        self._last_rows = 0

    async def maybe_report(self, rows: int, skipped: int) -> None:
        now = time.monotonic()
        if self._callback is None:
            return
        if rows - self._last_rows >= self._every_rows or now - self._last_time >= self._every_s:
            self._last_rows, self._last_time = rows, now
            await self._callback(Progress(rows, skipped))


async def run_export(
    spec: ExportSpec,
    ctx: ExportContext,
    *,
    source: DocumentSource,
    store: ObjectStore,
    options: RunOptions,
    on_progress: ProgressCallback | None = None,
) -> ExportResult:
    """Stream the export; on any error or cancellation the upload is aborted, then re-raised."""
    bucket = options.bucket_names[spec.bucket]
    acl = None if bucket in options.acl_disabled_buckets else spec.acl
    (key,) = planned_keys(spec, ctx)
    upload = await store.start_upload(bucket, key, content_type=CSV_CONTENT_TYPE, acl=acl)
    sink = ObjectSink(upload, part_size=options.part_size, max_in_flight=options.max_in_flight)
    builder = _RowBuilder(spec, ctx, source)
    progress = _Progress(on_progress, options)
    row_count = 0
    try:
        await sink.write(encode_rows([spec.header]))
        query = spec.source.query(ctx)
        async with aclosing(
            source.find(spec.source.collection, query, batch_size=options.batch_size)
        ) as batches:
            async for docs in batches:
                cells = await builder.build(docs)
                if cells:
                    await sink.write(encode_rows(cells))
                    row_count += len(cells)
                await progress.maybe_report(row_count, builder.skipped)
                # Formatting a batch is CPU work: give heartbeats and views a turn.
                await asyncio.sleep(0)
        stored = await sink.close()
    except BaseException:
        try:
            await asyncio.shield(sink.abort())
        except Exception:
            # The export's own error is what the caller must see; the abort failure is logged.
            logger.exception("aborting the upload of %s failed", key)
        raise
    return ExportResult(
        bucket=bucket, objects=(stored,), row_count=row_count, skipped_count=builder.skipped
    )
