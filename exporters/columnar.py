"""The columnar engine: a spec's rows from raw BSON batches to CSV bytes, off the event loop.

Per source batch: the reply is decoded into typed columns (exporters.bson_columns); the
row decisions that depend on a few values (expansion, join keys, required joins, filters)
are made in Python over those values; the cells are whole columns (formatted once per
column, gathered per row) and polars writes the CSV. A row whose documents hold a value
the columns cannot type is built by the row rules (`compile_cells` over a row dict of the
decoded documents) and put in its place, so the bytes are those of the row engine.

Which specs it runs: `columnar_plan` says, with the reason when it cannot (a layout other
than one CSV, a fold, an exclusion list, a column or filter that is a plain function). The
rest run on the row engine (exporters.rows), which stays the reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from core.deps import Doc, DocumentSource, RawDocumentSource
from exporters.bson_columns import BatchSchema, FieldType, TypedBatch, read_path
from exporters.cells import compile_cells
from exporters.formatting import format_cell
from exporters.joins import EntryMarkets, markets_of
from exporters.source_fields import COLLECTION_FIELDS
from exporters.spec import (
    Column,
    CsvFile,
    Either,
    ExportContext,
    ExportSpec,
    Join,
    Row,
    RowTest,
    identity,
)

_ROW_VALUES = ("marketId", "isPrimaryMarket")
_CONSTANT_ROOTS = ("campaign", "params")


class NotColumnar(Exception):
    """The spec uses something only the row engine runs; the message says what."""


@dataclass(frozen=True)
class _JoinPlan:
    join: Join
    key: tuple[str, ...]
    schema: BatchSchema | None  # None: a cached join, whose documents stay dicts


@dataclass(frozen=True)
class ColumnarPlan:
    """What the columnar engine reads and computes for one spec, checked once."""

    spec: ExportSpec
    source: BatchSchema
    joins: tuple[_JoinPlan, ...]
    expand_markets: bool


def columnar_plan(spec: ExportSpec) -> ColumnarPlan:
    """The spec's plan; raises NotColumnar when a part of it needs the row engine."""
    _check_shape(spec)
    wanted = _Wanted(spec)
    for column in spec.columns:
        for dotted, as_value in _column_paths(column):
            wanted.need(dotted, value=as_value)
    for join in spec.joins:
        wanted.need(join.key_path or "", value=True)
    if isinstance(spec.where, RowTest):
        for dotted in spec.where.paths:
            wanted.need(dotted, value=True)
    expand_markets = isinstance(spec.expand, EntryMarkets)
    if expand_markets:
        wanted.need("doc.additionalMarketIds", value=True)
    plans = tuple(
        _JoinPlan(
            join,
            tuple((join.key_path or "").split(".")),
            None if join.cached else BatchSchema(wanted.fields[join.name]),
        )
        for join in spec.joins
    )
    return ColumnarPlan(spec, BatchSchema(wanted.fields["doc"]), plans, expand_markets)


def _check_shape(spec: ExportSpec) -> None:
    if not isinstance(spec.layout, CsvFile):
        raise NotColumnar(f"layout {type(spec.layout).__name__}")
    if spec.group is not None:
        raise NotColumnar("a fold of consecutive documents")
    if spec.exclude is not None:
        raise NotColumnar("an exclusion list")
    if spec.expand is not identity and not isinstance(spec.expand, EntryMarkets):
        raise NotColumnar("an expansion without a columnar form")
    if spec.where is not None and not isinstance(spec.where, RowTest):
        raise NotColumnar("a filter that is a plain function")
    for join in spec.joins:
        if join.key_path is None or (join.field != "_id" and not join.cached):
            raise NotColumnar(f"join {join.name}: no key path, or not by _id")


