"""The columnar engine: a spec's rows from raw BSON batches to CSV bytes, off the event loop.

Per source batch: the reply is decoded into typed columns (exporters.bson_columns); an
entry's markets or promoters are expanded by polars; the row decisions that depend on a few
values (join keys, required joins, filters, an SMS-wave pass) are made over Python lists
built in C; the cells are whole columns (formatted once per column, gathered per row) and
polars writes the CSV, or, for a grouped layout, the output writes each group's rows from
the cells and the rows' groups (exporters.cell_frames). A cell whose document holds a value
the columns cannot type is computed by the row rules (`format_cell` of the column's reading
of the decoded documents) and put in its place, so the bytes are those of the row engine.

Which specs it runs: `columnar_plan` says, with the reason when it cannot (a fold, a layout
grouped by a plain function, an exclusion by a path outside the source document, a column or
filter that is a plain function, a join by another field than _id without a declared
choice). The rest run on the row engine (exporters.rows), which stays the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from core.deps import Doc, DocumentSource, RawDocumentSource
from exporters.bson_columns import BatchSchema, FieldType, TypedBatch
from exporters.cell_frames import (
    ColumnarBatch,
    EncodedBatch,
    GroupedCells,
    cells_frame,
    frame_csv,
)
from exporters.columnar_fold import FOLDED_FIELDS, FoldedBatch, RunFold, run_fold
from exporters.columnar_joins import chosen_index
from exporters.columnar_rows import promoter_rows
from exporters.columnar_values import RuleValues, computed_distinct, computed_once
from exporters.exclusions import ExclusionPass
from exporters.formatting import format_cell
from exporters.joins import Earliest, EntryMarkets, EntryPromoters, markets_of
from exporters.source_fields import COLLECTION_FIELDS
from exporters.spec import (
    Column,
    Computed,
    CsvFile,
    CsvPerGroup,
    Either,
    ExportContext,
    ExportSpec,
    Join,
    Row,
    RowTest,
    ZipOfCsv,
    identity,
    read_path,
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
    expand_promoters: bool = False
    group: Computed | None = None  # a grouped layout's group of a row
    fold: RunFold | None = None  # the source's runs are folded (exporters.columnar_fold)


def columnar_plan(spec: ExportSpec) -> ColumnarPlan:
    """The spec's plan; raises NotColumnar when a part of it needs the row engine."""
    _check_shape(spec)
    fold = _fold(spec)
    wanted = _Wanted(spec)
    for column in spec.columns:
        for dotted, as_value in _column_paths(column):
            wanted.need(dotted, value=as_value)
    for join in spec.joins:
        wanted.need(join.key_path or "", value=True)
    if isinstance(spec.where, RowTest):
        for dotted in spec.where.paths:
            wanted.need(dotted, value=True)
    group = _need_grouping(spec, wanted)
    if spec.exclude is not None:
        # The row engine tests a source document's row before expanding it: a path into the
        # document is the same on every row of it.
        if not spec.exclude.user_id_path.startswith("doc."):
            raise NotColumnar("an exclusion by a path outside the source document")
        wanted.need(spec.exclude.user_id_path, value=True)
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
    return ColumnarPlan(
        spec,
        BatchSchema(wanted.fields["doc"]),
        plans,
        expand_markets,
        isinstance(spec.expand, EntryPromoters),
        group,
        fold=fold,
    )


def _fold(spec: ExportSpec) -> RunFold | None:
    if spec.group is None:
        return None
    fold = run_fold(spec.group, COLLECTION_FIELDS.get(spec.source.collection, {}))
    if fold is None:
        raise NotColumnar("a fold without a columnar form")
    return fold


def _need_grouping(spec: ExportSpec, wanted: _Wanted) -> Computed | None:
    """What the promoters expansion, the joins' choices and a layout's group read; the
    group (None for one CSV)."""
    if isinstance(spec.expand, EntryPromoters):
        for dotted in EntryPromoters.reads:
            wanted.need(f"doc.{dotted}", value=True)
    for join in spec.joins:
        if isinstance(join.choose, Earliest):
            # Read as typed columns by the columnar rule (exporters.columnar_joins).
            wanted.need(f"{join.name}.{join.field}", value=True)
            wanted.need(f"{join.name}.{join.choose.date}", value=False)
    if isinstance(spec.layout, CsvFile):
        return None
    group = spec.layout.group
    assert isinstance(group, Computed)  # noqa: S101 (_check_shape checked it)
    for dotted in group.paths:
        wanted.need(dotted, value=True)
    return group


