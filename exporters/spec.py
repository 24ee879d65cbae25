"""The declarative parts an export type is made of: source, joins, columns, output."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.deps import Doc
from core.settings import BucketName

Row = dict[str, Any]
"""A row being built: `doc` (the source document), `campaign`, `params`, join results by
name, and whatever an expansion adds (`marketId`, `isPrimaryMarket`, `promoterId`, ...)."""


class NoParams(BaseModel):
    """Export types that take no parameters still refuse unknown ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ExportContext:
    """What an export run knows before it reads a row."""

    export_id: str
    campaign: Doc
    markets: Mapping[str, Doc]
    params: BaseModel
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def campaign_id(self) -> str:
        return str(self.campaign["_id"])


@dataclass(frozen=True)
class Find:
    """Rows come from `collection` filtered by `query(ctx)`, optionally sorted."""

    collection: str
    query: Callable[[ExportContext], Mapping[str, Any]]
    sort: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True)
class GroupConsecutive:
    """Fold runs of source documents that share `key` (the source is sorted by it) into one.

    `fold(key, docs)` returns the document the row is built from; memory holds one group.
    """

    key: str
    fold: Callable[[Any, list[Doc]], Doc]


@dataclass(frozen=True)
class Join:
    """Attach `row[name]` = the document of `collection` whose `field` equals `key(row)`.

    Joins are batched: one `$in` look-up per source batch, never one query per row.
    `required` rows whose document is missing are skipped and counted; with
    `required_if_set`, only rows whose key is set (an unassigned code keeps its row).
    `cached` keeps found documents for the whole run (small collections: markets, promoters).
    When several documents match, `choose` picks one (default: the first found).
    """

    name: str
    collection: str
    key: Callable[[Row], Any]
    field: str = "_id"
    # The dotted path `key` reads ("doc.userId", "marketId"): what the columnar engine joins on.
    key_path: str | None = None
    projection: Mapping[str, Any] | None = None
    required: bool = False
    required_if_set: bool = False
    cached: bool = False
    choose: Callable[[list[Doc]], Doc] | None = None


@dataclass(frozen=True)
class Column:
    name: str
    get: Callable[[Row], Any]
    # The dotted path `get` reads, when it is one: lets exporters.cells inline the look-ups.
    path: tuple[str, ...] | None = None


def path(dotted: str) -> Callable[[Row], Any]:
    """A reader for a dotted path into the row; any missing step gives None."""
    parts = tuple(dotted.split("."))

    # Called for every cell of every row: no ABC isinstance checks, no loop for short paths.
    if len(parts) == 1:
        (only,) = parts
        return lambda row: row.get(only)

    return lambda row: read_path(row, parts)


def read_path(value: Any, parts: Sequence[str]) -> Any:
    """The row rule for a dotted path: a missing step, or one that is not a document, is None."""
    try:
        for part in parts:
            value = value.get(part)
    except AttributeError:  # a step was missing (None) or not a document
        return None
    return value


@dataclass(frozen=True)
class RowTest:
    """A row filter declared as a test of the values at some dotted paths of the row.

    Both engines read the same paths (the row engine from the row, the columnar engine from
    its columns) and apply the same `test`, so a filter has one definition.
    """

    paths: tuple[str, ...]
    test: Callable[..., bool]
    _readers: tuple[Callable[[Row], Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_readers", tuple(path(p) for p in self.paths))

    def __call__(self, row: Row) -> bool:
        return self.test(*(read(row) for read in self._readers))


@dataclass(frozen=True)
class Computed:
    """A value computed from the values at some dotted paths of the row: `fn(*values)`.

    For a column or a layout's group that is more than a path (a locale normalised, a region
    looked up). Both engines read the same paths (the row engine from the row, the columnar
    engine from its columns) and apply the same `fn`, so the rule has one definition. `fn`
    depends on its arguments only: the columnar engine calls it once per distinct values.
    """

    paths: tuple[str, ...]
    fn: Callable[..., Any]
    _readers: tuple[Callable[[Row], Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_readers", tuple(path(p) for p in self.paths))

    def __call__(self, row: Row) -> Any:
        return self.fn(*(read(row) for read in self._readers))


@dataclass(frozen=True)
class Either:
    """A cell's value: the value at `first` when it is truthy, else the value at `second`."""

    first: str
    second: str
    _readers: tuple[Callable[[Row], Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_readers", (path(self.first), path(self.second)))

    def __call__(self, row: Row) -> Any:
        first, second = self._readers
        return first(row) or second(row)


def col(name: str, source: str | Callable[[Row], Any]) -> Column:
    if isinstance(source, str):
        return Column(name, path(source), tuple(source.split(".")))
    return Column(name, source)


# -- output layouts -------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFile:
    """One CSV object `{exportType}/{campaignId}/{exportId}/{file_name(ctx)}`."""

    file_name: Callable[[ExportContext], str]


@dataclass(frozen=True)
class CsvPerGroup:
    """One CSV object per group that has rows, at `object_key(ctx, group)` (a full key).

    Each group keeps its own multipart upload open: for layouts with few groups (regions).
    """

    group: Callable[[Row], str]
    object_key: Callable[[ExportContext, str], str]
    known_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZipOfCsv:
    """One ZIP object holding a CSV per group, `member(group, n)` inside the archive.

    With `split`, a group's rows go to parts n = 1, 2, ... of MAX_ROWS_PER_FILE rows each
    (every part but the last is full). `limit_per_group(ctx)` caps a group's rows (samples).
    """

    zip_name: Callable[[ExportContext], str]
    group: Callable[[Row], str]
    member: Callable[[str, int], str]
    split: bool = False
    limit_per_group: Callable[[ExportContext], int] | None = None


Layout = CsvFile | CsvPerGroup | ZipOfCsv


@dataclass(frozen=True)
class SmsWaveExclusion:
    """Drop rows whose user is listed in a scheduled SMS wave of the campaign.

    Waves are CSV objects (header `userId`) under `sms-waves/{campaignId}/` in `bucket`.
    """

    bucket: BucketName = "vfScoring"
    # The dotted path of the row's user id: the row engine reads it with `user_id`, the
    # columnar engine from its columns.
    user_id_path: str = "doc.userId"
    user_id: Callable[[Row], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_id", path(self.user_id_path))

    def prefix(self, ctx: ExportContext) -> str:
        return f"sms-waves/{ctx.campaign_id}/"


def identity(row: Row) -> Iterable[Row]:
    return (row,)


@dataclass(frozen=True, eq=False)
class ExportSpec:
    """One export type, declared; the engine in `exporters.runner` does the rest."""

    name: str
    source: Find
    columns: tuple[Column, ...]
    bucket: BucketName
    acl: str | None
    layout: Layout
    joins: tuple[Join, ...] = ()
    group: GroupConsecutive | None = None
    expand: Callable[[Row], Iterable[Row]] = identity
    where: Callable[[Row], bool] | None = None
    exclude: SmsWaveExclusion | None = None
    params: type[BaseModel] = NoParams
    requires_markets: bool = False
    description: str = ""
    _header: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_header", tuple(c.name for c in self.columns))

    @property
    def header(self) -> tuple[str, ...]:
        return self._header
