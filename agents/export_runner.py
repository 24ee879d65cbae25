"""The export runner: one export at a time, oldest first, from the status table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from agents.ccpa import announce_ccpa, run_ccpa
from core import metrics
from core.app import app
from core.errors import ExportServiceError, ExportTimedOut
from core.events import export_result_bytes
from core.logging import log_context
from core.models import CcpaRequest, ErrorInfo, ExportRecord, Status, utcnow
from core.settings import Settings
from exporters.registry import BY_NAME, get_spec
from exporters.runner import (
    ExportResult,
    Progress,
    RunOptions,
    count_source,
    load_context,
    planned_keys,
    run_export,
    staging_prefix,
)
from exporters.spec import ExportContext, ExportSpec
from topics.definitions import export_events_topic, status_store

logger = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 1.0

metrics.register_export_types(BY_NAME)


@dataclass
class _Running:
    """The export being run now, so that a shutdown can wait for it or cancel it."""

    task: asyncio.Task[ExportRecord] | None = None


_running = _Running()


async def announce(record: ExportRecord) -> ExportRecord:
    """Publish the terminal event, then mark the record announced (re-sent after a crash)."""
    fut = await export_events_topic.send(key=record.id.encode(), value=export_result_bytes(record))
    await fut
    announced = record.evolve(announced=True)
    status_store.put(announced)
    return announced


@dataclass(frozen=True)
class _Prepared:
    spec: ExportSpec
    ctx: ExportContext
    total: int


async def _prepare(record: ExportRecord) -> _Prepared:
    """Context, preliminary count, and no leftovers of an earlier, interrupted attempt."""
    settings: Settings = app.settings
    deps = app.deps
    spec = get_spec(record.export_type)
    ctx = await load_context(
        spec,
        deps.source,
        export_id=record.id,
        campaign_id=record.campaign_id,
        params=record.params,
    )
    # A previous attempt killed mid-upload left an incomplete multipart upload behind.
    bucket = settings.bucket(spec.bucket)
    await deps.store.abort_uploads(bucket, planned_keys(spec, ctx))
    leftovers = await deps.store.list_keys(bucket, staging_prefix(spec, ctx))
    if leftovers:
        await deps.store.delete_objects(bucket, leftovers)
    total = await count_source(spec, ctx, deps.source)
    return _Prepared(spec, ctx, total)


async def _execute(record: ExportRecord) -> tuple[ExportRecord, ExportResult]:
    """Trigger and run one export; returns the last stored record and the run's result."""
    prepared = await _prepare(record)
    current = record.evolve(
        status=Status.TRIGGERED, triggered_at=utcnow(), total_count=prepared.total
    )
    status_store.put(current)
    logger.info(
        "export %s TRIGGERED (%s, %d source documents)",
        record.id,
        record.export_type,
        prepared.total,
    )

    async def on_progress(progress: Progress) -> None:
        nonlocal current
        current = current.evolve(row_count=progress.row_count, skipped_count=progress.skipped_count)
        status_store.put(current)
        metrics.export_progress(progress.row_count)

    deps = app.deps
    result = await run_export(
        prepared.spec,
        prepared.ctx,
        source=deps.source,
        store=deps.store,
        options=RunOptions.from_settings(app.settings),
        on_progress=on_progress,
    )
    return current, result


def _failed(record: ExportRecord, status: Status, code: str, message: str) -> ExportRecord:
    # From the last stored state, so that an EXPIRED/FAILED export keeps its triggeredAt,
    # totalCount and rowCount (the caller's copy predates the trigger and the progress).
    stored = status_store.get(record.id)
    if stored is not None and stored.is_active and stored.attempts == record.attempts:
        record = stored
    return record.evolve(
        status=status, finished_at=utcnow(), error=ErrorInfo(code=code, message=message)
    )


async def run_one(record: ExportRecord) -> ExportRecord:
    """Run an export to a terminal status; never raises for the export's own failures.

    Cancelled (a shutdown past its grace period), it puts the export back as it was picked
    (PENDING or TRIGGERED, the attempt not counted) and re-raises: the next start runs it.
    """
    with log_context(export_id=record.id, campaign_id=record.campaign_id):
        try:
            return await _run_one(record)
        except asyncio.CancelledError:
            stored = status_store.get(record.id)
            if stored is None or stored.status in (Status.PENDING, Status.TRIGGERED):
                # The engine has aborted the upload (no partial object); not an attempt.
                status_store.put(record)
                metrics.export_ended(record.export_type)
                logger.warning("export %s cancelled by shutdown; runs again on restart", record.id)
            raise