def _check_shape(spec: ExportSpec) -> None:
    layout = spec.layout
    if isinstance(layout, ZipOfCsv | CsvPerGroup) and not isinstance(layout.group, Computed):
        raise NotColumnar(f"layout {type(layout).__name__} grouped by a plain function")
    if spec.group is not None and (spec.expand is not identity or not isinstance(layout, CsvFile)):
        raise NotColumnar("a fold with an expansion or a grouped layout")
    if spec.expand is not identity and not isinstance(spec.expand, EntryMarkets | EntryPromoters):
        raise NotColumnar("an expansion without a columnar form")
    if spec.where is not None and not isinstance(spec.where, RowTest):
        raise NotColumnar("a filter that is a plain function")
    for join in spec.joins:
        if join.key_path is None:
            raise NotColumnar(f"join {join.name}: no key path")
        if join.cached and join.field != "_id":
            # Cached documents are looked up by _id here (markets, promoters).
            raise NotColumnar(f"join {join.name}: cached, by another field than _id")
        if join.cached or (join.field == "_id" and join.choose is None):
            continue
        # By another field: several documents may match a key, and `choose` picks one.
        if not isinstance(join.choose, Earliest) or "." in join.field:
            raise NotColumnar(f"join {join.name}: not by _id, and no columnar choice")


class _Wanted:
    """The typed fields each decoded collection needs: the source's ("doc") and each join's."""

    def __init__(self, spec: ExportSpec) -> None:
        self._spec = spec
        self._joins = {join.name: join for join in spec.joins}
        # A folded source's rows are built from the folded documents, not the source's.
        self._doc_fields = FOLDED_FIELDS if spec.group is not None else None
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
        if (
            root == EntryPromoters.adds
            and not rest
            and isinstance(self._spec.expand, EntryPromoters)
        ):
            return  # the expansion's own value, computed by the engine
        fields = None
        if root == "doc":
            collection, fields = self._spec.source.collection, self._doc_fields
        elif root in self._joins:
            if self._joins[root].cached:
                return  # cached documents stay dicts, read by the row rules
            collection = self._joins[root].collection
        else:
            raise NotColumnar(f"path {dotted}")
        self.fields[root][field_name] = _known(collection, field_name, value, fields)


def _column_paths(column: Column) -> list[tuple[str, bool]]:
    """The paths a column reads, and whether as a value (True) or only as a cell (False)."""
    if column.path is not None:
        return [(".".join(column.path), False)]
    if isinstance(column.get, Either):
        return [(column.get.first, True), (column.get.second, True)]
    if isinstance(column.get, Computed):
        return [(dotted, True) for dotted in column.get.paths]
    raise NotColumnar(f"column {column.name} is a plain function")


def _known(
    collection: str, dotted: str, value: bool, fields: Mapping[str, FieldType] | None = None
) -> FieldType:
    kind = (COLLECTION_FIELDS.get(collection, {}) if fields is None else fields).get(dotted)
    if kind is None:
        raise NotColumnar(f"{collection}.{dotted} has no declared type")
    if value and kind is FieldType.DATE:
        raise NotColumnar(f"{collection}.{dotted}: dates are read as cells only")
    return kind


@dataclass
class _Stage:
    """A source batch after decoding: one entry per output row candidate."""

    docs: TypedBatch | FoldedBatch
    row_doc: list[int]
    row_market: list[Any]
    row_primary: list[bool] | None
    keys: list[list[Any]]
    by_doc: bool = True  # row r is document r (no expansion, no row left out before joins)
    wanted: list[set[str]] = field(default_factory=list)  # each join's distinct string keys
    values: dict[str, list[Any]] = field(default_factory=dict)
    # Values an expansion adds to each row besides the market (`promoterId`), by name.
    row_extra: dict[str, list[Any]] = field(default_factory=dict)
    read: int = 0  # source documents read (a fold's are more than its documents)

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

    def doc(self, row: int) -> Doc | None:
        if self.cached is not None:
            return self.cached[row]
        at = self.index[row]
        return None if at is None or self.batch is None else self.batch.doc(at)


def _indexed(plan: _JoinPlan, replies: list[bytes], keys: list[Any]) -> _Joined:
    """A join's documents decoded, and each row's index into them (CPU work: in a thread)."""
    assert plan.schema is not None  # noqa: S101 (only typed joins are looked up raw)
    batch = plan.schema.decode(b"".join(replies))
    join = plan.join
    if isinstance(join.choose, Earliest):
        return _Joined(
            plan, batch, _looked_up(chosen_index(batch, join.field, join.choose), keys), None
        )
    ids = batch.values("_id")
    try:
        position = dict(zip(ids, range(len(ids)), strict=True))  # the last of equal ids wins
    except TypeError:  # an _id that is a document or a list
        position = {key: at for at, key in enumerate(ids) if isinstance(key, str)}
    # Only a missing or null _id (None) or a suspect document's can be other than a string.
    for key in [None, *(ids[at] for at in batch.suspect_fields["_id"])]:
        if not isinstance(key, str):
            with contextlib.suppress(KeyError, TypeError):  # absent, or unhashable
                del position[key]
    return _Joined(plan, batch, _looked_up(position, keys), None)


