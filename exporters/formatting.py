"""How a value becomes a CSV cell (SPEC §3 file format)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

# The same few dates (a campaign's events) fill whole columns; the cache keeps the first
# distinct values seen and never grows beyond this.
_DATETIME_CACHE_SIZE = 4096
_datetime_cache: dict[dt.datetime, str] = {}


def format_datetime(value: dt.datetime) -> str:
    text = _datetime_cache.get(value)
    if text is None:
        text = _format_datetime(value)
        if len(_datetime_cache) < _DATETIME_CACHE_SIZE:
            _datetime_cache[value] = text
    return text


def _format_datetime(value: dt.datetime) -> str:
    # BSON dates carry no zone; a naive value is UTC by the data model. The driver returns
    # dt.UTC itself, so the common case needs no offset arithmetic.
    tz = value.tzinfo
    if tz is not None and tz is not dt.UTC and value.utcoffset():
        value = value.astimezone(dt.UTC)
    # An f-string is several times faster than strftime on the hot path.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    )


def _format_other(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(format_cell(item) for item in value)
    return str(value)


# Exact-type dispatch for the common types; subclasses (bson Int64, ...) take the slow path.
_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: lambda v: v,
    type(None): lambda v: "",
    bool: lambda v: "true" if v else "false",
    int: str,
    float: repr,
    dt.datetime: format_datetime,
}


def format_cell(value: Any) -> str:
    """ISO-8601 UTC seconds, true/false, integers, shortest round-trip floats, '' for missing."""
    formatter = _BY_TYPE.get(type(value))
    return formatter(value) if formatter is not None else _format_other(value)
