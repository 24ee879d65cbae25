"""The engine: streams any ExportSpec from the document source through CSV into S3."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from core.deps import Doc, DocumentSource, ObjectStore, RawDocumentSource
from core.errors import CampaignNotFound, InvalidParams, NoMarketsFound
from core.models import StoredObject
from core.read_ahead import read_ahead
from exporters.columnar import ColumnarBatches, ColumnarPlan, plan_or_reason
from exporters.exclusions import Exclusion, ExclusionPass
from exporters.options import RunOptions as RunOptions
from exporters.outputs import Output, open_output
from exporters.outputs import planned_keys as planned_keys
from exporters.outputs import staging_prefix as staging_prefix
from exporters.reply_chunks import coalesced
from exporters.rows import RowBuilder, grouped
from exporters.spec import ExportContext, ExportSpec, Row

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    row_count: int
    skipped_count: int
    # Source documents read so far (across passes), and how many passes read the source:
    # what the time left is estimated from (core/progress.py).
    documents_read: int = 0
    passes: int = 1


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


async def check_request(
    spec: ExportSpec, source: DocumentSource, *, campaign_id: str, params: Mapping[str, Any] | None
) -> None:
    """Raise the request-time errors of SPEC §4 (bad params, unknown campaign, no markets).

    What a request waits for before it is answered: the campaign and one of its markets are
    asked for at once, and the markets are not read (the run reads them in `load_context`,
    and fails then if they vanished meanwhile).
    """
    parse_params(spec, params)
    campaign, market = await asyncio.gather(
        source.find_one("campaigns", {"_id": campaign_id}),
        source.find_one("markets", {"campaignId": campaign_id})
        if spec.requires_markets
        else _nothing(),
    )
    if campaign is None:
        raise CampaignNotFound(campaign_id=campaign_id)
    if spec.requires_markets and market is None:
        raise NoMarketsFound(campaign_id=campaign_id)


async def _nothing() -> None:
    return None


async def count_source(spec: ExportSpec, ctx: ExportContext, source: DocumentSource) -> int:
    """The preliminary count (`totalCount`): source documents, before expansion and joins."""
    return await source.count(spec.source.collection, spec.source.query(ctx))


class _Progress:
    def __init__(self, callback: ProgressCallback | None, options: RunOptions) -> None:
        self._callback = callback
        self._every_s = options.progress_interval_seconds
        self._every_rows = options.progress_interval_rows
        self._last_time = time.monotonic()
        self._last_rows = 0

    async def maybe_report(self, rows: int, skipped: int, documents: int, passes: int = 1) -> None:
        now = time.monotonic()
        if self._callback is None:
            return
        if rows - self._last_rows >= self._every_rows or now - self._last_time >= self._every_s:
            self._last_rows, self._last_time = rows, now
            await self._callback(Progress(rows, skipped, documents, passes))


async def run_export(
    spec: ExportSpec,
    ctx: ExportContext,
    *,
    source: DocumentSource,
    store: ObjectStore,
    options: RunOptions,
    on_progress: ProgressCallback | None = None,
) -> ExportResult:
    """Stream the export; on any error or cancellation every upload is aborted, then re-raised."""
    destination = options.destination(spec)
    bucket = destination.bucket
    output = await open_output(spec, ctx, store, options, destination)
    progress = _Progress(on_progress, options)
    plan = _plan(spec) if options.engine == "columnar" else None
    try:
        if isinstance(plan, ColumnarPlan) and isinstance(source, RawDocumentSource):
            skipped = await _write_columnar(
                plan, ctx, source, source, store, output, options, progress
            )
        else:
            skipped = await _write_rows(spec, ctx, source, store, output, options, progress)
        objects = await output.close()
    except BaseException:
        await _abort(output, ctx)
        raise
    return ExportResult(
        bucket=bucket,
        objects=tuple(objects),
        row_count=output.rows_written,
        skipped_count=skipped,
    )


async def _write_columnar(
    plan: ColumnarPlan,
    ctx: ExportContext,
    source: DocumentSource,
    raw_source: RawDocumentSource,
    store: ObjectStore,
    output: Output,
    options: RunOptions,
    progress: _Progress,
) -> int:
    """Every row through the columnar engine; the skipped source documents."""
    spec = plan.spec
    columnar = ColumnarBatches(plan, ctx, source, raw_source)
    async for one_pass in _passes(spec, ctx, store, options):
        columnar.exclusion = one_pass
        passes = 1 if one_pass is None else one_pass.partitions
        async with aclosing(
            raw_source.find_raw(
                spec.source.collection,
                spec.source.query(ctx),
                batch_size=options.columnar_batch_size,
                sort=spec.source.sort or None,
            )
        ) as replies:
            chunks = (
                coalesced(replies, options.columnar_chunk_bytes)
                if plan.fold is None
                else plan.fold.whole_runs(replies, options.columnar_chunk_bytes)
            )
            encoded = _encoded(chunks, columnar, options.columnar_in_flight)
            async with aclosing(
                read_ahead(encoded, options.pipeline_depth, name="export-columnar")
            ) as batches:
                async for batch in batches:
                    await output.write_columnar(batch)
                    await progress.maybe_report(
                        output.rows_written, columnar.skipped, columnar.documents, passes
                    )
    return columnar.skipped


async def _write_rows(
    spec: ExportSpec,
    ctx: ExportContext,
    source: DocumentSource,
    store: ObjectStore,
    output: Output,
    options: RunOptions,
    progress: _Progress,
) -> int:
    """Every row through the row engine; the skipped source documents."""
    builder = RowBuilder(spec, ctx, source)
    documents = 0  # source documents read by the passes before this one
    async for one_pass in _passes(spec, ctx, store, options):
        keep = None if one_pass is None else one_pass.keep
        passes = 1 if one_pass is None else one_pass.partitions
        async with aclosing(
            source.find(
                spec.source.collection,
                spec.source.query(ctx),
                batch_size=options.batch_size,
                sort=spec.source.sort or None,
            )
        ) as batches:
            read = _Counted(batches)
            docs: AsyncIterator[list[Doc]] = grouped(read, spec.group) if spec.group else read
            # The database answers the next batches' joins while this process formats and
            # uploads the batch before them.
            joined = _joined(docs, builder, keep)
            async with aclosing(
                read_ahead(joined, options.pipeline_depth, name="export-joins")
            ) as rows:
                async for batch_rows in rows:
                    await output.write(batch_rows)
                    await progress.maybe_report(
                        output.rows_written, builder.skipped, documents + read.count, passes
                    )
                    # Writing a batch is CPU work: give heartbeats and views a turn.
                    await asyncio.sleep(0)
        documents += read.count
    return builder.skipped


class _Counted:
    """The source's batches as they come, counting their documents: what `totalCount`
    counts, before a spec's fold (one fanlist row per user) changes the number."""

    def __init__(self, batches: AsyncIterator[list[Doc]]) -> None:
        self._batches = batches
        self.count = 0

    def __aiter__(self) -> _Counted:
        return self

    async def __anext__(self) -> list[Doc]:
        batch = await anext(self._batches)
        self.count += len(batch)
        return batch