def _looked_up(found: Mapping[str, Any], keys: list[Any]) -> list[Any]:
    """`found`'s value for each string key, None for any other key (`found` has str keys)."""
    try:
        return list(map(found.get, keys))  # a key of another type never equals a str
    except TypeError:  # an unhashable key: a hostile document or list
        return [found.get(k) if isinstance(k, str) else None for k in keys]


def _market_rows(docs: TypedBatch) -> tuple[list[int], list[Any], list[bool]]:
    """Each row's entry, market and primary flag: the entry's markets as `markets_of` lists
    them, the primary first.

    Entries whose columns are exact are expanded by polars; the suspect ones (read as the
    driver decodes them) by `markets_of` itself, their rows put in their entries' places.
    """
    # Entries whose markets the columns stand for: `markets_of` reads the primary as it is
    # and the additional ones through `as_list` (a lone id is a list of one in the column).
    suspect = sorted(docs.suspect_fields["marketId"] | docs.list_suspect("additionalMarketIds"))
    frame = pl.DataFrame(
        {
            "primary": pl.from_arrow(docs.columns["marketId"]),
            "more": pl.from_arrow(docs.columns["additionalMarketIds"]),
        }
    ).with_row_index("doc")
    if suspect:
        frame = frame.filter(~pl.col("doc").is_in(pl.Series(suspect, dtype=pl.UInt32)))
    first = frame.select("doc", pl.col("primary").alias("market"), pl.lit(True).alias("first"))
    # An additional id counts once, and not when it is the primary (None never counts).
    more = (
        frame.select("doc", "primary", "more")
        .explode("more")
        .filter(pl.col("more").is_not_null() & pl.col("more").ne_missing(pl.col("primary")))
        .unique(subset=["doc", "more"], keep="first", maintain_order=True)
        .select("doc", pl.col("more").alias("market"), pl.lit(False).alias("first"))
    )
    parts = [first, more]
    odd: list[Any] = []  # the markets of suspect entries that are not strings
    if suspect:
        rows: dict[str, list[Any]] = {"doc": [], "market": [], "first": [], "odd": []}
        for index in suspect:
            doc = docs.doc(index)
            markets = markets_of(doc.get("marketId"), doc.get("additionalMarketIds"))
            for number, market in enumerate(markets):
                rows["doc"].append(index)
                rows["first"].append(number == 0)
                if type(market) is str:
                    rows["market"].append(market)
                    rows["odd"].append(None)
                else:
                    rows["market"].append(None)
                    rows["odd"].append(len(odd))
                    odd.append(market)
        parts.append(
            pl.DataFrame(
                rows,
                schema={
                    "doc": pl.UInt32,
                    "market": pl.String,
                    "first": pl.Boolean,
                    "odd": pl.Int64,
                },
            )
        )
    # A stable sort by entry keeps each entry's primary row first and the rest in list order.
    table = pl.concat(parts, how="diagonal").sort("doc", maintain_order=True)
    row_market: list[Any] = table["market"].to_list()
    if odd:
        at = table["odd"]
        for row, number in zip(
            at.is_not_null().arg_true().to_list(), at.drop_nulls().to_list(), strict=True
        ):
            row_market[row] = odd[number]
    return table["doc"].to_list(), row_market, table["first"].to_list()


def _cached_values(docs: list[Doc | None], parts: Sequence[str]) -> list[Any]:
    """The value at `parts` of each row's cached document (the same few fill every row)."""
    distinct = dict(zip(map(id, docs), docs, strict=True))
    by_id = {key: read_path(doc, parts) for key, doc in distinct.items()}
    return list(map(by_id.__getitem__, map(id, docs)))


def _string_keys(keys: list[Any]) -> set[str]:
    """The distinct string keys of a batch (hostile keys may be unhashable documents)."""
    try:
        distinct = set(keys)
    except TypeError:
        return {key for key in keys if isinstance(key, str)}
    distinct.discard(None)
    if set(map(type, distinct)) <= {str}:  # the common case, told in C
        return distinct
    return {key for key in distinct if isinstance(key, str)}


def _tested(
    test: Callable[..., Any], columns: list[list[Any]], rows: int, kept: list[int]
) -> list[Any]:
    """The filter's test of each row's values.

    The values are the row rules' own (a suspect document's read from it as the driver
    decodes it), so the test's answer is the row engine's. It is called over whole columns by
    map; should it raise, on a value of a row it would not have been asked about (a skipped
    row's), only the kept rows are tested, one by one.
    """
    try:
        if columns:
            return list(map(test, *columns))
        return [test() for _ in range(rows)]
    except Exception:  # the row by row pass below re-raises a kept row's error
        passed: list[Any] = [None] * rows
        for r in kept:
            passed[r] = test(*(column[r] for column in columns))
        return passed


