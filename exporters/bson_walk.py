"""The elements of many BSON documents at once, found by numpy: no Python step per document.

A BSON document is its length (int32), its elements and a NUL; an element is its type byte,
its name (a C string) and its value, whose size the type says (fixed, length-prefixed, or
two C strings for a regex). `walk` advances one element of every document per step, all
documents together, so a chunk of 9,000 documents costs as many numpy steps as its longest
document has elements. Anything that does not add up (an unknown type byte, a value that
runs past its document, a document not ending on its NUL) raises `Malformed`: the caller
then leaves every value to the driver's own decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]

_PAD = 16  # zero bytes after the data: a word read at any position inside it stays in bounds
_UNKNOWN = -1
_PREFIXED = -2
_REGEX = -3
# Value size by type byte: a fixed size, or how to find it.
_SIZE = np.full(256, _UNKNOWN, dtype=np.int64)
for _kind, _size in {
    0x01: 8,  # double
    0x06: 0,  # undefined
    0x07: 12,  # ObjectId
    0x08: 1,  # bool
    0x09: 8,  # UTC datetime
    0x0A: 0,  # null
    0x10: 4,  # int32
    0x11: 8,  # timestamp
    0x12: 8,  # int64
    0x13: 16,  # decimal128
    0x7F: 0,  # max key
    0xFF: 0,  # min key
}.items():
    _SIZE[_kind] = _size
for _kind in (0x02, 0x03, 0x04, 0x05, 0x0C, 0x0D, 0x0E, 0x0F):
    _SIZE[_kind] = _PREFIXED
_SIZE[0x0B] = _REGEX
# A length-prefixed value's size beyond its int32, and the least that int32 may be.
_EXTRA = np.zeros(256, dtype=np.int64)
_LEAST = np.zeros(256, dtype=np.int64)
for _kind, (_extra, _least) in {
    0x02: (4, 1),  # string: length, bytes, NUL
    0x0D: (4, 1),  # JavaScript code
    0x0E: (4, 1),  # symbol
    0x03: (0, 5),  # document
    0x04: (0, 5),  # array
    0x0F: (0, 14),  # code with scope: length, string, document
    0x05: (5, 0),  # binary: length, subtype, bytes
    0x0C: (16, 1),  # DBPointer: string, ObjectId
}.items():
    _EXTRA[_kind], _LEAST[_kind] = _extra, _least

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_BYTE_NUMBERS = np.uint64(0x0706050403020100)
_ONE, _SEVEN, _TOP_BYTE = np.uint64(1), np.uint64(7), np.uint64(56)
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)


class Malformed(ValueError):
    """The bytes are not documents whose elements add up."""


class Buffer:
    """A chunk's bytes, readable as words and numbers at any byte position, many at once."""

    def __init__(self, raw: bytes) -> None:
        self.size = len(raw)
        padded = raw + bytes(_PAD)
        self._padded = padded  # the views below borrow its memory
        self.u1: npt.NDArray[np.uint8] = np.frombuffer(padded, dtype=np.uint8)
        self.u8: npt.NDArray[np.uint64] = self._view(padded, "<u8")
        self.i4 = self._view(padded, "<i4")
        self.i8 = self._view(padded, "<i8")
        self.f8 = self._view(padded, "<f8")

    def _view(self, padded: bytes, dtype: str) -> npt.NDArray[Any]:
        # Overlapping items one byte apart: item i is the number whose bytes start at i.
        return np.ndarray(shape=(self.size + 1,), dtype=dtype, buffer=padded, strides=(1,))

    def cstring_end(self, at: Ints) -> Ints:
        """Where the first NUL at or after each position is (eight bytes per numpy step)."""
        if at.size and at.max() > self.size:
            raise Malformed("a name or string runs past the data")
        words: npt.NDArray[np.uint64] = self.u8[at]
        # The lowest set bit marks the first zero byte (borrows only reach higher bytes).
        zero = (words - _ONES) & ~words & _HIGHS
        # Byte k's bit alone, moved to bit 8k, times the bytes 0..7: the top byte is 7-k.
        lowest = (zero & (~zero + _ONE)) >> _SEVEN
        end = at + (_SEVEN - ((lowest * _BYTE_NUMBERS) >> _TOP_BYTE)).astype(np.int64)
        longer = zero == 0  # no NUL in these eight bytes: on to the next eight
        if longer.any():
            end[longer] = self.cstring_end(at[longer] + 8)
        return end


