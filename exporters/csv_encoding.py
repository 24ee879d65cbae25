"""RFC 4180 CSV encoding of row batches: UTF-8, no BOM, CRLF, quotes only where needed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


def encode_rows(rows: Iterable[Sequence[str]]) -> bytes:
    """Encode cells (already formatted strings) as CSV lines."""
    buffer = io.StringIO()
    # QUOTE_MINIMAL quotes cells holding a comma, a quote, CR or LF, as RFC 4180 needs.
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return buffer.getvalue().encode("utf-8")