def _gather(values: list[Any], index: list[int]) -> list[Any]:
    """`[values[i] for i in index]`, in C."""
    if len(index) < 2:
        return [values[i] for i in index]
    return list(operator.itemgetter(*index)(values))


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
        # Each column's dotted paths, and the roots of the row its reference reading needs.
        self._column_paths = [tuple(p for p, _ in _column_paths(c)) for c in plan.spec.columns]
        self._column_roots = [frozenset(p.split(".")[0] for p in ps) for ps in self._column_paths]
        self._caches: dict[str, dict[str, Doc | None]] = {
            j.join.name: {} for j in plan.joins if j.schema is None
        }
        for j in plan.joins:
            if j.schema is None and j.join.collection == "markets":
                self._caches[j.join.name].update(ctx.markets)
        self._constants: dict[str, str] = {}
        layout = plan.spec.layout
        self._limit = (
            layout.limit_per_group(ctx)
            if isinstance(layout, ZipOfCsv) and layout.limit_per_group
            else None
        )
        # The exclusion pass being run (exporters.exclusions), set by the runner per pass.
        self.exclusion: ExclusionPass | None = None
        self.skipped = 0
        self.documents = 0
        # One chunk's CPU work at a time: chunks are worked on a few at once so that one's
        # look-ups overlap another's CPU work, not so that two threads take turns at the
        # interpreter lock with the event loop (its lateness doubled at p99 when they did).
        self._cpu = asyncio.Semaphore(1)

    async def encode(self, raw: bytes) -> ColumnarBatch:
        # The CPU work runs in a thread so that heartbeats, timers and views keep their turn;
        # the look-ups between the two halves are awaited on the loop.
        # Counters are kept on the loop's thread: chunks are encoded a few at a time, and
        # their threads would race on them.
        async with self._cpu:
            stage = await asyncio.to_thread(self._prepare, raw)
        self.documents += stage.read
        joined = await asyncio.gather(
            *(
                self._join(plan, keys, wanted)
                for plan, keys, wanted in zip(
                    self._plan.joins, stage.keys, stage.wanted, strict=True
                )
            )
        )
        async with self._cpu:
            encoded = await asyncio.to_thread(self._finish, stage, list(joined))
        self.skipped += encoded.skipped
        return encoded

    # -- before the look-ups ------------------------------------------------------------

    def _decoded(self, raw: bytes) -> tuple[TypedBatch | FoldedBatch, int]:
        """The batch's documents (a fold's folded documents), and the source documents read."""
        if self._plan.fold is not None:
            return self._plan.fold.fold(raw)
        docs = self._plan.source.decode(raw)
        return docs, len(docs)

    def _prepare(self, raw: bytes) -> _Stage:
        docs, read = self._decoded(raw)
        stage = _Stage(docs, [], [], None, [], read=read)
        if self._plan.expand_markets:
            assert isinstance(docs, TypedBatch)  # noqa: S101 (columnar_plan refuses a fold's)
            stage.row_doc, stage.row_market, stage.row_primary = _market_rows(docs)
            stage.by_doc = False
        elif self._plan.expand_promoters:
            assert isinstance(docs, TypedBatch)  # noqa: S101 (columnar_plan refuses a fold's)
            stage.row_doc, stage.row_extra[EntryPromoters.adds] = promoter_rows(docs)
            stage.by_doc = False
            stage.row_market = [None] * len(stage.row_doc)
            if "marketId" in self._plan.source.fields:
                stage.row_market = _gather(stage.doc_values("marketId"), stage.row_doc)
        else:
            stage.row_doc = list(range(len(docs)))
            if "marketId" in self._plan.source.fields:
                stage.row_market = stage.doc_values("marketId")
            else:
                stage.row_market = [None] * len(docs)
        if self.exclusion is not None and self._spec.exclude is not None:
            # A pass's filter comes before any look-up, as on the row engine.
            parts = self._spec.exclude.user_id_path.split(".")
            kept = list(map(self.exclusion.keeps, self._values_for(stage, [], parts)))
            if not all(kept):
                stage.row_doc = list(itertools.compress(stage.row_doc, kept))
                stage.row_market = list(itertools.compress(stage.row_market, kept))
                for name, values in stage.row_extra.items():
                    stage.row_extra[name] = list(itertools.compress(values, kept))
                if stage.row_primary is not None:
                    stage.row_primary = list(itertools.compress(stage.row_primary, kept))
                stage.by_doc = False
        self._join_keys(stage)
        return stage

    def _join_keys(self, stage: _Stage) -> None:
        """Each join's key per row, and its distinct string keys: joins by the same path (the
        entry of record and its presale code) share them."""
        by_path: dict[tuple[str, ...], tuple[list[Any], set[str]]] = {}
        for plan in self._plan.joins:
            if plan.key not in by_path:
                keys = self._values_for(stage, [], plan.key)
                by_path[plan.key] = (keys, _string_keys(keys))
            keys, wanted = by_path[plan.key]
            stage.keys.append(keys)
            stage.wanted.append(wanted)

    async def _join(self, plan: _JoinPlan, keys: list[Any], wanted: set[str]) -> _Joined:
        if plan.schema is None:
            cache = self._caches[plan.join.name]
            missing = wanted - cache.keys()
            if missing:
                found = await self._source.find_by_ids(
                    plan.join.collection, missing, projection=plan.join.projection
                )
                for key in missing:
                    cache[key] = found.get(key)
            return _Joined(plan, None, [], _looked_up(cache, keys))
        if not wanted:
            return _Joined(plan, None, [None] * len(keys), None)
        join = plan.join
        chosen = isinstance(join.choose, Earliest)
        replies = await self._raw_source.find_in_raw(
            join.collection, join.field if chosen else "_id", wanted, projection=join.projection
        )
        async with self._cpu:
            return await asyncio.to_thread(_indexed, plan, replies, keys)

    # -- after the look-ups -------------------------------------------------------------

    def _values_for(
        self, stage: _Stage, joined: Sequence[_Joined], parts: Sequence[str]
    ) -> list[Any]:
        """The value at a dotted path for every row of the batch (exact Python values)."""
        root, *rest = parts
        rows = len(stage.row_doc)
        if root == "doc":
            values = stage.doc_values(".".join(rest))
            return values if stage.by_doc else _gather(values, stage.row_doc)
        if root == "marketId" and not rest:
            return stage.row_market
        if root == "isPrimaryMarket" and not rest:
            return [None] * rows if stage.row_primary is None else stage.row_primary
        if root in stage.row_extra and not rest:
            return stage.row_extra[root]
        if root in _CONSTANT_ROOTS:
            context = {"campaign": self._ctx.campaign, "params": self._ctx.params}
            return [read_path(context, parts)] * rows
        for one in joined:
            if one.plan.join.name == root:
                if one.cached is not None:
                    return _cached_values(one.cached, rest)
                if one.batch is None:
                    return [None] * rows
                # Maps in C: a row without a document (index None) reads None.
                at_index = dict(enumerate(one.batch.values(".".join(rest))))
                return list(map(at_index.get, one.index))  # type: ignore[arg-type]
        return [None] * rows  # a join not yet applied reads as missing, as in the row engine

    def _reference_row(
        self,
        stage: _Stage,
        joined: Sequence[_Joined],
        row: int,
        roots: frozenset[str] | None = None,
    ) -> Row:
        """The row as the row engine builds it; with `roots`, only those of its documents are
        decoded (a row missing the others reads them as None, which no reader of `roots` sees).
        """
        built: Row = {
            "campaign": self._ctx.campaign,
            "params": self._ctx.params,
            "marketId": stage.row_market[row],
        }
        if roots is None or "doc" in roots:
            built["doc"] = stage.docs.doc(stage.row_doc[row])
        if stage.row_primary is not None:
            built["isPrimaryMarket"] = stage.row_primary[row]
        for name, values in stage.row_extra.items():
            built[name] = values[row]
        for one in joined:
            name = one.plan.join.name
            if roots is None or name in roots:
                built[name] = one.doc(row)
        return built

    def _finish(self, stage: _Stage, joined: list[_Joined]) -> ColumnarBatch:
        view, skipped = self._kept_rows(stage, joined)
        group = self._plan.group
        if group is None:
            if view is None:
                return EncodedBatch(b"", 0, skipped)
            return EncodedBatch(frame_csv(self._cells_frame(view)), len(view.kept), skipped)
        if view is None:
            return GroupedCells(pl.DataFrame(), pl.Series([], dtype=pl.String), skipped)
        groups = self._computed(group, view).strings()
        if self._limit is not None:
            # A group's rows past its first `limit` of the chunk are never written, whatever
            # the output holds already: no cells for them (a sample reads a full scan).
            first = groups.to_frame("g").select(pl.int_range(pl.len()).over("g") < self._limit)
            if not first.to_series().all():
                at = first.to_series().arg_true()
                view = _KeptRows(stage, joined, _gather(view.kept, at.to_list()))
                groups = groups.gather(at)
        return GroupedCells(self._cells_frame(view), groups, skipped)

    def _kept_rows(self, stage: _Stage, joined: list[_Joined]) -> tuple[_KeptRows | None, int]:
        """The rows the batch writes (None: none), and the source documents it skips."""
        spec = self._spec
        rows = len(stage.row_doc)
        missing = self._missing_rows(stage, joined, rows)
        skipped = 0
        if any(missing):
            skipped = len(set(itertools.compress(stage.row_doc, missing)))
            kept = [r for r in range(rows) if not missing[r]]
        else:
            kept = list(range(rows))
        if isinstance(spec.where, RowTest):
            where = spec.where
            values = [self._values_for(stage, joined, p.split(".")) for p in where.paths]
            passed = _tested(where.test, values, rows, kept)
            kept = list(itertools.compress(kept, map(passed.__getitem__, kept)))
        return (_KeptRows(stage, joined, kept) if kept else None), skipped

    def _cells_frame(self, view: _KeptRows) -> pl.DataFrame:
        """The kept rows' cells, a column per CSV column (null for an empty cell)."""
        spec = self._spec
        stage, joined, kept = view.stage, view.joined, view.kept
        columns = [self._cells(column, view) for column in spec.columns]
        suspects = _SuspectCells(view)
        for number, column in enumerate(spec.columns):
            if isinstance(column.get, Computed):
                continue  # computed from exact values (suspect documents' as decoded)
            # A path column's cells are read as cells (an integer phone's is its text); an
            # Either's by the truthiness of their values.
            positions = suspects.positions(
                self._column_paths[number], cells=column.path is not None
            )
            if positions:
                rows_at = [kept[at] for at in positions]
                if column.path is not None:
                    fixed = self._path_cells(stage, joined, rows_at, column.path)
                else:
                    roots = self._column_roots[number]
                    fixed = [
                        format_cell(column.get(self._reference_row(stage, joined, r, roots)))
                        for r in rows_at
                    ]
                columns[number] = columns[number].scatter(positions, fixed)
        return cells_frame(columns)

    def _computed(self, computed: Computed, view: _KeptRows) -> RuleValues:
        """`computed` of each kept row, from the exact values of its paths."""
        typed = [self._rule_strings(dotted, view) for dotted in computed.paths]
        if typed and all(found is not None for found in typed):
            columns = [found[0] for found in typed if found is not None]
            flags = [found[1] for found in typed if found is not None and found[1] is not None]
            odd = None
            if flags:
                odd = flags[0]
                for more in flags[1:]:
                    odd = odd | more
            parts = [dotted.split(".") for dotted in computed.paths]
            return computed_distinct(
                computed.fn,
                columns,
                odd,
                lambda at: tuple(self._reference_value(view, at, p) for p in parts),
            )
        values = [
            view.kept_values(
                dotted, lambda d: self._values_for(view.stage, view.joined, d.split("."))
            )
            for dotted in computed.paths
        ]
        return RuleValues.per_row(computed_once(computed.fn, values))

    def _rule_strings(
        self, dotted: str, view: _KeptRows
    ) -> tuple[pl.Series, pl.Series | None] | None:
        """The kept rows' values at `dotted` as a String column (null for None) when the path
        reads a typed string field or a cached document's strings, with the flags of the rows
        whose value is not the column's (None: no such row); None for any other path."""
        root, *rest = dotted.split(".")
        field_name = ".".join(rest)
        stage = view.stage
        if root == "doc":
            docs = stage.docs
            if not isinstance(docs, TypedBatch) or docs.fields.get(field_name) is not FieldType.STR:
                return None
            values = pl.Series(pl.from_arrow(docs.columns[field_name])).gather(view.doc_index)
            return values, _member(view.doc_index, docs.suspect_fields[field_name])
        one = next((j for j in view.joined if j.plan.join.name == root), None)
        if one is None or not rest:
            return None
        if one.cached is not None:
            keys, found = view.cached_values(one, rest)
            # A cached document's value of another type: its rows are read by the row rules.
            other = frozenset(
                at for at, v in enumerate(found) if v is not None and type(v) is not str
            )
            strings = [None if at in other else v for at, v in enumerate(found)]
            return pl.Series(strings, dtype=pl.String).gather(keys), _member(keys, other)
        assert one.plan.schema is not None  # noqa: S101 (a typed join)
        if one.plan.schema.fields.get(field_name) is not FieldType.STR:
            return None
        if one.batch is None:  # no row of the batch had a key to look up
            return pl.Series([None] * len(view.kept), dtype=pl.String), None
        index = view.join_index(one)
        values = pl.Series(pl.from_arrow(one.batch.columns[field_name])).gather(index)
        return values, _member(index, one.batch.suspect_fields[field_name])

    @staticmethod
    def _reference_value(view: _KeptRows, at: int, parts: Sequence[str]) -> Any:
        """The value at `parts` of kept row `at`, read from its document as the driver decodes
        it (the row rules' reading)."""
        root, *rest = parts
        row = view.kept[at]
        if root == "doc":
            return read_path(view.stage.docs.doc(view.stage.row_doc[row]), rest)
        one = next(j for j in view.joined if j.plan.join.name == root)
        return read_path(one.doc(row), rest)

    @staticmethod
    def _path_cells(
        stage: _Stage, joined: Sequence[_Joined], rows: list[int], parts: Sequence[str]
    ) -> list[str]:
        """The cells of a dotted path column at these rows by the row rules (format_cell of
        read_path), from the one document the path starts at, as the driver decodes it."""
        root, *rest = parts
        if root == "doc":
            docs = stage.docs
            found: list[Any] = [docs.doc(stage.row_doc[r]) for r in rows]
        else:
            one = next(j for j in joined if j.plan.join.name == root)
            found = [one.doc(r) for r in rows]
        return [format_cell(read_path(doc, rest)) for doc in found]

    @staticmethod
    def _missing_rows(stage: _Stage, joined: Sequence[_Joined], rows: int) -> list[bool]:
        """Rows a required join found nothing for (skipped, counted per source document)."""
        missing = [False] * rows
        for number, one in enumerate(joined):
            join = one.plan.join
            found: Sequence[Any] = one.cached if one.cached is not None else one.index
            if None not in found:
                continue  # every row found its document: the common case, checked in C
            if join.required:
                missing = [m or f is None for m, f in zip(missing, found, strict=True)]
            elif join.required_if_set:
                keys = stage.keys[number]
                missing = [
                    m or (f is None and k not in (None, ""))
                    for m, f, k in zip(missing, found, keys, strict=True)
                ]
        return missing

    def _cells(self, column: Column, view: _KeptRows) -> pl.Series:
        if isinstance(column.get, Computed):
            return self._computed(column.get, view).cells()
        if isinstance(column.get, Either):
            # On typed string columns the truthiness of a value is that of its cell.
            if self._is_string(column.get.first) and self._is_string(column.get.second):
                first = self._string_cells(column.get.first, view)
                second = self._string_cells(column.get.second, view)
                assert first is not None and second is not None  # noqa: S101, PT018
                frame = pl.DataFrame({"a": first, "b": second})
                truthy = pl.col("a").is_not_null() & (pl.col("a") != "")
                return frame.select(pl.when(truthy).then("a").otherwise("b")).to_series()
            a = self._values_for(view.stage, view.joined, column.get.first.split("."))
            b = self._values_for(view.stage, view.joined, column.get.second.split("."))
            return pl.Series([format_cell(a[r] or b[r]) for r in view.kept], dtype=pl.String)
        assert column.path is not None  # noqa: S101 (columnar_plan checked it)
        root, *rest = column.path
        if root in _CONSTANT_ROOTS:
            dotted = ".".join(column.path)
            text = self._constants.get(dotted)
            if text is None:
                context = {"campaign": self._ctx.campaign, "params": self._ctx.params}
                text = self._constants[dotted] = format_cell(read_path(context, column.path))
            return pl.repeat(text, len(view.kept), eager=True, dtype=pl.String)
        if root == "isPrimaryMarket" and not rest and view.stage.row_primary is not None:
            flags = pl.DataFrame({"v": pl.Series(view.stage.row_primary, dtype=pl.Boolean)})
            texts = flags.select(pl.when("v").then(pl.lit("true")).otherwise(pl.lit("false")))
            return texts.to_series().gather(view.kept_index)
        if root in view.stage.row_extra and not rest:
            extra = view.rows_of(view.stage.row_extra[root])
            return pl.Series(
                [v if type(v) is str else format_cell(v) for v in extra], dtype=pl.String
            )
        if root == "marketId" and not rest:
            # The row's market is the reference's own value (a suspect entry's markets come
            # from markets_of over the decoded entry): a non-string one is formatted here.
            markets = [m if type(m) is str else format_cell(m) for m in view.stage.row_market]
            return pl.Series(markets, dtype=pl.String).gather(view.kept_index)
        cells = self._string_cells(".".join(column.path), view)
        if cells is not None:
            return cells
        values = self._values_for(view.stage, view.joined, column.path)
        return pl.Series([format_cell(values[r]) for r in view.kept], dtype=pl.String)

    def _is_string(self, dotted: str) -> bool:
        root, _, field_name = dotted.partition(".")
        if root == "doc":
            return self._plan.source.fields.get(field_name) is FieldType.STR
        for plan in self._plan.joins:
            if plan.join.name == root and plan.schema is not None:
                return plan.schema.fields.get(field_name) is FieldType.STR
        return False

    def _string_cells(self, dotted: str, view: _KeptRows) -> pl.Series | None:
        """The kept rows' cells of a path read from typed columns or cached documents."""
        root, *rest = dotted.split(".")
        field_name = ".".join(rest)
        if root == "doc":
            return view.stage.docs.formatted(field_name).gather(view.doc_index)
        one = next((j for j in view.joined if j.plan.join.name == root), None)
        if one is None:
            return None
        if one.cached is not None:
            keys, cells = view.cached_table(one, rest)
            return pl.Series(cells, dtype=pl.String).gather(keys)
        if one.batch is None:  # no row of the batch had a key to look up
            return pl.Series([None] * len(view.kept), dtype=pl.String)
        return one.batch.formatted(field_name).gather(view.join_index(one))