@dataclass(frozen=True)
class Elements:
    """Every element of the walked containers, in no particular order."""

    owner: Ints  # the index of the container (document) it is in
    kind: npt.NDArray[np.uint8]  # its type byte
    name: Ints  # where its name starts (it ends on the NUL before `value`)
    value: Ints  # where its value starts
    end: Ints  # where its value ends
    _first_words: npt.NDArray[np.uint64] | None = field(default=None, repr=False, compare=False)
    _name_length: Ints | None = field(default=None, repr=False, compare=False)

    def named(self, buffer: Buffer, name: bytes) -> Ints:
        """The indexes of the elements called `name`."""
        if self._first_words is None or self._name_length is None:
            # Each name's first eight bytes (fewer for a shorter name, the rest zeroed): one
            # comparison per element tells most names apart.
            length = self.value - self.name - 1
            words = buffer.u8[self.name] & _MASKS[np.minimum(length, 8)]
            object.__setattr__(self, "_first_words", words)
            object.__setattr__(self, "_name_length", length)
        assert self._first_words is not None and self._name_length is not None  # noqa: S101, PT018
        first = np.uint64(int.from_bytes(name[:8], "little"))
        hits = np.flatnonzero((self._first_words == first) & (self._name_length == len(name)))
        for at in range(8, len(name), 8):
            if not hits.size:
                break
            word = name[at : at + 8]
            mask = np.uint64((1 << (8 * len(word))) - 1)
            wanted = np.uint64(int.from_bytes(word, "little"))
            hits = hits[(buffer.u8[self.name[hits] + at] & mask) == wanted]
        return hits


def walk(buffer: Buffer, starts: Ints, ends: Ints) -> Elements:
    """The elements of the containers (documents or arrays) at [starts, ends)."""
    if starts.size and (ends - starts < 5).any():
        raise Malformed("a container shorter than five bytes")
    last = ends - 1  # where each container's closing NUL is
    if last.size and buffer.u1[last].any():
        raise Malformed("a container not ending on its NUL")
    position, owner = starts + 4, np.arange(starts.size)
    parts: list[tuple[Ints, npt.NDArray[np.uint8], Ints, Ints, Ints]] = []
    while position.size:
        more = position < last[owner]
        if not more.all():
            if (position[~more] != last[owner[~more]]).any():
                raise Malformed("elements that run past their container")
            position, owner = position[more], owner[more]
            if not position.size:
                break
        parts.append(_step(buffer, position, owner, last[owner]))
        position = parts[-1][-1]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Elements(empty, np.zeros(0, dtype=np.uint8), empty, empty, empty)
    owner, kind, name, value, end = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Elements(owner, kind, name, value, end)


def _step(
    buffer: Buffer, position: Ints, owner: Ints, limit: Ints
) -> tuple[Ints, npt.NDArray[np.uint8], Ints, Ints, Ints]:
    """The element at each position: owner, type byte, name, value, end (`limit`: where
    each one's container closes)."""
    kind = buffer.u1[position]
    name_end = buffer.cstring_end(position + 1)
    value = name_end + 1
    if (value > limit).any():
        raise Malformed("a name that runs past its container")
    how = _SIZE[kind]
    size = how
    if (how < 0).any():
        if (how == _UNKNOWN).any():
            raise Malformed("an unknown type byte")
        # Every element's first four value bytes, read as a length where the type has one.
        length = buffer.i4[value].astype(np.int64)
        prefixed = how == _PREFIXED
        if (prefixed & (length < _LEAST[kind])).any():
            raise Malformed("a length below its type's least")
        size = np.where(prefixed, length + _EXTRA[kind], how)
        regex = how == _REGEX
        if regex.any():
            pattern_end = buffer.cstring_end(value[regex])
            size[regex] = buffer.cstring_end(pattern_end + 1) + 1 - value[regex]
    end = value + size
    if (end > limit).any():
        raise Malformed("a value that runs past its container")
    return owner, kind, position + 1, value, end