class _Wanted:
    """The typed fields each decoded collection needs: the source's ("doc") and each join's."""

    def __init__(self, spec: ExportSpec) -> None:
        self._spec = spec
        self._joins = {join.name: join for join in spec.joins}
        self.fields: dict[str, dict[str, FieldType]] = {"doc": {}}
        for join in spec.joins:
            if not join.cached:
                self.fields[join.name] = {"_id": _known(join.collection, "_id", value=True)}

    def need(self, dotted: str, *, value: bool) -> None:
        root, *rest = dotted.split(".")
        if root in _CONSTANT_ROOTS:
            return
        if root in _ROW_VALUES and not rest:
            # The row's market is the entry's own unless an expansion names another.
            self.need("doc.marketId", value=True)
            return
        field_name = ".".join(rest)
        if root == "doc":
            collection = self._spec.source.collection
        elif root in self._joins:
            if self._joins[root].cached:
                return  # cached documents stay dicts, read by the row rules
            collection = self._joins[root].collection
        else:
            raise NotColumnar(f"path {dotted}")
        self.fields[root][field_name] = _known(collection, field_name, value)


def _column_paths(column: Column) -> list[tuple[str, bool]]:
    """The paths a column reads, and whether as a value (True) or only as a cell (False)."""
    if column.path is not None:
        return [(".".join(column.path), False)]
    if isinstance(column.get, Either):
        return [(column.get.first, True), (column.get.second, True)]
    raise NotColumnar(f"column {column.name} is a plain function")


def _known(collection: str, dotted: str, value: bool) -> FieldType:
    kind = COLLECTION_FIELDS.get(collection, {}).get(dotted)
    if kind is None:
        raise NotColumnar(f"{collection}.{dotted} has no declared type")
    if value and kind is FieldType.DATE:
        raise NotColumnar(f"{collection}.{dotted}: dates are read as cells only")
    return kind


@dataclass(frozen=True)
class EncodedBatch:
    data: bytes
    rows: int


@dataclass
class _Stage:
    """A source batch after decoding: one entry per output row candidate."""

    docs: TypedBatch
    row_doc: list[int]
    row_market: list[Any]
    row_primary: list[bool] | None
    keys: list[list[Any]]
    values: dict[str, list[Any]] = field(default_factory=dict)

    def doc_values(self, dotted: str) -> list[Any]:
        found = self.values.get(dotted)
        if found is None:
            found = self.values[dotted] = self.docs.values(dotted)
        return found


@dataclass
class _Joined:
    """One join's result for a batch: typed documents and each row's index, or cached docs."""

    plan: _JoinPlan
    batch: TypedBatch | None
    index: list[int | None]
    cached: list[Doc | None] | None
    values: dict[str, list[Any]] = field(default_factory=dict)

    def found(self, row: int) -> bool:
        if self.cached is not None:
            return self.cached[row] is not None
        return self.index[row] is not None

    def doc(self, row: int) -> Doc | None:
        if self.cached is not None:
            return self.cached[row]
        at = self.index[row]
        return None if at is None or self.batch is None else self.batch.doc(at)

    def value(self, row: int, parts: Sequence[str]) -> Any:
        if self.cached is not None:
            return read_path(self.cached[row], parts)
        at = self.index[row]
        if at is None or self.batch is None:
            return None
        dotted = ".".join(parts)
        found = self.values.get(dotted)
        if found is None:
            found = self.values[dotted] = self.batch.values(dotted)
        return found[at]

    def suspect(self, row: int) -> bool:
        at = self.index[row] if self.cached is None else None
        return at is not None and self.batch is not None and at in self.batch.suspect


