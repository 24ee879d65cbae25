"""Cell formatting and CSV encoding rules of SPEC §3 (file format)."""

from __future__ import annotations

import datetime as dt

import pytest
from bson.int64 import Int64

from exporters.csv_encoding import encode_rows
from exporters.formatting import format_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (Int64(7), "7"),
        (87.5, "87.5"),
        (87.0, "87.0"),
        (0.1, "0.1"),
        ("verbatim =SUM(A1)", "verbatim =SUM(A1)"),
        (dt.datetime(2026, 5, 1, 17, 0, 0, 999999, tzinfo=dt.UTC), "2026-05-01T17:00:00Z"),
        (dt.datetime(2026, 5, 1, 17, 0), "2026-05-01T17:00:00Z"),
        (
            dt.datetime(2026, 5, 1, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2026-05-01T17:00:00Z",
        ),
    ],
)
def test_cells(value: object, cell: str) -> None:
    assert format_cell(value) == cell


def test_csv_is_crlf_and_quotes_only_where_needed() -> None:
    body = encode_rows([["a", "b,c", 'say "hi"', "two\nlines", "cr\rhere", ""]])
    assert body == b'a,"b,c","say ""hi""","two\nlines","cr\rhere",\r\n'


def test_csv_is_utf8_without_bom() -> None:
    assert encode_rows([["é", "🎤"]]) == "é,🎤\r\n".encode()
