"""Outputs: where formatted rows go for each layout (one CSV, a CSV per group, a ZIP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.deps import ObjectStore
from core.models import StoredObject
from exporters.cell_frames import (
    ColumnarBatch,
    EncodedBatch,
    GroupedCells,
    frame_csv,
    group_pieces,
    member_pieces,
)
from exporters.cells import compile_cells
from exporters.csv_encoding import encode_rows
from exporters.naming import object_key, safe_part
from exporters.options import Destination, RunOptions
from exporters.sink import ObjectSink
from exporters.spec import CsvFile, CsvPerGroup, ExportContext, ExportSpec, Row, ZipOfCsv
from exporters.zip_stream import ZipStreamWriter

logger = logging.getLogger(__name__)

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
ZIP_CONTENT_TYPE = "application/zip"


class Output(Protocol):
    rows_written: int

    async def write(self, rows: list[Row]) -> None: ...

    async def write_columnar(self, batch: ColumnarBatch) -> None:
        """A batch the columnar engine made for this output's layout."""

    async def close(self) -> list[StoredObject]: ...

    async def abort(self) -> None: ...


class _Cells:
    """The spec's columns as one generated row -> cells function, and the encoded header."""

    def __init__(self, spec: ExportSpec) -> None:
        self._cells = compile_cells(spec.columns)
        self.header = encode_rows([spec.header])

    def __call__(self, rows: Sequence[Row]) -> list[list[str]]:
        return self._cells(rows)

    def encode(self, rows: Sequence[Row]) -> bytes:
        """The rows' CSV lines (CPU work: callers run it in a thread, off the event loop)."""
        return encode_rows(self._cells(rows))


SinkOpener = Callable[[str, str], Awaitable[ObjectSink]]


def sink_opener(store: ObjectStore, options: RunOptions, destination: Destination) -> SinkOpener:
    async def open_sink(key: str, content_type: str) -> ObjectSink:
        upload = await store.start_upload(
            destination.bucket, key, content_type=content_type, acl=destination.acl
        )
        return ObjectSink(upload, part_size=options.part_size, max_in_flight=options.max_in_flight)

    return open_sink


async def _abort_all(sinks: Sequence[ObjectSink]) -> None:
    for sink in sinks:
        try:
            await sink.abort()
        except Exception:
            logger.exception("aborting the upload of %s failed", sink.key)


class SingleCsv:
    """Every row in one CSV object."""

    def __init__(self, sink: ObjectSink, cells: _Cells) -> None:
        self._sink = sink
        self._cells = cells
        self.rows_written = 0

    @classmethod
    async def open(cls, key: str, cells: _Cells, open_sink: SinkOpener) -> SingleCsv:
        sink = await open_sink(key, CSV_CONTENT_TYPE)
        output = cls(sink, cells)
        try:
            await sink.write(cells.header)
        except BaseException:
            await _abort_all([sink])
            raise
        return output

    async def write(self, rows: list[Row]) -> None:
        if rows:
            await self._sink.write(await asyncio.to_thread(self._cells.encode, rows))
            self.rows_written += len(rows)

    async def write_columnar(self, batch: ColumnarBatch) -> None:
        """CSV lines the columnar engine encoded."""
        if not isinstance(batch, EncodedBatch):
            raise TypeError("one CSV is written from encoded lines, not grouped cells")
        if batch.rows:
            await self._sink.write(batch.data)
            self.rows_written += batch.rows

    async def close(self) -> list[StoredObject]:
        return [await self._sink.close()]

    async def abort(self) -> None:
        await _abort_all([self._sink])


