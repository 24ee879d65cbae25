"""The export runner: one export at a time, oldest first, from the status table.

Every end of an export goes the same way (`_end`): the terminal status is written from the
stored record, then `settle` aborts the run's multipart uploads and staging objects
(unless it FINISHED) and publishes the result event, and only then marks it announced. A
crash between those steps, or a clean-up S3 did not answer (`cleanup_pending`), leaves the
record unsettled; the idle runner settles it again (both steps are idempotent, and the
event keeps its `eventId`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bson.errors import InvalidBSON
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from agents.ccpa import CcpaDeletion
from core import tracing
from core.app import ExportApp
from core.deps import Broker, Clock
from core.errors import (
    ExportCancelled,
    ExportNotFound,
    ExportServiceError,
    ExportTimedOut,
    NotCancellable,
    UnreadableDocument,
    UploadFailed,
)
from core.events import export_result_bytes
from core.lifecycle import reach_tolerance, start_try
from core.logging import log_context
from core.models import (
    TERMINAL_STATUSES,
    CcpaRequest,
    ErrorInfo,
    ExportRecord,
    PlannedUploads,
    Status,
)
from core.progress import ProgressRate, average_rows_per_second
from core.settings import Settings
from exporters.registry import get_spec
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
from topics.status import StatusStore

logger = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 1.0
_CANCEL_WAIT_SECONDS = 10.0
_RETIRED_PER_STEP = 200  # removals between two looks at the queue (a few ms of the loop)
_CLEANUP_TIMEOUT_SECONDS = 10.0  # one clean-up; S3 answers it in milliseconds when it is up


@dataclass
class _Running:
    """The export being run now, so that a shutdown or a cancel can stop it."""

    task: asyncio.Task[ExportRecord] | None = None
    export_id: str | None = None
    run: asyncio.Task[tuple[ExportRecord, ExportResult]] | None = None
    last_retention: float = field(default=float("-inf"))
    # When each export's last clean-up failed: the idle loop waits before it tries again.
    cleanup_failed_at: dict[str, float] = field(default_factory=dict)
    retention_backlog: bool = False


def _needs_cleanup(record: ExportRecord) -> bool:
    return record.planned is not None and record.status not in (Status.FINISHED, Status.DELETED)


def _log_end(record: ExportRecord) -> None:
    reason = f": {record.error.code}: {record.error.message}" if record.error else ""
    level = logging.INFO if record.status == Status.FINISHED else logging.WARNING
    logger.log(
        level,
        "export %s %s after %d tries%s",
        record.id,
        record.status.value,
        record.attempts,
        reason,
        extra={"status": record.status.value, "error_code": record.error and record.error.code},
    )


@dataclass(frozen=True)
class _Prepared:
    spec: ExportSpec
    ctx: ExportContext
    total: int
    planned: PlannedUploads


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ExportRunner:
    """The serial runner of one app: its queue is that app's status store, and what it is
    running now (`_running`) lives here, not in the module."""

    def __init__(
        self,
        app: ExportApp,
        status_store: StatusStore,
        broker: Broker,
        clock: Clock,
        ccpa: CcpaDeletion,
    ) -> None:
        self.app = app
        self.status_store = status_store
        self.broker = broker
        self.clock = clock
        self.ccpa = ccpa
        self._running = _Running()

    async def announce(self, record: ExportRecord) -> ExportRecord:
        """Publish the terminal event, then mark the record announced (re-sent after a crash)."""
        attributes = {"export.id": record.id, "export.status": record.status.value}
        with tracing.span(
            "send export-events",
            parent=tracing.parent_of(record.trace_id, record.trace_parent),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        ):
            await self.broker.send(
                self.app.settings.topic_export_events,
                key=record.id.encode(),
                value=export_result_bytes(record),
                headers=tracing.kafka_headers(),
            )
        stored = self.status_store.get(record.id)
        announced = (stored if stored is not None else record).evolve(announced=True)
        self.status_store.put(announced)
        return announced

    async def _clean_up(self, planned: PlannedUploads | None) -> None:
        """Abort the run's multipart uploads and delete its staging objects (idempotent)."""
        if planned is None:
            return
        store = self.app.deps.store
        if planned.keys:
            await store.abort_uploads(planned.bucket, planned.keys)
        if planned.staging_prefix:
            leftovers = await store.list_keys(planned.bucket, planned.staging_prefix)
            if leftovers:
                await store.delete_objects(planned.bucket, leftovers)

    async def settle(self, record: ExportRecord, *, clean_up: bool = True) -> ExportRecord:
        """What follows a terminal status: clean-up (unless FINISHED), then the result event.

        A clean-up that fails (S3 is often what failed the export) marks the record
        `cleanup_pending`, so the idle runner tries it again later; the result is announced
        meanwhile and the queue goes on. Each clean-up is bounded (CLEANUP_TIMEOUT): S3 being
        away costs the queue seconds, not the retry budget.
        """
        if clean_up and _needs_cleanup(record) and self._cleanup_due_for(record):
            cleaned = await self._try_clean_up(record)
            if cleaned == record.cleanup_pending:  # the mark changes: it is written
                record = (self.status_store.get(record.id) or record).evolve(
                    cleanup_pending=not cleaned
                )
                self.status_store.put(record)
        if record.announced:
            return record
        return await self.announce(record)

    async def _try_clean_up(self, record: ExportRecord) -> bool:
        """Whether the clean-up is done (or cannot ever be: then it is left to the buckets'
        rule that aborts incomplete uploads)."""
        try:
            async with asyncio.timeout(_CLEANUP_TIMEOUT_SECONDS):
                await self._clean_up(record.planned)
        except (TimeoutError, UploadFailed) as exc:
            self._running.cleanup_failed_at[record.id] = time.monotonic()
            logger.warning(
                "export %s: clean-up of its uploads failed (%s); tried again in %g s",
                record.id,
                exc or "S3 did not answer in time",
                self.app.settings.cleanup_retry_seconds,
            )
            return False
        except ExportServiceError as exc:
            logger.error(
                "export %s: clean-up of its uploads refused (%s: %s); left to the buckets'"
                " abort-incomplete-uploads rule",
                record.id,
                exc.code,
                exc.message,
            )
        self._running.cleanup_failed_at.pop(record.id, None)
        return True

    def _cleanup_due_for(self, record: ExportRecord) -> bool:
        """A clean-up never tried (first settle, or again after a crash), or one due again."""
        return not record.cleanup_pending or self._cleanup_due(record.id)

    def _cleanup_due(self, export_id: str) -> bool:
        failed_at = self._running.cleanup_failed_at.get(export_id)
        return (
            failed_at is None
            or time.monotonic() - failed_at >= self.app.settings.cleanup_retry_seconds
        )

    async def _end(
        self, record: ExportRecord, status: Status, error: ErrorInfo | None = None, **changes: Any
    ) -> ExportRecord:
        """Write the terminal status (from the stored record, so that it keeps triggeredAt,
        totalCount and rowCount), log it with its reason, then settle it. A record another
        writer ended meanwhile (a cancel) is only settled."""
        stored = self.status_store.get(record.id) or record
        if stored.is_terminal:
            return await self.settle(stored) if not stored.announced else stored
        finished_at = self.clock()
        rate = None
        if stored.triggered_at is not None:
            rows = changes.get("row_count", stored.row_count)
            rate = average_rows_per_second(
                rows, (finished_at - stored.triggered_at).total_seconds()
            )
        final = stored.evolve(
            status=status,
            finished_at=finished_at,
            error=error,
            rows_per_second=rate,
            eta_seconds=None,
            **changes,
        )
        self.status_store.put(final)
        _log_end(final)
        # The run's span, not a cancel request's (ended from another trace).
        span = trace.get_current_span() if tracing.in_trace(final.trace_id) else trace.INVALID_SPAN
        span.set_attributes(
            {
                "export.status": final.status.value,
                "export.rows": final.row_count,
                "export.skipped": final.skipped_count,
                "export.objects": len(final.objects),
                "export.bytes": sum(obj.size for obj in final.objects),
            }
        )
        if error is not None:
            span.set_attribute("error.code", error.code)
        if status in (Status.FAILED, Status.EXPIRED):
            span.set_status(StatusCode.ERROR, error.code if error else status.value)
        self.app.service_metrics.export_ended(
            final.export_type,
            bucket=get_spec(final.export_type).bucket if status == Status.FINISHED else None,
            rows=final.row_count,
            size_bytes=sum(obj.size for obj in final.objects),
            finished=status == Status.FINISHED,
        )
        return await self.settle(final)

    async def _prepare(self, record: ExportRecord) -> _Prepared:
        """Context, preliminary count, and no leftovers of an earlier, interrupted try."""
        settings: Settings = self.app.settings
        deps = self.app.deps
        spec = get_spec(record.export_type)
        with tracing.span("export.prepare"):
            ctx = await load_context(
                spec,
                deps.source,
                export_id=record.id,
                campaign_id=record.campaign_id,
                params=record.params,
            )
            planned = PlannedUploads(
                bucket=settings.bucket(spec.bucket),
                keys=tuple(planned_keys(spec, ctx)),
                staging_prefix=staging_prefix(spec, ctx),
            )
            # A try killed mid-upload left an incomplete multipart upload behind, maybe under
            # other keys (a name with the day in it, tried again the next day).
            if record.planned != planned:
                await self._clean_up(record.planned)
            await self._clean_up(planned)
        with tracing.span("export.count") as counting:
            total = await count_source(spec, ctx, deps.source)
            counting.set_attribute("export.total_count", total)
        return _Prepared(spec, ctx, total, planned)

    async def _execute(self, record: ExportRecord) -> tuple[ExportRecord, ExportResult]:
        """Trigger and run one export; returns the last stored record and the run's result."""
        prepared = await self._prepare(record)
        current = record.evolve(
            status=Status.TRIGGERED,
            triggered_at=self.clock(),
            total_count=prepared.total,
            row_count=0,
            skipped_count=0,
            planned=prepared.planned,
            reached=1,
            rows_per_second=None,
            eta_seconds=None,
        )
        self.status_store.put(current)
        rate = ProgressRate(started=time.monotonic(), total_documents=prepared.total)
        logger.info(
            "export %s TRIGGERED (%s, %d source documents, try %d)",
            record.id,
            record.export_type,
            prepared.total,
            record.attempts,
        )

        async def on_progress(progress: Progress) -> None:
            nonlocal current
            if self.status_store.status_of(record.id) in TERMINAL_STATUSES:
                # Ended by another writer (a cancel written where this export does not run).
                # Any other status is an older copy of this run's own record, which the next
                # write replaces.
                raise ExportCancelled("the export was cancelled")
            estimate = rate.update(
                now=time.monotonic(),
                rows=progress.row_count,
                documents=progress.documents_read,
                passes=progress.passes,
            )
            current = current.evolve(
                row_count=progress.row_count,
                skipped_count=progress.skipped_count,
                reached=1 + progress.row_count,
                rows_per_second=estimate.rows_per_second,
                eta_seconds=estimate.eta_seconds,
            )
            self.status_store.put(current)
            self.app.service_metrics.export_progress(progress.row_count)
            # One event per progress report (a batch, at most every PROGRESS_INTERVAL_*).
            trace.get_current_span().add_event(
                "progress",
                {
                    "export.rows": progress.row_count,
                    "export.documents_read": progress.documents_read,
                    "export.skipped": progress.skipped_count,
                },
            )

        deps = self.app.deps
        result = await run_export(
            prepared.spec,
            prepared.ctx,
            source=deps.source,
            store=deps.store,
            options=RunOptions.from_settings(self.app.settings),
            on_progress=on_progress,
        )
        return current, result

    async def run_one(self, record: ExportRecord) -> ExportRecord:
        """Run an export to a terminal status; never raises for the export's own failures.

        Cancelled by a shutdown past its grace period, it leaves the export as stored, marked
        as stopped cleanly (the try is not counted), and re-raises: the next start runs it.
        """
        request = tracing.context_from_traceparent(record.trace_parent)
        picked = self.clock()
        attributes = {
            "export.id": record.id,
            "export.type": record.export_type,
            "campaign.id": record.campaign_id,
            "export.try": record.attempts + 1,
        }
        with (
            log_context(export_id=record.id, campaign_id=record.campaign_id),
            tracing.span("export.run", parent=request, attributes=attributes),
        ):
            if record.attempts == 0:
                # Beside the run under the request; under the run when no request is known.
                tracing.record_interval(
                    "export.queue_wait",
                    start=record.created_at,
                    end=picked,
                    parent=request,
                    attributes={"export.id": record.id},
                )
            if record.trace_id is None and tracing.trace_id_of() is not None:
                # Recorded while tracing was off: the run's trace becomes the export's.
                record = record.evolve(**tracing.record_ids())
            try:
                return await self._run_one(record)
            except asyncio.CancelledError:
                stored = self.status_store.get(record.id)
                if stored is not None and stored.is_active:
                    # The engine has aborted the upload (no partial object).
                    self.status_store.put(stored.evolve(clean_stop=True))
                    self.app.service_metrics.export_ended(record.export_type)
                    logger.warning(
                        "export %s cancelled by shutdown; runs again on restart", record.id
                    )
                raise

    async def _run_one(self, record: ExportRecord) -> ExportRecord:
        settings: Settings = self.app.settings
        tolerance = reach_tolerance(
            record,
            progress_interval_rows=settings.progress_interval_rows,
            progress_interval_seconds=settings.progress_interval_seconds,
        )
        attempt = start_try(record, settings.export_max_attempts, tolerance)
        if attempt.exhausted:
            self.status_store.put(attempt.record)
            message = (
                f"{attempt.record.strikes} tries in a row ended where the one before did "
                f"({attempt.record.attempts} tries in all)"
            )
            return await self._end(
                attempt.record, Status.FAILED, ErrorInfo(code="TOO_MANY_ATTEMPTS", message=message)
            )
        current = attempt.record
        self.status_store.put(current)
        self.app.service_metrics.export_started(settings.export_timeout_seconds)
        try:
            async with asyncio.timeout(settings.export_timeout_seconds):
                self._running.run = asyncio.ensure_future(self._execute(current))
                try:
                    current, result = await self._running.run
                finally:
                    self._running.run = None
        except asyncio.CancelledError:
            if _cancelling():
                raise  # a shutdown
            return await self._end(
                current, Status.CANCELLED, ErrorInfo(code="EXPORT_CANCELLED", message="cancelled")
            )
        except TimeoutError:
            err = ExportTimedOut(f"export ran longer than {settings.export_timeout_seconds:g} s")
            return await self._end(
                current, Status.EXPIRED, ErrorInfo(code=err.code, message=err.message)
            )
        except ExportServiceError as exc:
            status = Status.CANCELLED if isinstance(exc, ExportCancelled) else Status.FAILED
            return await self._end(current, status, ErrorInfo(code=exc.code, message=exc.message))
        except InvalidBSON as exc:
            # The engine decodes replies itself: a stored document that is not BSON is the
            # data's fault, not a bug, and retrying cannot help.
            unreadable = UnreadableDocument(f"a stored document could not be decoded: {exc}")
            error = ErrorInfo(code=unreadable.code, message=unreadable.message)
            return await self._end(current, Status.FAILED, error)
        except Exception as exc:
            logger.exception("export %s failed unexpectedly", record.id)
            error = ErrorInfo(code="INTERNAL_ERROR", message=f"{type(exc).__name__}: {exc}")
            return await self._end(current, Status.FAILED, error)
        return await self._end(
            current,
            Status.FINISHED,
            row_count=result.row_count,
            skipped_count=result.skipped_count,
            bucket=result.bucket,
            objects=result.objects,
        )

    async def cancel_export(self, campaign_id: str, export_id: str, by: str | None) -> ExportRecord:
        """Cancel a PENDING or TRIGGERED export (REST DELETE, `export.cancel_requested`).

        The running one is stopped (its engine aborts the upload) and ended by the runner;
        any other is ended here. Either way the result is CANCELLED, cleaned up and announced.
        Raises ExportNotFound, or NotCancellable for a terminal export.
        """
        record = self.status_store.get(export_id)
        if record is None or record.campaign_id != campaign_id:
            raise ExportNotFound(campaign_id=campaign_id, export_id=export_id)
        if record.is_terminal:
            raise NotCancellable(export_id=record.id, status=record.status.value)
        logger.info("export %s: cancel requested by %s", record.id, by or "an event")
        running = self._running.task
        if (
            self._running.export_id == record.id
            and running is not None
            and self._running.run is not None
        ):
            self._running.run.cancel()
            await asyncio.wait({running}, timeout=_CANCEL_WAIT_SECONDS)
            return self.status_store.get(record.id) or record
        error = ErrorInfo(code="EXPORT_CANCELLED", message=f"cancelled by {by or 'an event'}")
        return await self._end(record, Status.CANCELLED, error)

    def _owns_queue(self) -> bool:
        """Only the worker assigned the exports partition runs exports."""
        return self.broker.holds_partition_of(self.app.settings.topic_exports)

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_IDLE_POLL_SECONDS):
                await self.status_store.work_available.wait()

    async def _settle_pending_results(self) -> None:
        s3_away = False  # a clean-up failed in this pass: the others' would fail too
        for record in self.status_store.unsettled():
            clean_up = not s3_away and _needs_cleanup(record) and self._cleanup_due_for(record)
            if record.announced and not clean_up:
                continue
            try:
                settled = await self.settle(record, clean_up=clean_up)
            except Exception:
                # The broker is away: the result waits, the queue does not.
                logger.warning("export %s: result event not sent yet", record.id, exc_info=True)
                return
            s3_away = s3_away or (clean_up and settled.cleanup_pending)
        for request in self.status_store.unannounced_ccpa():
            await self.ccpa.announce(request)

    def apply_retention(self, now: dt.datetime | None = None) -> int:
        """Remove the records older than STATUS_RETENTION_DAYS (none when it is 0)."""
        days = self.app.settings.status_retention_days
        if days <= 0:
            return 0
        now = now or self.clock()
        removed = self.status_store.retire(
            ended_before=now - dt.timedelta(days=days), now=now, limit=_RETIRED_PER_STEP
        )
        self._running.retention_backlog = removed >= _RETIRED_PER_STEP
        if removed:
            logger.info("retention removed %d records older than %g days", removed, days)
        return removed

    def _retention_due(self) -> bool:
        interval = self.app.settings.status_retention_sweep_seconds
        due = (
            self._running.retention_backlog
            or time.monotonic() - self._running.last_retention >= interval
        )
        if due:
            self._running.last_retention = time.monotonic()
        return due

    async def run(self) -> None:
        """Starts after table recovery; runs the queue until the app stops.

        Results a crash (or a broker outage) kept from export-events are settled again, and
        retention runs, whenever the queue is idle.
        """
        while not self.app.should_stop:
            # Cleared before looking, so a request recorded meanwhile is never missed.
            self.status_store.work_available.clear()
            try:
                await self._settle_pending_results()
                work = self.status_store.next_work() if self._owns_queue() else None
                if work is None:
                    if self._owns_queue() and self._retention_due():
                        self.apply_retention()
                        if self._running.retention_backlog:
                            await asyncio.sleep(0)  # removal goes in bounded steps
                            continue
                    await self._wait_for_work()
                    continue
                # CCPA deletions run in the same serial queue, between two exports.
                if isinstance(work, CcpaRequest):
                    await self.ccpa.run(work)
                else:
                    self._running.export_id = work.id
                    self._running.task = asyncio.ensure_future(self.run_one(work))
                    try:
                        await self._running.task
                    except asyncio.CancelledError:
                        if self._running.task.cancelled() and not _cancelling():
                            break  # the export was cancelled by a shutdown, not this loop
                        raise
                    finally:
                        self._running.task = None
                        self._running.export_id = None
            except Exception:
                # The runner must outlive any single failure (e.g. the broker briefly gone).
                logger.exception("export runner iteration failed; retrying")
                await asyncio.sleep(_IDLE_POLL_SECONDS)

    async def drain(self, grace_seconds: float) -> None:
        """At shutdown: let the running export finish within `grace_seconds`, else cancel it
        (upload aborted, record left to run again) and wait for that cleanup."""
        task = self._running.task
        if task is None or task.done():
            return
        logger.info("shutdown: waiting up to %g s for the running export", grace_seconds)
        done, _ = await asyncio.wait({task}, timeout=grace_seconds)
        if done:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