class _SuspectCells:
    """Which kept rows' cells of a column the typed columns cannot stand for.

    A cell is suspect when a document it reads is suspect in the field it reads (per field,
    exporters.bson_columns): only those cells are computed by the row rules.
    """

    def __init__(self, view: _KeptRows) -> None:
        self._view = view
        self._found: dict[tuple[str, bool], pl.Series | None] = {}

    def positions(self, paths: Sequence[str], *, cells: bool) -> list[int]:
        """The kept rows whose cell reading `paths` the columns cannot stand for: with
        `cells`, the paths are read as cells (a plain path column), else as values."""
        found = [flags for p in paths if (flags := self._flags(p, cells)) is not None]
        if not found:
            return []
        hit = found[0]
        for flags in found[1:]:
            hit = hit | flags
        return hit.arg_true().to_list()

    def _flags(self, dotted: str, cells: bool) -> pl.Series | None:
        """Per kept row, whether its reading of `dotted` is suspect; None when none is."""
        key = (dotted, cells)
        if key not in self._found:
            self._found[key] = self._compute(dotted, cells)
        return self._found[key]

    def _compute(self, dotted: str, cells: bool) -> pl.Series | None:
        view = self._view
        root, _, field_name = dotted.partition(".")
        if root in _ROW_VALUES and not field_name:
            # The row's market and primary flag are the row rules' own values (suspect entries
            # expanded by markets_of over the decoded entry), and their cells format them.
            return None
        if root == "doc":
            docs = view.stage.docs
            odd = docs.cell_suspect_fields if cells else docs.suspect_fields
            return _member(view.doc_index, odd[field_name])
        for one in view.joined:
            if one.plan.join.name == root and one.batch is not None:
                batch = one.batch
                odd = batch.cell_suspect_fields if cells else batch.suspect_fields
                return _member(view.join_index(one), odd[field_name])
        return None  # constants and cached documents are read as they are


