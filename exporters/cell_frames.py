"""A batch's cells as a polars frame: CSV bytes of it, and its rows cut into grouped files.

The columnar engine hands its cells over as a frame of String columns (null for an empty
cell) in row order: one CSV writes it whole; the grouped layouts (a ZIP of CSVs, a CSV per
group) cut it by each row's group, and a ZIP's groups again at `MAX_ROWS_PER_FILE` and at a
sample's limit, counting the rows each group already holds from earlier batches, as the
row engine's outputs do row by row.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

_GROUP = "\x00group"  # helper columns, named so that no cell column (c0, c1, ...) clashes
_AT = "\x00at"
_NUMBER = "\x00number"


def cells_frame(columns: list[pl.Series]) -> pl.DataFrame:
    """The cell columns as a frame to write, an empty cell as null (written bare, as
    csv.writer does; polars would quote "")."""
    frame = pl.DataFrame({f"c{i}": series for i, series in enumerate(columns)})
    return frame.select(
        pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in frame.columns
    )


def frame_csv(frame: pl.DataFrame) -> bytes:
    """The frame's CSV lines (no header), as exporters.csv_encoding writes them."""
    # Into bytes directly: without a file, polars writes bytes, then decodes them to a str
    # (which would be encoded again here), two passes over the chunk's CSV for nothing.
    buffer = io.BytesIO()
    frame.write_csv(
        buffer,
        include_header=False,
        line_terminator="\r\n",
        quote_style="necessary",
        null_value="",
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class EncodedBatch:
    """A batch's CSV lines for a one-CSV layout, holding `rows` rows."""

    data: bytes
    rows: int
    skipped: int = 0  # source documents left out because a required join found nothing


@dataclass(frozen=True)
class GroupedCells:
    """A batch's kept rows for a grouped layout: their cells and each row's group."""

    frame: pl.DataFrame
    groups: pl.Series  # String, one per row
    skipped: int = 0  # source documents left out because a required join found nothing

    @property
    def rows(self) -> int:
        return self.frame.height


ColumnarBatch = EncodedBatch | GroupedCells
"""What the columnar engine makes of a chunk: CSV lines for one CSV, else cells and groups."""


@dataclass(frozen=True)
class Piece:
    """The rows of one batch that go to one file: group, part number (from 1) and cells."""

    group: str
    number: int
    frame: pl.DataFrame

    @property
    def rows(self) -> int:
        return self.frame.height


def group_pieces(cells: GroupedCells) -> list[Piece]:
    """The batch's rows per group, groups in order of their first row, rows in order."""
    return member_pieces(cells, {}, split=0, limit=None)


def member_pieces(
    cells: GroupedCells, written: Mapping[str, int], *, split: int, limit: int | None
) -> list[Piece]:
    """The batch's rows per file: a group's rows go to parts of `split` rows (0: one part),
    after the `written[group]` rows earlier batches gave it; rows past `limit` per group are
    left out. Pieces come in order of their first row, each piece's rows in order."""
    if not cells.rows:
        return []
    frame = cells.frame.with_columns(cells.groups.alias(_GROUP))
    keys = [_GROUP]
    if split or limit is not None:
        earlier = pl.col(_GROUP).replace_strict(dict(written), default=0, return_dtype=pl.Int64)
        frame = frame.with_columns((earlier + pl.int_range(pl.len()).over(_GROUP)).alias(_AT))
        if limit is not None:
            frame = frame.filter(pl.col(_AT) < limit)
        part = pl.col(_AT) // split + 1 if split else pl.lit(1, dtype=pl.Int64)
        frame = frame.with_columns(part.alias(_NUMBER)).drop(_AT)
        keys.append(_NUMBER)
    pieces: list[Piece] = []
    for key, piece in frame.partition_by(keys, maintain_order=True, as_dict=True).items():
        group, number = key[0], key[1] if len(key) > 1 else 1
        assert isinstance(group, str) and isinstance(number, int)  # noqa: S101, PT018
        pieces.append(Piece(group, number, piece.drop(keys)))
    return pieces