async def _abort(output: Output, ctx: ExportContext) -> None:
    try:
        await asyncio.shield(output.abort())
    except Exception:
        # The export's own error is what the caller must see; the abort failure is logged.
        logger.exception("aborting the outputs of export %s failed", ctx.export_id)


@functools.cache
def _plan(spec: ExportSpec) -> ColumnarPlan | str:
    return plan_or_reason(spec)


_Encoded = TypeVar("_Encoded", covariant=True)
_Batch = TypeVar("_Batch")


class _ChunkEncoder(Protocol[_Encoded]):
    async def encode(self, raw: bytes) -> _Encoded: ...


async def _encoded(
    chunks: AsyncIterator[bytes], columnar: _ChunkEncoder[_Batch], in_flight: int
) -> AsyncGenerator[_Batch, None]:
    """Each chunk's encoded batch, in order, with up to `in_flight` chunks encoded at once.

    One at a time, the database idles while this process decodes a chunk and writes its
    cells, and this process idles while the database answers the chunk's look-ups and its
    next replies. Two at a time, one chunk's look-ups overlap the other's CPU work, and the
    source keeps being read meanwhile.
    """
    running: deque[asyncio.Task[_Batch]] = deque()
    try:
        async for raw in chunks:
            running.append(asyncio.ensure_future(columnar.encode(raw)))
            if len(running) >= in_flight:
                yield await running.popleft()
        while running:
            yield await running.popleft()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _joined(
    docs: AsyncIterator[list[Doc]],
    builder: RowBuilder,
    keep: Callable[[Row], bool] | None,
) -> AsyncGenerator[list[Row], None]:
    """The built rows of each batch (the engine reads them ahead: see run_export)."""
    async for batch in docs:
        yield await builder.build(batch, keep)


async def _passes(
    spec: ExportSpec, ctx: ExportContext, store: ObjectStore, options: RunOptions
) -> AsyncIterator[ExclusionPass | None]:
    """One pass over the source, or one per partition of a large exclusion list."""
    if spec.exclude is None:
        yield None
        return
    exclusion = Exclusion(spec.exclude, ctx, store, options.bucket_names[spec.exclude.bucket])
    for one_pass in await exclusion.passes(options.exclusion_max_ids):
        await exclusion.load(one_pass)  # replaces the previous pass's ids: one set at a time
        yield one_pass