async def _run_one(record: ExportRecord) -> ExportRecord:
    settings: Settings = app.settings
    if record.attempts >= settings.export_max_attempts:
        final = _failed(
            record,
            Status.FAILED,
            "TOO_MANY_ATTEMPTS",
            f"the export was started {record.attempts} times without finishing",
        )
        status_store.put(final)
        return await announce(final)
    # Counted before any work, so that an export that kills the worker every time
    # ends FAILED after export_max_attempts instead of looping forever.
    current = record.evolve(attempts=record.attempts + 1)
    status_store.put(current)
    metrics.export_started(settings.export_timeout_seconds)
    try:
        async with asyncio.timeout(settings.export_timeout_seconds):
            current, result = await _execute(current)
        final = current.evolve(
            status=Status.FINISHED,
            finished_at=utcnow(),
            row_count=result.row_count,
            skipped_count=result.skipped_count,
            bucket=result.bucket,
            objects=result.objects,
            error=None,
        )
    except TimeoutError:
        err = ExportTimedOut(f"export ran longer than {settings.export_timeout_seconds:g} s")
        final = _failed(current, Status.EXPIRED, err.code, err.message)
    except ExportServiceError as exc:
        final = _failed(current, Status.FAILED, exc.code, exc.message)
    except Exception as exc:
        logger.exception("export %s failed unexpectedly", record.id)
        final = _failed(current, Status.FAILED, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
    status_store.put(final)
    metrics.export_ended(
        final.export_type,
        bucket=get_spec(final.export_type).bucket if final.status == Status.FINISHED else None,
        rows=final.row_count,
        size_bytes=sum(obj.size for obj in final.objects),
        finished=final.status == Status.FINISHED,
    )
    logger.info("export %s %s", record.id, final.status.value)
    return await announce(final)


def _owns_queue() -> bool:
    """Only the worker assigned the exports partition runs exports."""
    topic = app.settings.topic_exports
    assignment: Any = app.consumer.assignment()
    return any(tp.topic == topic for tp in assignment)


async def _wait_for_work() -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_IDLE_POLL_SECONDS):
            await status_store.work_available.wait()


async def _announce_pending_results() -> None:
    for record in status_store.unannounced():
        await announce(record)
    for request in status_store.unannounced_ccpa():
        await announce_ccpa(request)


@app.task  # type: ignore[untyped-decorator]
async def export_runner() -> None:
    """Starts after table recovery; runs the queue until the app stops.

    Results a crash (or a broker outage) kept from export-events are re-announced
    whenever the queue is idle.
    """
    while not app.should_stop:
        # Cleared before looking, so a request recorded meanwhile is never missed.
        status_store.work_available.clear()
        try:
            await _announce_pending_results()
            work = status_store.next_work() if _owns_queue() else None
            if work is None:
                await _wait_for_work()
                continue
            # CCPA deletions run in the same serial queue, between two exports.
            if isinstance(work, CcpaRequest):
                await run_ccpa(work)
            else:
                _running.task = asyncio.ensure_future(run_one(work))
                try:
                    await _running.task
                except asyncio.CancelledError:
                    if _running.task.cancelled() and not _cancelling():
                        break  # the export was cancelled by a shutdown, not this loop
                    raise
                finally:
                    _running.task = None
        except Exception:
            # The runner must outlive any single failure (e.g. the broker briefly gone).
            logger.exception("export runner iteration failed; retrying")
            await asyncio.sleep(_IDLE_POLL_SECONDS)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@app.on_drain
async def drain_running_export(grace_seconds: float) -> None:
    """At shutdown: let the running export finish within `grace_seconds`, else cancel it
    (upload aborted, record put back) and wait for that cleanup."""
    task = _running.task
    if task is None or task.done():
        return
    logger.info("shutdown: waiting up to %g s for the running export", grace_seconds)
    done, _ = await asyncio.wait({task}, timeout=grace_seconds)
    if done:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