class CsvPerGroupOutput:
    """A CSV object per group, each upload opened when its group's first row arrives."""

    def __init__(
        self, layout: CsvPerGroup, ctx: ExportContext, cells: _Cells, open_sink: SinkOpener
    ) -> None:
        self._layout = layout
        self._ctx = ctx
        self._cells = cells
        self._open_sink = open_sink
        self._sinks: dict[str, ObjectSink] = {}
        self.rows_written = 0

    def _encode_by_group(self, rows: list[Row]) -> dict[str, tuple[bytes, int]]:
        by_group: dict[str, list[Row]] = {}
        for row in rows:
            by_group.setdefault(self._layout.group(row), []).append(row)
        return {
            group: (self._cells.encode(members), len(members))
            for group, members in by_group.items()
        }

    async def write(self, rows: list[Row]) -> None:
        await self._write_groups(await asyncio.to_thread(self._encode_by_group, rows))

    async def write_columnar(self, batch: ColumnarBatch) -> None:
        """Rows the columnar engine made cells of, with their groups."""
        if not isinstance(batch, GroupedCells):
            raise TypeError("a grouped layout is written from grouped cells")
        cells = batch
        if cells.rows:
            await self._write_groups(await asyncio.to_thread(_encode_pieces, cells))

    async def _write_groups(self, encoded: dict[str, tuple[bytes, int]]) -> None:
        for group, (data, count) in encoded.items():
            sink = self._sinks.get(group)
            if sink is None:
                sink = await self._open_sink(
                    self._layout.object_key(self._ctx, group), CSV_CONTENT_TYPE
                )
                self._sinks[group] = sink
                await sink.write(self._cells.header)
            await sink.write(data)
            self.rows_written += count

    async def close(self) -> list[StoredObject]:
        return [await self._sinks[group].close() for group in sorted(self._sinks)]

    async def abort(self) -> None:
        await _abort_all(list(self._sinks.values()))


@dataclass
class _Member:
    name: str
    chunks: list[str] = field(default_factory=list)
    buffer: bytearray = field(default_factory=bytearray)


