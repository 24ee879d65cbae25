"""What `exportctl` prints: tables for people, JSON for machines (`--json`).

Every value from the service is shown as plain text: campaign data and params may hold
anything, including what rich would otherwise read as markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal:
    # Piped into a file or another program: rich would assume 80 columns and fold tables.
    out.width = 200


def print_json(value: Any) -> None:
    # Printed as bytes to stdout: rich would wrap long lines and read markup.
    out.file.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.file.flush()


def print_json_array(values: Iterable[Any]) -> None:
    """`print_json` of a list, written item by item as `values` yields them: `list --all`
    over a long history holds one page at a time, not every record."""
    first = True
    for value in values:
        item = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n  ")
        out.file.write(("[\n  " if first else ",\n  ") + item)
        first = False
    out.file.write("[]\n" if first else "\n]\n")
    out.file.flush()


def print_json_line(value: Any) -> None:
    out.file.write(orjson.dumps(value).decode() + "\n")
    out.file.flush()


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return str(dt.timedelta(seconds=round(value)))


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} rows/s"


def _to_second(timestamp: Any) -> str:
    """`2026-12-02T13:29:11.576674Z` as `2026-12-02 13:29:11Z` (a table has little room)."""
    text = str(timestamp or "-")
    return text[:19].replace("T", " ") + "Z" if len(text) >= 19 else text


def export_summary(record: Mapping[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    error = record.get("error") or {}
    rows: list[tuple[str, str]] = [
        ("export", str(record.get("id"))),
        ("campaign", str(record.get("campaignId"))),
        ("type", str(record.get("exportType"))),
        ("params", orjson.dumps(record.get("params") or {}).decode()),
        ("status", str(record.get("status"))),
        ("requested", f"{record.get('createdAt')} by {record.get('requestedBy') or '-'}"),
        ("triggered", str(record.get("triggeredAt") or "-")),
        ("ended", str(record.get("finishedAt") or "-")),
        (
            "rows",
            f"{_count(record.get('rowCount'))} of {_count(record.get('totalCount'))} "
            f"source documents, {_count(record.get('skippedCount'))} skipped",
        ),
        ("speed", _rate(record.get("rowsPerSecond"))),
    ]
    if record.get("status") == "TRIGGERED":
        rows.append(("time left", seconds(record.get("etaSeconds"))))
    if error:
        rows.append(("error", f"{error.get('code')}: {error.get('message')}"))
    if record.get("traceId"):
        rows.append(("trace", str(record["traceId"])))
    for obj in record.get("objects") or []:
        rows.append(("object", f"{obj['key']} ({obj['size']:,} bytes, sha256 {obj['sha256']})"))
    for name, value in rows:
        table.add_row(name, Text(value))
    out.print(table)


def export_table(records: Iterable[Mapping[str, Any]]) -> None:
    table = Table(show_edge=False, header_style="bold")
    # Ids are what users copy into the next command: never cut short.
    table.add_column("id", no_wrap=True, min_width=32)
    for column in ("type", "status", "created", "rows", "objects"):
        numeric = column in ("rows", "objects")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column != "type")
    for record in records:
        table.add_row(
            Text(str(record.get("id"))),
            Text(str(record.get("exportType"))),
            Text(str(record.get("status"))),
            Text(_to_second(record.get("createdAt"))),
            _count(record.get("rowCount")),
            str(len(record.get("objects") or [])),
        )
    out.print(table)


def ccpa_summary(request: Mapping[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    summary = request.get("summary") or {}
    error = request.get("error") or {}
    rows = [
        ("request", str(request.get("requestId"))),
        ("user", str(request.get("userId"))),
        ("status", str(request.get("status"))),
        ("requested", f"{request.get('createdAt')} by {request.get('requestedBy') or '-'}"),
        ("ended", str(request.get("finishedAt") or "-")),
    ]
    if summary:
        rows += [
            ("campaigns", ", ".join(summary.get("campaignIds") or []) or "-"),
            (
                "deleted",
                f"{len(summary.get('deleted') or [])} exports, "
                f"{summary.get('deletedObjectCount', 0)} objects",
            ),
            ("kept (exempt)", f"{len(summary.get('exempt') or [])} exports"),
        ]
    if error:
        rows.append(("error", f"{error.get('code')}: {error.get('message')}"))
    for name, value in rows:
        table.add_row(name, Text(value))
    out.print(table)


def ccpa_table(requests: Iterable[Mapping[str, Any]]) -> None:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("request", no_wrap=True, min_width=32)
    for column in ("user", "status", "created", "deleted objects"):
        table.add_column(column, no_wrap=column != "user")
    for request in requests:
        summary = request.get("summary") or {}
        table.add_row(
            Text(str(request.get("requestId"))),
            Text(str(request.get("userId"))),
            Text(str(request.get("status"))),
            Text(_to_second(request.get("createdAt"))),
            str(summary.get("deletedObjectCount", "-")),
        )
    out.print(table)


def types_table(types: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("type")
    table.add_column("params")
    table.add_column("description")
    for name, description, schema in types:
        required = set(schema.get("required") or [])
        params = ", ".join(
            f"{key}{'' if key in required else '?'}:{prop.get('type', 'any')}"
            for key, prop in (schema.get("properties") or {}).items()
        )
        table.add_row(Text(name), Text(params or "-"), Text(description))
    out.print(table)
