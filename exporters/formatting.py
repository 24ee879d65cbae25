"""How a value becomes a CSV cell (SPEC §3 file format)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def format_datetime(value: dt.datetime) -> str:
    # BSON dates carry no zone; a naive value is UTC by the data model.
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_cell(value: Any) -> str:
    """ISO-8601 UTC seconds, true/false, integers, shortest round-trip floats, '' for missing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(format_cell(item) for item in value)
    return str(value)
