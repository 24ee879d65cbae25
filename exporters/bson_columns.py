"""Raw BSON batches to typed columns, with the documents whose values they cannot stand for.

A reply's documents are walked by numpy all at once (exporters.bson_walk: every element's
type byte, name and value span), and each field declared in `exporters/source_fields.py`
(SPEC §2) is built into an Arrow array straight from those bytes, without a Python object
per value. The type byte decides: a document whose element of a field has another type than
the declared one (or null), repeats the field, or holds a value the fast path cannot type (a
NaN, a date Python cannot hold, a list item that is not a string, a bool byte other than 0
or 1) is *suspect* in that field, and the engine computes those cells with the reference row
rules from the document as the driver decodes it. A nested field ("optIns.artist") is read
from its parent's own elements; a parent of another type than a document or null makes its
children suspect. A reply whose bytes do not add up, or whose strings are not UTF-8, is read
the slow way as a whole: every document suspect in every field, as the driver decodes it.
"""

from __future__ import annotations

import datetime as dt
import enum
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute  # see below
from bson.codec_options import CodecOptions

from core.deps import Doc
from exporters.bson_walk import Buffer, Elements, Ints, Malformed, walk
from exporters.spec import read_path


class FieldType(enum.Enum):
    """The type a field is read as on the fast path; any other value makes a document suspect."""

    STR = "str"
    BOOL = "bool"
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    STR_LIST = "str_list"


# Large offsets: a reply's strings may add up to more than 2 GiB in theory.
_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STR: pa.large_string(),
    FieldType.BOOL: pa.bool_(),
    FieldType.DATE: pa.timestamp("ms"),
    FieldType.INT: pa.int64(),
    FieldType.FLOAT: pa.float64(),
    FieldType.STR_LIST: pa.large_list(pa.large_string()),
}
_STRING, _DOCUMENT, _ARRAY, _BOOL, _DATE, _NULL = 0x02, 0x03, 0x04, 0x08, 0x09, 0x0A
_DOUBLE, _INT32, _INT64 = 0x01, 0x10, 0x12
_LENGTH = struct.Struct("<I")  # a document's first four bytes: its length
_ALLOWED_TYPES: dict[FieldType, tuple[int, ...]] = {
    FieldType.STR: (_STRING,),
    FieldType.BOOL: (_BOOL,),
    FieldType.DATE: (_DATE,),
    FieldType.INT: (_INT32, _INT64),  # a double would be truncated
    FieldType.FLOAT: (_DOUBLE,),  # a double only: an integer would gain a ".0"
    FieldType.STR_LIST: (_ARRAY,),
}
# Python's datetime (what the driver decodes to) holds years 1 to 9999 only.
_MIN_MS = int((dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp()) * 1000)
_MAX_MS = int((dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC).timestamp()) * 1000)

# polars' from_arrow imports pyarrow.compute on its first call (about 40 ms of CPU, the
# functions' docs parsed): imported with the engine, a worker's first export does not pay it.

