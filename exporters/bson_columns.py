"""Raw BSON batches to typed columns, with a byte-level guard for what Arrow cannot type.

pymongoarrow decodes a server reply straight into Arrow arrays of a declared type, without
a Python object per value. What it does with a value of another type is not what the row
engine does (with `allow_invalid` a string field holding an integer becomes null, a list
field holding a lone string becomes an empty list), so every document that holds such a
value is found first, from its bytes, and marked *suspect*: the engine computes its rows
with the reference row rules from the document as the driver decodes it.

The guard: a BSON element is its type byte, its name and a NUL, then the value. pymongoarrow
reads a value of another type as null for strings, booleans and dates, as an empty list for
lists, and converts it for numbers. So the documents to look at are those with a null (or an
empty list) in a column, and for numbers every document of a reply whose count of elements
of that name with an allowed type byte is not the count of all elements of that name. In
each, the element's type byte decides: any type but the declared one (or null) makes the
document suspect. An element of the same name nested deeper, or those bytes inside a value,
can only make a document suspect for nothing; a wrongly typed value cannot hide, because its
own element is there. A reply holding a field named like one of pymongoarrow's inner names
for nested values ("optIns.artist", "additionalMarketIds[]"), or one it cannot build, is read
the slow way as a whole. Not guarded: a document that repeats a field name (which MongoDB
does not support and neither the loader nor a driver's dict can write) shifts that column.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from bson.codec_options import CodecOptions
from pymongoarrow.context import PyMongoArrowContext
from pymongoarrow.schema import Schema

from core.deps import Doc
from exporters.spec import read_path


class FieldType(enum.Enum):
    """The type a field is read as on the fast path; any other value makes a document suspect."""

    STR = "str"
    BOOL = "bool"
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    STR_LIST = "str_list"


_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STR: pa.string(),
    FieldType.BOOL: pa.bool_(),
    FieldType.DATE: pa.timestamp("ms"),
    FieldType.INT: pa.int64(),
    FieldType.FLOAT: pa.float64(),
    FieldType.STR_LIST: pa.list_(pa.string()),
}
_NULL = b"\x0a"
_LENGTH = struct.Struct("<I")  # a document's first four bytes: its length
# Bytes handed to pymongoarrow per call: about 1,000 small documents, a few milliseconds.
_PIECE_BYTES = 256 * 1024
_DOCUMENT = b"\x03"
_ALLOWED_TYPE_BYTES: dict[FieldType, bytes] = {
    FieldType.STR: b"\x02",
    FieldType.BOOL: b"\x08",
    FieldType.DATE: b"\x09",
    FieldType.INT: b"\x10\x12",  # int32, int64: a double would be truncated
    FieldType.FLOAT: b"\x01",  # a double only: an integer would gain a ".0"
    FieldType.STR_LIST: b"\x04",
}
# Python's datetime (what the driver decodes to) holds years 1 to 9999 only.
_MIN_MS = int((dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp()) * 1000)
_MAX_MS = int((dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC).timestamp()) * 1000)

# The options the MongoDB adapter gives its clients: documents decode as the row engine sees them.
DRIVER_CODEC_OPTIONS: CodecOptions[Doc] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)
_ARROW_CODEC_OPTIONS: CodecOptions[Doc] = CodecOptions()


@dataclass(frozen=True)
class BatchSchema:
    """The fields one collection is read with: dotted paths to their types."""

    fields: Mapping[str, FieldType]
    _schema: Schema = field(init=False, repr=False, compare=False)
    _clashes: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _clash_probes: tuple[tuple[bytes, tuple[bytes, ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        tops: dict[str, Any] = {}
        for dotted, kind in self.fields.items():
            parts = dotted.split(".")
            if len(parts) > 2:
                raise ValueError(f"{dotted}: the fast path reads at most one level of nesting")
            if len(parts) == 2:
                children = tops.setdefault(parts[0], {})
                if not isinstance(children, dict):
                    raise ValueError(f"{parts[0]} is read both as a value and as a document")
                children[parts[1]] = _ARROW_TYPES[kind]
            else:
                if isinstance(tops.get(parts[0]), dict):
                    raise ValueError(f"{parts[0]} is read both as a value and as a document")
                tops[parts[0]] = _ARROW_TYPES[kind]
        arrow = {
            name: pa.struct(list(kind.items())) if isinstance(kind, dict) else kind
            for name, kind in tops.items()
        }
        object.__setattr__(self, "_schema", Schema(arrow))
        # Names pymongoarrow uses inside for nested values: a field really called so is read
        # into the nested value ("optIns.artist") or a list ("additionalMarketIds[]").
        clashes = {dotted for dotted in self.fields if "." in dotted}
        clashes |= {f"{dotted.partition('.')[0]}[]" for dotted in self.fields}
        object.__setattr__(
            self, "_clashes", tuple(name.encode() + b"\x00" for name in sorted(clashes))
        )
        # One scan of a chunk per probe instead of one per name: the names are only looked
        # for when a probe (a dotted name's "top.", or "[]" and the NUL after it) is there.
        probes: dict[bytes, list[bytes]] = {}
        for element in self._clashes:
            probe = element[: element.index(b".") + 1] if b"." in element else b"[]\x00"
            probes.setdefault(probe, []).append(element)
        object.__setattr__(
            self, "_clash_probes", tuple((probe, tuple(names)) for probe, names in probes.items())
        )

    def _slow(self, raw: bytes, offsets: Sequence[int]) -> TypedBatch:
        """Every document of the reply suspect, over null columns of the declared types."""
        count = len(offsets) - 1
        nulls = {name: pa.nulls(count, _ARROW_TYPES[kind]) for name, kind in self.fields.items()}
        every = frozenset(range(count))
        return TypedBatch(raw, offsets, nulls, self.fields, {name: every for name in self.fields})

    def _clashing_name(self, raw: bytes) -> bool:
        return any(
            _holds(raw, probe) and any(element in raw for element in names)
            for probe, names in self._clash_probes
        )

    def decode(self, raw: bytes, piece_bytes: int = _PIECE_BYTES) -> TypedBatch:
        offsets = document_offsets(raw)
        count = len(offsets) - 1
        context = PyMongoArrowContext(
            self._schema, codec_options=_ARROW_CODEC_OPTIONS, allow_invalid=True
        )
        try:
            # In pieces: a call holds the GIL throughout, and the event loop waits for it.
            for start, end in _pieces(offsets, piece_bytes):
                context.process_bson_stream(raw[start:end])
            table: pa.Table = context.finish()
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            # A field named like one of pymongoarrow's inner names can leave its builders of
            # different lengths: the reply is read the slow way, as the driver decodes it.
            return self._slow(raw, offsets)
        if table.num_rows != count:
            return self._slow(raw, offsets)  # builders of other lengths than the reply's
        if self._clashing_name(raw):
            # Such a field feeds the builder of the nested value, which then shifts the values
            # of every later document of the reply.
            return self._slow(raw, offsets)
        by_field: dict[str, frozenset[int]] = {}
        columns: dict[str, pa.Array] = {}
        for dotted, kind in self.fields.items():
            top, _, child = dotted.partition(".")
            array = table.column(top).combine_chunks()
            if child:
                array = pc.struct_field(array, child)
            columns[dotted] = array
            by_field[dotted] = _suspects(raw, offsets, array, kind, (child or top).encode())
        return TypedBatch(raw, offsets, columns, self.fields, by_field)


_LIST_ITEMS = b"[]\x00"
_RARE_TRIES = 64


def _holds(raw: bytes, probe: bytes) -> bool:
    """`probe in raw`; "[]" and its NUL are found by the "]" (a memchr, where a search for
    a short needle ending in a NUL, common in BSON, crawls), while few "]" are there."""
    if probe != _LIST_ITEMS:
        return probe in raw
    position = raw.find(b"]")
    for _ in range(_RARE_TRIES):
        if position == -1:
            return False
        if raw[position - 1 : position + 2] == _LIST_ITEMS:
            return True
        position = raw.find(b"]", position + 1)
    return position != -1 and raw.find(_LIST_ITEMS, position - 1) != -1


def _suspects(
    raw: bytes, offsets: Sequence[int], array: pa.Array, kind: FieldType, name: bytes
) -> frozenset[int]:
    """The documents whose value of the field `name` its column does not stand for."""
    element = name + b"\x00"
    allowed = _ALLOWED_TYPE_BYTES[kind] + _NULL
    nulls, others = _candidates(raw, array, kind, element, allowed, len(offsets) - 1)
    suspect: set[int] = set()
    find = raw.find
    # A document is suspect when an element of the name has a type byte not `right`; the loop
    # is inline because tens of thousands of documents per chunk come here.
    for candidates, right in ((nulls, _NULL), (others, allowed)):
        for index in candidates:
            start, end = offsets[index], offsets[index + 1]
            position = find(element, start, end)
            while position > start:
                if raw[position - 1] not in right:
                    suspect.add(index)
                    break
                position = find(element, position + 1, end)
    suspect.update(_untypable(array, kind))
    return frozenset(suspect)


def _pieces(offsets: Sequence[int], most: int) -> Iterable[tuple[int, int]]:
    """Spans of whole documents of about `most` bytes (a larger document is a span alone)."""
    last = len(offsets) - 1
    start = 0
    while start < last:
        # The first document end at least `most` bytes on, found by bisection, not a walk.
        at = min(bisect.bisect_left(offsets, offsets[start] + most, start + 1), last)
        yield offsets[start], offsets[at]
        start = at


def _untypable(array: pa.Array, kind: FieldType) -> Iterable[int]:
    """Documents whose value has the right BSON type but does not fit the fast path."""
    if kind is FieldType.DATE:
        millis = pc.cast(array, pa.int64())
        outside = pc.or_(pc.less(millis, _MIN_MS), pc.greater(millis, _MAX_MS))
        return _ints(pc.indices_nonzero(pc.fill_null(outside, False)))
    if kind is FieldType.STR_LIST:
        # An item of another type decodes as null, as does a null item: both go the slow way.
        items_null = pc.is_null(pc.list_flatten(array))
        parents = pc.list_parent_indices(array)
        return set(_ints(pc.filter(parents, items_null)))
    return ()


def _candidates(
    raw: bytes, array: pa.Array, kind: FieldType, element: bytes, allowed: bytes, count: int
) -> tuple[list[int], Iterable[int]]:
    """Documents to look at: those whose value is null (any element of the name but a null
    one means a value the column lost, a NaN double included), and those whose value may
    stand for a value of another type (see the module doc)."""
    nulls = _ints(pc.indices_nonzero(pc.is_null(array)))
    if kind is FieldType.STR_LIST:
        empty = pc.fill_null(pc.equal(pc.list_value_length(array), 0), False)
        return nulls, _ints(pc.indices_nonzero(empty))
    if kind in (FieldType.INT, FieldType.FLOAT):
        typed = sum(raw.count(bytes([type_byte]) + element) for type_byte in allowed)
        if typed != raw.count(element):
            return nulls, range(count)
    return nulls, ()


def _ints(array: pa.Array) -> list[int]:
    """An integer array's values (no nulls) as Python ints; Array.to_pylist makes a scalar
    object per value first."""
    values: list[int] = array.to_numpy(zero_copy_only=False).tolist()
    return values


def document_offsets(raw: bytes) -> list[int]:
    """Where each document of a reply starts, and the end of the last one."""
    offsets = [0]
    append = offsets.append
    position, end = 0, len(raw)
    length_at = _LENGTH.unpack_from
    while position < end:
        if end - position < 4:
            raise bson.errors.InvalidBSON(f"a truncated document length at offset {position}")
        (length,) = length_at(raw, position)
        if length < 5:  # the smallest document; a smaller length would loop for ever
            raise bson.errors.InvalidBSON(f"a document of {length} bytes at offset {position}")
        position += length
        append(position)
    if position != end:
        raise bson.errors.InvalidBSON("a reply's documents do not add up to its length")
    return offsets


@dataclass(frozen=True)
class TypedBatch:
    """One reply's documents as typed columns, plus the documents they cannot stand for."""

    raw: bytes
    offsets: Sequence[int]
    columns: Mapping[str, pa.Array]
    fields: Mapping[str, FieldType]
    # Per field, the documents whose value in it the column does not stand for: only those
    # cells of a suspect document need the row rules, the document's other columns are exact.
    suspect_fields: Mapping[str, frozenset[int]]
    suspect: frozenset[int] = field(init=False)  # suspect in any field
    _docs: dict[int, Doc] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suspect", frozenset().union(*self.suspect_fields.values()))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def doc(self, index: int) -> Doc:
        """Document `index` as the driver decodes it (kept: a suspect row may need it twice)."""
        found = self._docs.get(index)
        if found is None:
            start, end = self.offsets[index], self.offsets[index + 1]
            found = bson.decode(self.raw[start:end], codec_options=DRIVER_CODEC_OPTIONS)
            self._docs[index] = found
        return found

    def values(self, dotted: str) -> list[Any]:
        """Python values of a STR, BOOL or STR_LIST field; documents suspect in it read as
        decoded."""
        # polars builds the Python objects several times faster than Array.to_pylist.
        values: list[Any] = pl.Series(pl.from_arrow(self.columns[dotted])).to_list()
        # Only the documents suspect in this field: the column stands for the others' values
        # (a user with an integer phone keeps its typed _id, and is not decoded for it).
        suspect = self.suspect_fields[dotted]
        if suspect:
            parts = dotted.split(".")
            for index in suspect:
                values[index] = read_path(self.doc(index), parts)
        return values

    def formatted(self, dotted: str) -> pl.Series:
        """The field's cells (null for ''); rows of suspect documents are to be replaced."""
        return format_column(self.columns[dotted], self.fields[dotted])


def format_column(array: pa.Array, kind: FieldType) -> pl.Series:
    """Cells of typed values, by the rules of exporters.formatting.format_cell."""
    series = pl.Series(pl.from_arrow(array))
    if kind is FieldType.STR:
        return series
    if kind is FieldType.BOOL:
        frame = pl.DataFrame({"v": series})
        return frame.select(
            pl.when(pl.col("v")).then(pl.lit("true")).when(~pl.col("v")).then(pl.lit("false"))
        ).to_series()
    if kind is FieldType.DATE:
        return series.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind is FieldType.INT:
        return series.cast(pl.String)
    if kind is FieldType.FLOAT:
        # Python's repr is the rule (shortest round trip, "1e-05"); polars writes "1e-5".
        values = series.to_list()
        if series.null_count():
            return pl.Series([None if v is None else repr(v) for v in values], dtype=pl.String)
        return pl.Series(list(map(repr, values)), dtype=pl.String)
    return series.list.join(";")