def _member(index: pl.Series, suspect: frozenset[int]) -> pl.Series | None:
    if not suspect:
        return None
    flags = index.is_in(pl.Series(sorted(suspect), dtype=pl.UInt32)).fill_null(False)
    return flags if flags.any() else None


class _KeptRows:
    """The rows a batch writes, with the indexes its columns are gathered by (made once)."""

    def __init__(self, stage: _Stage, joined: Sequence[_Joined], kept: list[int]) -> None:
        self.stage = stage
        self.joined = joined
        self.kept = kept
        self.kept_index = pl.Series(kept, dtype=pl.UInt32)
        self._every = len(kept) == len(stage.row_doc)
        # Row r is document r: the kept rows' documents are the kept rows.
        self.doc_index = (
            self.kept_index
            if stage.by_doc
            else pl.Series(self.rows_of(stage.row_doc), dtype=pl.UInt32)
        )
        self._join_index: dict[str, pl.Series] = {}
        self._cached: dict[str, tuple[pl.Series, list[Doc | None]]] = {}
        self._values: dict[str, list[Any]] = {}

    def kept_values(self, dotted: str, values: Callable[[str], list[Any]]) -> list[Any]:
        """The kept rows' values at `dotted`, `values(dotted)` being every row's (read once:
        a column and the layout's group may read the same path)."""
        if dotted not in self._values:
            self._values[dotted] = self.rows_of(values(dotted))
        return self._values[dotted]

    def rows_of(self, values: list[Any]) -> list[Any]:
        """The kept rows' items of a per-row list."""
        return values if self._every else _gather(values, self.kept)

    def join_index(self, one: _Joined) -> pl.Series:
        name = one.plan.join.name
        if name not in self._join_index:
            self._join_index[name] = pl.Series(self.rows_of(one.index), dtype=pl.UInt32)
        return self._join_index[name]

    def cached_table(self, one: _Joined, parts: Sequence[str]) -> tuple[pl.Series, list[Any]]:
        """Each kept row's index into the distinct cached documents, and those cells."""
        keys, values = self.cached_values(one, parts)
        return keys, list(map(format_cell, values))

    def cached_values(self, one: _Joined, parts: Sequence[str]) -> tuple[pl.Series, list[Any]]:
        """Each kept row's index into the distinct cached documents (null for a row without
        one), and those documents' values at `parts`."""
        name = one.plan.join.name
        if name not in self._cached:
            assert one.cached is not None  # noqa: S101
            found = self.rows_of(one.cached)
            # The same few documents (a cached collection's) fill every row: each distinct
            # one by identity, in order of first appearance, then each row's index, in C.
            by_id = dict(zip(map(id, found), found, strict=True))
            distinct = [doc for doc in by_id.values() if doc is not None]
            position = {id(doc): at for at, doc in enumerate(distinct)}
            indexes = list(map(position.get, map(id, found)))
            self._cached[name] = (pl.Series(indexes, dtype=pl.UInt32), list(distinct))
        keys, distinct = self._cached[name]
        return keys, [read_path(doc, parts) for doc in distinct]


def plan_or_reason(spec: ExportSpec) -> ColumnarPlan | str:
    """The plan, or why the spec runs on the row engine."""
    try:
        return columnar_plan(spec)
    except NotColumnar as exc:
        return str(exc)


def planned(specs: Iterable[ExportSpec]) -> dict[str, ColumnarPlan | str]:
    """Each spec's plan or reason, by name (the README's table and the bench use it)."""
    return {spec.name: plan_or_reason(spec) for spec in specs}