# The options the MongoDB adapter gives its clients: documents decode as the row engine sees them.
DRIVER_CODEC_OPTIONS: CodecOptions[Doc] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)

Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BatchSchema:
    """The fields one collection is read with: dotted paths to their types."""

    fields: Mapping[str, FieldType]
    # Top-level names, and each parent's children, as the bytes of the elements' names.
    _tops: tuple[tuple[str, bytes, FieldType], ...] = field(init=False, repr=False, compare=False)
    _parents: tuple[tuple[bytes, tuple[tuple[str, bytes, FieldType], ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        tops: list[tuple[str, bytes, FieldType]] = []
        parents: dict[str, list[tuple[str, bytes, FieldType]]] = {}
        for dotted, kind in self.fields.items():
            parts = dotted.split(".")
            if len(parts) > 2:
                raise ValueError(f"{dotted}: the fast path reads at most one level of nesting")
            if len(parts) == 2:
                parents.setdefault(parts[0], []).append((dotted, parts[1].encode(), kind))
            else:
                tops.append((dotted, dotted.encode(), kind))
        for _, name, _ in tops:
            if name.decode() in parents:
                raise ValueError(f"{name.decode()} is read both as a value and as a document")
        object.__setattr__(self, "_tops", tuple(tops))
        object.__setattr__(
            self,
            "_parents",
            tuple((parent.encode(), tuple(children)) for parent, children in parents.items()),
        )

    def _slow(self, raw: bytes, offsets: Sequence[int]) -> TypedBatch:
        """Every document of the reply suspect, over null columns of the declared types."""
        count = len(offsets) - 1
        nulls = {name: pa.nulls(count, _ARROW_TYPES[kind]) for name, kind in self.fields.items()}
        every = frozenset(range(count))
        by_field = {name: every for name in self.fields}
        return TypedBatch(raw, offsets, nulls, self.fields, by_field, by_field)

    def decode(self, raw: bytes) -> TypedBatch:
        offsets = document_offsets(raw)
        try:
            found = self._columns(raw, offsets)
        except (Malformed, pa.ArrowInvalid):
            return self._slow(raw, offsets)
        return TypedBatch(
            raw,
            offsets,
            found.columns,
            self.fields,
            _indexes(found.suspect),
            _indexes(found.cell_suspect),
            found.number_cells,
        )

    def _columns(self, raw: bytes, offsets: Sequence[int]) -> _Found:
        buffer = Buffer(raw)
        bounds = np.asarray(offsets, dtype=np.int64)
        count = len(offsets) - 1
        top = walk(buffer, bounds[:-1], bounds[1:])
        found = _Found()
        for dotted, name, kind in self._tops:
            hits = top.named(buffer, name)
            found.add(dotted, kind, buffer, top, hits, top.owner[hits], count)
        for parent, children in self._parents:
            hits = top.named(buffer, parent)
            docs = top.owner[hits]
            types = top.kind[hits]
            # A parent of another type hides its children from the fast path; one named twice
            # leaves the driver's choice of the two to the row rules.
            spoilt = _flags(docs[(types != _DOCUMENT) & (types != _NULL)], count)
            spoilt |= _repeated(docs, count)
            nested = types == _DOCUMENT
            inner = walk(buffer, top.value[hits[nested]], top.end[hits[nested]])
            inner_docs = docs[nested][inner.owner]
            for dotted, name, kind in children:
                child_hits = inner.named(buffer, name)
                found.add(
                    dotted, kind, buffer, inner, child_hits, inner_docs[child_hits], count, spoilt
                )
        return found


@dataclass
class _Found:
    """A reply's typed columns; per field, the documents whose value the column does not
    stand for (`suspect`) and those whose cell it does not (`cell_suspect`, fewer: an integer
    in a string field is suspect as a value, yet its cell is its decimal text, in
    `number_cells`; a lone string in a list field is suspect as a value, yet the column holds
    it as a list of one, whose cell is the string)."""

    columns: dict[str, pa.Array] = field(default_factory=dict)
    suspect: dict[str, Flags] = field(default_factory=dict)
    cell_suspect: dict[str, Flags] = field(default_factory=dict)
    number_cells: dict[str, tuple[Ints, pa.Array]] = field(default_factory=dict)

    def add(
        self,
        dotted: str,
        kind: FieldType,
        buffer: Buffer,
        elements: Elements,
        hits: Ints,
        docs: Ints,
        count: int,
        spoilt: Flags | None = None,
    ) -> None:
        """A field's column, its suspects and its cell suspects (`hits` are its elements,
        `docs` the document each is in; `spoilt`: documents whose parent hides the field)."""
        repeated = _repeated(docs, count)
        lone = _lone_strings(elements, hits, docs, repeated) if kind is FieldType.STR_LIST else None
        column, suspect = _column(buffer, elements, hits, docs, count, kind, repeated, lone)
        cells = suspect.copy()
        if lone is not None:
            cells[lone[0]] = False  # a lone string's cell is the string, as its list of one
        elif kind is FieldType.STR:
            known = self._number_cells(dotted, buffer, elements, hits, docs, repeated)
            cells[known] = False
        if spoilt is not None:
            suspect, cells = suspect | spoilt, cells | spoilt
        self.columns[dotted], self.suspect[dotted], self.cell_suspect[dotted] = (
            column,
            suspect,
            cells,
        )

    def _number_cells(
        self,
        dotted: str,
        buffer: Buffer,
        elements: Elements,
        hits: Ints,
        docs: Ints,
        repeated: Flags,
    ) -> Ints:
        """The documents holding a whole number in a string field (a phone stored as
        15550000004), whose cells are its decimal text: the row rules write an int so
        (format_cell), and so does pyarrow's cast."""
        types = elements.kind[hits]
        whole = ((types == _INT32) | (types == _INT64)) & ~repeated[docs]
        known: Ints = docs[whole]
        if not known.size:
            return known
        at, small = hits[whole], types[whole] == _INT32
        numbers = np.where(small, buffer.i4[elements.value[at]], buffer.i8[elements.value[at]])
        texts = pa.array(numbers.astype(np.int64)).cast(pa.large_string())
        self.number_cells[dotted] = (known, texts)
        return known


def _indexes(flags: Mapping[str, Flags]) -> dict[str, frozenset[int]]:
    return {dotted: frozenset(np.flatnonzero(one).tolist()) for dotted, one in flags.items()}


def _flags(docs: Ints, count: int) -> Flags:
    flags = np.zeros(count, dtype=np.bool_)
    flags[docs] = True
    return flags


def _repeated(docs: Ints, count: int) -> Flags:
    """Documents holding the element more than once (the driver keeps the last)."""
    if not docs.size:
        return np.zeros(count, dtype=np.bool_)
    repeated: Flags = np.bincount(docs, minlength=count) > 1
    return repeated


def _column(
    buffer: Buffer,
    elements: Elements,
    hits: Ints,
    docs: Ints,
    count: int,
    kind: FieldType,
    repeated: Flags,
    lone: tuple[Ints, Ints, Ints] | None,
) -> tuple[pa.Array, Flags]:
    """A field's typed column over `count` documents, and the documents suspect in it.

    `hits` are the field's elements, `docs` the document each is in, `repeated` the documents
    holding it more than once, and `lone` a list field's lone strings (None for another type).
    """
    types = elements.kind[hits]
    allowed = _ALLOWED_TYPES[kind]
    right = types == allowed[0]
    for other in allowed[1:]:
        right |= types == other
    suspect = _flags(docs[~right & (types != _NULL)], count) | repeated
    docs, hits = docs[right], hits[right]
    value, end = elements.value[hits], elements.end[hits]
    valid = _flags(docs, count)
    if kind is FieldType.STR:
        return _strings(buffer, docs, value, end, count, valid), suspect
    if lone is not None:
        return _string_lists(buffer, docs, value, end, count, valid, suspect, lone), suspect
    if kind is FieldType.BOOL:
        byte = buffer.u1[value]
        odd = byte > 1  # the driver's reading of another byte is left to it
        suspect[docs[odd]] = True
        valid[docs[odd]] = False
        flags = np.zeros(count, dtype=np.bool_)
        flags[docs] = byte == 1
        return _array(pa.bool_(), _bits(flags), valid), suspect
    if kind is FieldType.DATE:
        millis = np.zeros(count, dtype=np.int64)
        millis[docs] = buffer.i8[value]
        outside = valid & ((millis < _MIN_MS) | (millis > _MAX_MS))
        suspect |= outside
        valid &= ~outside
        return _array(pa.timestamp("ms"), millis, valid), suspect
    if kind is FieldType.INT:
        numbers = np.zeros(count, dtype=np.int64)
        small = elements.kind[hits] == _INT32
        numbers[docs[small]] = buffer.i4[value[small]]
        numbers[docs[~small]] = buffer.i8[value[~small]]
        return _array(pa.int64(), numbers, valid), suspect
    doubles = np.zeros(count, dtype=np.float64)
    doubles[docs] = buffer.f8[value]
    nan = valid & np.isnan(doubles)
    suspect |= nan
    valid &= ~nan
    return _array(pa.float64(), doubles, valid), suspect


def _bits(flags: Flags) -> npt.NDArray[np.uint8]:
    """An Arrow bitmap of the flags."""
    return np.packbits(flags, bitorder="little")


def _array(kind: pa.DataType, values: npt.NDArray[Any], valid: Flags) -> pa.Array:
    """An Arrow array over the values' own memory (pa.array with a mask copies, slowly)."""
    return pa.Array.from_buffers(
        kind, valid.size, [pa.py_buffer(_bits(valid)), pa.py_buffer(values)]
    )


def _strings(
    buffer: Buffer, docs: Ints, value: Ints, end: Ints, count: int, valid: Flags
) -> pa.Array:
    """Strings (elements of type 2 at `value`..`end`) as one document's value each."""
    if buffer.u1[end - 1].any():
        raise Malformed("a string not ending on its NUL")
    begins = np.zeros(count, dtype=np.int64)
    lengths = np.zeros(count, dtype=np.int64)
    begins[docs] = value + 4
    lengths[docs] = end - value - 5
    return _string_array(buffer, begins, lengths, valid)


def _string_array(buffer: Buffer, begins: Ints, lengths: Ints, valid: Flags) -> pa.Array:
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # Each string's bytes gathered by one index: its begin, shifted by where it goes.
    index = np.repeat(begins - offsets[:-1], lengths) + np.arange(offsets[-1])
    data = buffer.u1[index]
    array = pa.Array.from_buffers(
        pa.large_string(),
        lengths.size,
        [
            pa.py_buffer(np.packbits(valid, bitorder="little")),
            pa.py_buffer(offsets),
            pa.py_buffer(data),
        ],
    )
    array.validate(full=True)  # UTF-8: the driver refuses what is not, and so does the reply
    return array


def _lone_strings(
    elements: Elements, hits: Ints, docs: Ints, repeated: Flags
) -> tuple[Ints, Ints, Ints]:
    """A list field's elements that are a lone string, in documents holding the field once
    (their document, value and end): the value is suspect (a str, not a list), but `as_list`
    and a cell read it as the list of that one string, which the column holds for it."""
    single = (elements.kind[hits] == _STRING) & ~repeated[docs]
    at = hits[single]
    return docs[single], elements.value[at], elements.end[at]


def _string_lists(
    buffer: Buffer,
    docs: Ints,
    value: Ints,
    end: Ints,
    count: int,
    valid: Flags,
    suspect: Flags,
    lone: tuple[Ints, Ints, Ints],
) -> pa.Array:
    """Arrays (elements of type 4) of strings, and the `lone` strings (documents, values,
    ends) as lists of one; an array holding anything else is suspect."""
    items = walk(buffer, value, end)
    owners = docs[items.owner]
    kinds, begins, ends = items.kind, items.value, items.end
    lone_docs, lone_begins, lone_ends = lone
    if lone_docs.size:
        owners = np.concatenate([owners, lone_docs])
        kinds = np.concatenate([kinds, np.full(lone_docs.size, _STRING, dtype=np.uint8)])
        begins = np.concatenate([begins, lone_begins])
        ends = np.concatenate([ends, lone_ends])
        valid[lone_docs] = True
    # The walk finds every array's first item, then every second one: by document, stably
    # (the arrays themselves were found in the order of their elements, not of documents).
    order = np.argsort(owners, kind="stable")
    item_docs = owners[order]
    odd = kinds[order] != _STRING
    suspect[item_docs[odd]] = True
    valid[item_docs[odd]] = False
    keep = valid[item_docs]
    kept = order[keep]
    lengths = np.bincount(item_docs[keep], minlength=count)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    strings = _strings(
        buffer,
        np.arange(kept.size),
        begins[kept],
        ends[kept],
        kept.size,
        np.ones(kept.size, dtype=np.bool_),
    )
    return pa.LargeListArray.from_arrays(pa.array(offsets), strings, mask=pa.array(~valid))


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
    # Per field, the documents whose cell `formatted` does not stand for: the suspect ones but
    # those whose cell is known all the same (an integer in a string field, in number_cells).
    cell_suspect_fields: Mapping[str, frozenset[int]]
    # Per string field, the documents holding a whole number there and its decimal text.
    number_cells: Mapping[str, tuple[Ints, pa.Array]] = field(default_factory=dict)
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

    def list_suspect(self, dotted: str) -> frozenset[int]:
        """The documents whose reading of the field through `as_list` (exporters.joins) the
        column does not stand for: of a list field, the suspect ones but those holding a lone
        string (the column holds it as its list of one, as `as_list` reads it, and its cell
        is the string: they are `cell_suspect_fields`); of any other field, the suspect."""
        if self.fields[dotted] is FieldType.STR_LIST:
            return self.cell_suspect_fields[dotted]
        return self.suspect_fields[dotted]

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
        """The field's cells (null for ''); rows of documents suspect in the field's cells
        (`cell_suspect_fields`) are to be replaced."""
        cells = format_column(self.columns[dotted], self.fields[dotted])
        numbers = self.number_cells.get(dotted)
        if numbers is not None:
            docs, texts = numbers
            cells = cells.scatter(docs, pl.Series(pl.from_arrow(texts)))
        return cells


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
        # Python's repr is the rule (the shortest round trip). polars writes the same text
        # but below 1e-4 in magnitude, where repr turns to an exponent ("1e-05" for its
        # "0.00001"): those few by repr (tests/unit/test_bson_columns.py checks the rest).
        cells = series.cast(pl.String)
        tiny = ((series.abs() < 1e-4) & (series != 0)).fill_null(False)
        if tiny.any():
            at = tiny.arg_true()
            cells = cells.scatter(at, list(map(repr, series.gather(at).to_list())))
        return cells
    return series.list.join(";")