class ColumnarBatches:
    """Turns each raw source batch of one export into CSV bytes; counts skipped documents."""

    def __init__(
        self,
        plan: ColumnarPlan,
        ctx: ExportContext,
        source: DocumentSource,
        raw_source: RawDocumentSource,
    ) -> None:
        self._plan = plan
        self._spec = plan.spec
        self._ctx = ctx
        self._source = source
        self._raw_source = raw_source
        self._reference_cells = compile_cells(plan.spec.columns)
        self._caches: dict[str, dict[str, Doc | None]] = {
            j.join.name: {} for j in plan.joins if j.schema is None
        }
        for j in plan.joins:
            if j.schema is None and j.join.collection == "markets":
                self._caches[j.join.name].update(ctx.markets)
        self._constants: dict[str, str] = {}
        self.skipped = 0

    async def encode(self, raw: bytes) -> EncodedBatch:
        # The CPU work runs in a thread so that heartbeats, timers and views keep their turn;
        # the look-ups between the two halves are awaited on the loop.
        stage = await asyncio.to_thread(self._prepare, raw)
        joined = await asyncio.gather(
            *(
                self._join(plan, keys)
                for plan, keys in zip(self._plan.joins, stage.keys, strict=True)
            )
        )
        return await asyncio.to_thread(self._finish, stage, list(joined))

    # -- before the look-ups ------------------------------------------------------------

    def _prepare(self, raw: bytes) -> _Stage:
        docs = self._plan.source.decode(raw)
        stage = _Stage(docs, [], [], None, [])
        if self._plan.expand_markets:
            primaries = stage.doc_values("marketId")
            additional = stage.doc_values("additionalMarketIds")
            stage.row_primary = []
            for index in range(len(docs)):
                markets = markets_of(primaries[index], additional[index])
                stage.row_doc.extend([index] * len(markets))
                stage.row_market.extend(markets)
                stage.row_primary.append(True)
                stage.row_primary.extend([False] * (len(markets) - 1))
        else:
            stage.row_doc = list(range(len(docs)))
            if "marketId" in self._plan.source.fields:
                stage.row_market = stage.doc_values("marketId")
            else:
                stage.row_market = [None] * len(docs)
        for plan in self._plan.joins:
            stage.keys.append(
                [self._row_value(stage, [], r, plan.key) for r in range(len(stage.row_doc))]
            )
        return stage

    async def _join(self, plan: _JoinPlan, keys: list[Any]) -> _Joined:
        wanted = {key for key in keys if isinstance(key, str)}
        if plan.schema is None:
            cache = self._caches[plan.join.name]
            missing = wanted - cache.keys()
            if missing:
                found = await self._source.find_by_ids(
                    plan.join.collection, missing, projection=plan.join.projection
                )
                for key in missing:
                    cache[key] = found.get(key)
            return _Joined(
                plan, None, [], [cache.get(k) if isinstance(k, str) else None for k in keys]
            )
        if not wanted:
            return _Joined(plan, None, [None] * len(keys), None)
        replies = await self._raw_source.find_in_raw(
            plan.join.collection, "_id", wanted, projection=plan.join.projection
        )
        schema = plan.schema
        batch = await asyncio.to_thread(schema.decode, b"".join(replies))
        ids = batch.values("_id")
        position = {key: at for at, key in enumerate(ids) if isinstance(key, str)}
        index = [position.get(k) if isinstance(k, str) else None for k in keys]
        return _Joined(plan, batch, index, None)

    # -- after the look-ups -------------------------------------------------------------

    def _row_value(
        self, stage: _Stage, joined: Sequence[_Joined], row: int, parts: Sequence[str]
    ) -> Any:
        root, *rest = parts
        if root == "doc":
            return stage.doc_values(".".join(rest))[stage.row_doc[row]]
        if root == "marketId" and not rest:
            return stage.row_market[row]
        if root == "isPrimaryMarket" and not rest:
            return None if stage.row_primary is None else stage.row_primary[row]
        if root in _CONSTANT_ROOTS:
            return read_path({"campaign": self._ctx.campaign, "params": self._ctx.params}, parts)
        for one in joined:
            if one.plan.join.name == root:
                return one.value(row, rest)
        return None  # a join not yet applied reads as missing, as in the row engine

    def _reference_row(self, stage: _Stage, joined: Sequence[_Joined], row: int) -> Row:
        built: Row = {
            "campaign": self._ctx.campaign,
            "params": self._ctx.params,
            "doc": stage.docs.doc(stage.row_doc[row]),
            "marketId": stage.row_market[row],
        }
        if stage.row_primary is not None:
            built["isPrimaryMarket"] = stage.row_primary[row]
        for one in joined:
            built[one.plan.join.name] = one.doc(row)
        return built

    def _finish(self, stage: _Stage, joined: list[_Joined]) -> EncodedBatch:
        spec = self._spec
        kept: list[int] = []
        dirty: set[int] = set()
        skipped_docs: set[int] = set()
        where = spec.where if isinstance(spec.where, RowTest) else None
        where_parts = [p.split(".") for p in where.paths] if where else []
        suspect_docs = stage.docs.suspect
        for row in range(len(stage.row_doc)):
            if self._missing_required(stage, joined, row):
                skipped_docs.add(stage.row_doc[row])
                continue
            is_dirty = stage.row_doc[row] in suspect_docs or any(j.suspect(row) for j in joined)
            if where is not None:
                if is_dirty:
                    passes = where(self._reference_row(stage, joined, row))
                else:
                    values = [self._row_value(stage, joined, row, p) for p in where_parts]
                    passes = where.test(*values)
                if not passes:
                    continue
            if is_dirty:
                dirty.add(len(kept))
            kept.append(row)
        self.skipped += len(skipped_docs)
        if not kept:
            return EncodedBatch(b"", 0)
        columns = [self._cells(column, stage, joined, kept) for column in spec.columns]
        if dirty:
            positions = sorted(dirty)
            fixed = self._reference_cells(
                [self._reference_row(stage, joined, kept[p]) for p in positions]
            )
            for number, series in enumerate(columns):
                columns[number] = series.scatter(positions, [cells[number] for cells in fixed])
        frame = pl.DataFrame({f"c{i}": series for i, series in enumerate(columns)})
        # An empty cell is written bare, as csv.writer does; polars would quote "".
        frame = frame.select(
            pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in frame.columns
        )
        data = frame.write_csv(
            include_header=False, line_terminator="\r\n", quote_style="necessary", null_value=""
        )
        return EncodedBatch(data.encode("utf-8"), len(kept))

    def _missing_required(self, stage: _Stage, joined: Sequence[_Joined], row: int) -> bool:
        for number, one in enumerate(joined):
            join = one.plan.join
            if one.found(row):
                continue
            if join.required:
                return True
            if join.required_if_set and stage.keys[number][row] not in (None, ""):
                return True
        return False

    def _cells(
        self, column: Column, stage: _Stage, joined: Sequence[_Joined], kept: list[int]
    ) -> pl.Series:
        if isinstance(column.get, Either):
            first, second = column.get.first.split("."), column.get.second.split(".")
            return pl.Series(
                [
                    format_cell(
                        self._row_value(stage, joined, r, first)
                        or self._row_value(stage, joined, r, second)
                    )
                    for r in kept
                ],
                dtype=pl.String,
            )
        assert column.path is not None  # noqa: S101 (columnar_plan checked it)
        root, *rest = column.path
        dotted = ".".join(rest)
        if root == "doc":
            indices = pl.Series([stage.row_doc[r] for r in kept], dtype=pl.UInt32)
            return stage.docs.formatted(dotted).gather(indices)
        if root in _CONSTANT_ROOTS or (root in _ROW_VALUES and not rest):
            if root in _CONSTANT_ROOTS:
                text = self._constants.get(".".join(column.path))
                if text is None:
                    text = format_cell(self._row_value(stage, joined, 0, column.path))
                    self._constants[".".join(column.path)] = text
                return pl.repeat(text, len(kept), eager=True, dtype=pl.String)
            return pl.Series(
                [format_cell(self._row_value(stage, joined, r, column.path)) for r in kept],
                dtype=pl.String,
            )
        one = next(j for j in joined if j.plan.join.name == root)
        if one.cached is not None:
            return pl.Series(
                [format_cell(read_path(one.cached[r], rest)) for r in kept], dtype=pl.String
            )
        if one.batch is None:  # no row of the batch had a key to look up
            return pl.Series([None] * len(kept), dtype=pl.String)
        indices = pl.Series([one.index[r] for r in kept], dtype=pl.UInt32)
        return one.batch.formatted(dotted).gather(indices)


def plan_or_reason(spec: ExportSpec) -> ColumnarPlan | str:
    """The plan, or why the spec runs on the row engine."""
    try:
        return columnar_plan(spec)
    except NotColumnar as exc:
        return str(exc)


def planned(specs: Iterable[ExportSpec]) -> dict[str, ColumnarPlan | str]:
    """Each spec's plan or reason, by name (the README's table and the bench use it)."""
    return {spec.name: plan_or_reason(spec) for spec in specs}
