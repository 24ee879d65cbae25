"""The declarative parts an export type is made of: source, joins, columns, output."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.deps import Doc
from core.settings import BucketName

Row = dict[str, Any]
"""A row being built: `doc` (the source document), `campaign`, join results by name,
and whatever an expansion adds (`marketId`, `isPrimaryMarket`, ...)."""


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

    @property
    def campaign_id(self) -> str:
        return str(self.campaign["_id"])


@dataclass(frozen=True)
class Find:
    """Rows come from `collection` filtered by `query(ctx)`."""

    collection: str
    query: Callable[[ExportContext], Mapping[str, Any]]


@dataclass(frozen=True)
class Join:
    """Attach `row[name]` = the document of `collection` whose `_id` is `key(row)`.

    Joins are batched: one `$in` look-up per source batch, never one query per row.
    `required` rows whose document is missing are skipped and counted.
    `cached` keeps found documents for the whole run (small collections such as markets).
    """

    name: str
    collection: str
    key: Callable[[Row], Any]
    projection: Mapping[str, Any] | None = None
    required: bool = False
    cached: bool = False


@dataclass(frozen=True)
class Column:
    name: str
    get: Callable[[Row], Any]


def path(dotted: str) -> Callable[[Row], Any]:
    """A reader for a dotted path into the row; any missing step gives None."""
    parts = tuple(dotted.split("."))

    # Called for every cell of every row: no ABC isinstance checks, no loop for short paths.
    if len(parts) == 1:
        (only,) = parts
        return lambda row: row.get(only)

    def read(row: Row) -> Any:
        value: Any = row
        try:
            for part in parts:
                value = value.get(part)
        except AttributeError:  # a step was missing (None) or not a document
            return None
        return value

    return read


def col(name: str, source: str | Callable[[Row], Any]) -> Column:
    return Column(name, path(source) if isinstance(source, str) else source)


@dataclass(frozen=True)
class CsvFile:
    """Output: one CSV object named by `file_name(ctx)`."""

    file_name: Callable[[ExportContext], str]


Layout = CsvFile


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
    expand: Callable[[Row], Iterable[Row]] = identity
    where: Callable[[Row], bool] | None = None
    params: type[BaseModel] = NoParams
    requires_markets: bool = False
    description: str = ""
    _header: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_header", tuple(c.name for c in self.columns))

    @property
    def header(self) -> tuple[str, ...]:
        return self._header