class ZipOutput:
    """One ZIP of CSV members, built in two steps so that rows may come in any order.

    Rows are appended to their member's buffer; when all buffers together pass the
    staging budget, the largest is written to S3 as a staging chunk (a small object beside
    the export). At the end the archive is streamed into its multipart upload member by
    member, each member read back from its chunks, and the chunks are deleted. Memory is
    the staging budget plus the upload's parts, whatever the row count or member count.
    """

    def __init__(
        self,
        layout: ZipOfCsv,
        ctx: ExportContext,
        cells: _Cells,
        store: ObjectStore,
        options: RunOptions,
        destination: Destination,
        *,
        zip_key: str,
        staging_prefix: str,
    ) -> None:
        self._layout = layout
        self._ctx = ctx
        self._cells = cells
        self._store = store
        self._options = options
        self._bucket = destination.bucket
        self._destination = destination
        self._zip_key = zip_key
        self._staging_prefix = staging_prefix
        self._limit = layout.limit_per_group(ctx) if layout.limit_per_group else None
        self._group_rows: dict[str, int] = {}
        self._members: dict[tuple[str, int], _Member] = {}
        self._buffered = 0
        self._chunk_count = 0
        self._sink: ObjectSink | None = None
        self.rows_written = 0

    def _member_for(self, group: str) -> _Member | None:
        written = self._group_rows.get(group, 0)
        if self._limit is not None and written >= self._limit:
            return None
        self._group_rows[group] = written + 1
        split = self._options.max_rows_per_file if self._layout.split else 0
        return self._member(group, written // split + 1 if split else 1)

    def _member(self, group: str, number: int) -> _Member:
        member = self._members.get((group, number))
        if member is None:
            member = _Member(self._layout.member(group, number))
            member.buffer += self._cells.header
            self._buffered += len(self._cells.header)
            self._members[(group, number)] = member
        return member

    def _append(self, rows: list[Row]) -> None:
        """The rows' CSV lines appended to their members' buffers (in a thread: the writes
        of one output come one at a time, so nothing else touches the buffers meanwhile)."""
        by_member: dict[int, tuple[_Member, list[Row]]] = {}
        for row in rows:
            member = self._member_for(self._layout.group(row))
            if member is not None:
                by_member.setdefault(id(member), (member, []))[1].append(row)
        for member, members_rows in by_member.values():
            data = self._cells.encode(members_rows)
            member.buffer += data
            self._buffered += len(data)
            self.rows_written += len(members_rows)

    def _append_grouped(self, cells: GroupedCells) -> None:
        """`_append` for rows the columnar engine made cells of (in a thread, likewise)."""
        split = self._options.max_rows_per_file if self._layout.split else 0
        pieces = member_pieces(cells, self._group_rows, split=split, limit=self._limit)
        for piece in pieces:
            member = self._member(piece.group, piece.number)
            data = frame_csv(piece.frame)
            member.buffer += data
            self._buffered += len(data)
            self._group_rows[piece.group] = self._group_rows.get(piece.group, 0) + piece.rows
            self.rows_written += piece.rows

    async def write(self, rows: list[Row]) -> None:
        await asyncio.to_thread(self._append, rows)
        await self._stage_over_budget()

    async def write_columnar(self, batch: ColumnarBatch) -> None:
        """Rows the columnar engine made cells of, with their groups."""
        if not isinstance(batch, GroupedCells):
            raise TypeError("a grouped layout is written from grouped cells")
        cells = batch
        if cells.rows:
            await asyncio.to_thread(self._append_grouped, cells)
            await self._stage_over_budget()

    async def _stage_over_budget(self) -> None:
        while self._buffered > self._options.staging_buffer_bytes:
            await self._stage(max(self._members.values(), key=lambda m: len(m.buffer)))

    async def _stage(self, member: _Member) -> None:
        if not member.buffer:
            return
        key = f"{self._staging_prefix}{self._chunk_count:08d}"
        self._chunk_count += 1
        data = bytes(member.buffer)
        await self._store.put_object(self._bucket, key, data, content_type="text/csv")
        member.chunks.append(key)
        self._buffered -= len(member.buffer)
        member.buffer.clear()

    async def _member_bytes(self, member: _Member) -> AsyncIterator[bytes]:
        for key in member.chunks:
            async for chunk in self._store.iter_object(self._bucket, key):
                yield chunk
        if member.buffer:
            yield bytes(member.buffer)

    async def close(self) -> list[StoredObject]:
        self._sink = await sink_opener(self._store, self._options, self._destination)(
            self._zip_key, ZIP_CONTENT_TYPE
        )
        writer = ZipStreamWriter(self._sink, modified=self._ctx.started_at)
        for member in sorted(self._members.values(), key=lambda m: m.name):
            await writer.add(member.name, self._member_bytes(member))
            member.buffer.clear()
        await writer.close()
        stored = await self._sink.close()
        await self._delete_staging()
        return [stored]

    async def _delete_staging(self) -> None:
        keys = [key for m in self._members.values() for key in m.chunks]
        if keys:
            await self._store.delete_objects(self._bucket, keys)

    async def abort(self) -> None:
        if self._sink is not None:
            await _abort_all([self._sink])
        try:
            await self._delete_staging()
        except Exception:
            logger.exception("deleting the staging chunks under %s failed", self._staging_prefix)


def _encode_pieces(cells: GroupedCells) -> dict[str, tuple[bytes, int]]:
    """Each group's CSV lines and row count, groups in order of their first row."""
    return {piece.group: (frame_csv(piece.frame), piece.rows) for piece in group_pieces(cells)}


def staging_prefix(spec: ExportSpec, ctx: ExportContext) -> str:
    """Where a ZIP export keeps its staging chunks (deleted when it ends)."""
    return object_key(spec.name, ctx.campaign_id, ctx.export_id, ".staging") + "/"


def planned_keys(spec: ExportSpec, ctx: ExportContext) -> list[str]:
    """The object keys a run may write, for layouts whose keys are known in advance."""
    layout = spec.layout
    if isinstance(layout, CsvFile):
        return [object_key(spec.name, ctx.campaign_id, ctx.export_id, layout.file_name(ctx))]
    if isinstance(layout, ZipOfCsv):
        return [object_key(spec.name, ctx.campaign_id, ctx.export_id, layout.zip_name(ctx))]
    return [layout.object_key(ctx, group) for group in layout.known_groups]


async def open_output(
    spec: ExportSpec,
    ctx: ExportContext,
    store: ObjectStore,
    options: RunOptions,
    destination: Destination,
) -> Output:
    cells = _Cells(spec)
    layout = spec.layout
    if isinstance(layout, CsvFile):
        (key,) = planned_keys(spec, ctx)
        return await SingleCsv.open(key, cells, sink_opener(store, options, destination))
    if isinstance(layout, CsvPerGroup):
        return CsvPerGroupOutput(layout, ctx, cells, sink_opener(store, options, destination))
    (zip_key,) = planned_keys(spec, ctx)
    return ZipOutput(
        layout,
        ctx,
        cells,
        store,
        options,
        destination,
        zip_key=zip_key,
        staging_prefix=staging_prefix(spec, ctx),
    )


def zip_member(*parts: str) -> str:
    """A ZIP entry name from data-derived parts, each sanitised (no traversal)."""
    return "/".join(safe_part(p, fallback="unknown") for p in parts)
