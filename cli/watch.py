"""`exportctl watch`: a live bar of a running export, until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from cli.client import ACTIVE, ApiError
from cli.exit_codes import ExitCode
from cli.render import err, seconds

Record = Mapping[str, Any]


class GaveUp(Exception):
    """The deadline passed before the export ended; carries the last record seen."""

    def __init__(self, record: Record) -> None:
        super().__init__("timed out")
        self.record = record


def fraction_done(record: Record) -> float | None:
    """How far the run is, from its own estimate of the time left (rows are not the unit
    of work: a document may give several rows); from rows of the count when no estimate."""
    status = record.get("status")
    if status not in ACTIVE:
        return 1.0
    if status != "TRIGGERED":
        return 0.0
    eta, rate = record.get("etaSeconds"), record.get("rowsPerSecond")
    rows, total = record.get("rowCount") or 0, record.get("totalCount")
    if eta is not None and rate:
        run_seconds = rows / rate
        if run_seconds + eta > 0:
            return min(float(run_seconds / (run_seconds + eta)), 1.0)
    if total:
        return min(float(rows / total), 1.0)
    return None


def _line(record: Record) -> str:
    rows = record.get("rowCount") or 0
    rate = record.get("rowsPerSecond")
    parts = [str(record.get("status")), f"{rows:,} rows"]
    if record.get("totalCount") is not None:
        parts.append(f"of {record['totalCount']:,} documents")
    if rate is not None:
        parts.append(f"{rate:,.0f} rows/s")
    if record.get("status") == "TRIGGERED" and record.get("etaSeconds") is not None:
        parts.append(f"ETA {seconds(record['etaSeconds'])}")
    return "  ".join(parts)


def _next(fetch: Callable[[], Record], last: Record) -> Record:
    """The record again; while the service is briefly away (a worker restarting, 503 or
    no answer) the last one seen, so that a watch outlives a rollout."""
    try:
        return fetch()
    except ApiError as exc:
        if exc.exit_code != ExitCode.UNAVAILABLE:
            raise
        err.print(f"exportctl: {exc}; trying again", markup=False)
        return last


def watch(
    fetch: Callable[[], Record],
    *,
    interval: float,
    timeout: float | None,
    show_bar: bool,
    on_change: Callable[[Record], None] | None = None,
) -> Record:
    """Poll `fetch` until the record ends (returned); GaveUp past `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_bar,
        transient=False,
    )
    record = fetch()
    last_status = None
    with progress:
        task: TaskID = progress.add_task(_line(record), total=1.0)
        while True:
            done = fraction_done(record)
            progress.update(task, description=_line(record), completed=done or 0.0)
            if on_change is not None and record.get("status") != last_status:
                on_change(record)
            last_status = record.get("status")
            if record.get("status") not in ACTIVE:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise GaveUp(record)
            left = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(left, 0.0))
            record = _next(fetch, record)
