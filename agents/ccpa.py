"""CCPA deletion (SPEC §5): one step of the serial runner, between two exports.

Every FINISHED export of every campaign the user has entries in, except the exempt
types, loses its S3 objects and becomes DELETED. The step is idempotent: replayed after
a crash it finds the exports it already deleted (deletedBy is this request) and
completes the same summary; a replayed request that COMPLETED is not run again.
"""

from __future__ import annotations

import asyncio
import logging

from opentelemetry.trace import SpanKind, StatusCode

from core import tracing
from core.app import ExportApp
from core.deps import Broker, Clock
from core.errors import ExportServiceError, ExportTimedOut
from core.events import ccpa_completed_bytes
from core.models import (
    CCPA_EXEMPT_TYPES,
    CcpaDeletedExport,
    CcpaExemptExport,
    CcpaRequest,
    CcpaStatus,
    CcpaSummary,
    ErrorInfo,
    ExportRecord,
    Status,
)
from core.settings import Settings
from topics.status import StatusStore

logger = logging.getLogger(__name__)

ENTRIES = "entries"


class CcpaDeletion:
    """The deletion step of the runner, over one app's status store and broker."""

    def __init__(
        self, app: ExportApp, status_store: StatusStore, broker: Broker, clock: Clock
    ) -> None:
        self.app = app
        self.status_store = status_store
        self.broker = broker
        self.clock = clock

    def _record_outcome(self, outcome: str) -> None:
        try:
            self.app.service_metrics.record_ccpa_deletion(outcome)
        except Exception:
            logger.exception("recording the CCPA metric failed")

    async def announce(self, request: CcpaRequest) -> CcpaRequest:
        """Publish `ccpa.deletion_completed`, then mark the request announced."""
        with tracing.span(
            "send export-events",
            parent=tracing.parent_of(request.trace_id, request.trace_parent),
            kind=SpanKind.PRODUCER,
            attributes={
                "ccpa.request_id": request.request_id,
                "ccpa.status": request.status.value,
            },
        ):
            await self.broker.send(
                self.app.settings.topic_export_events,
                key=request.request_id.encode(),
                value=ccpa_completed_bytes(request),
                headers=tracing.kafka_headers(),
            )
        announced = request.evolve(announced=True)
        self.status_store.put_ccpa(announced)
        return announced

    async def user_campaigns(self, user_id: str) -> list[str]:
        """The campaigns the user has entries in."""
        values = await self.app.deps.source.distinct(ENTRIES, "campaignId", {"userId": user_id})
        return sorted({str(v) for v in values if v is not None})

    async def _delete_export(self, record: ExportRecord, request: CcpaRequest) -> ExportRecord:
        """Delete the export's objects, then mark it DELETED (deleting twice is harmless)."""
        keys = [o.key for o in record.objects]
        attributes = {
            "export.id": record.id,
            "export.type": record.export_type,
            "s3.keys": len(keys),
        }
        with tracing.span("s3.delete_objects", kind=SpanKind.CLIENT, attributes=attributes):
            if record.bucket and keys:
                await self.app.deps.store.delete_objects(record.bucket, keys)
        deleted = record.evolve(
            status=Status.DELETED, deleted_at=self.clock(), deleted_by=request.deleted_by
        )
        self.status_store.put(deleted)
        logger.info(
            "export %s DELETED (%d objects) by CCPA request %s",
            record.id,
            len(keys),
            request.request_id,
        )
        return deleted

    async def delete_user_exports(self, request: CcpaRequest) -> CcpaSummary:
        """The deletion itself; returns the summary."""
        campaigns = await self.user_campaigns(request.user_id)
        wanted = set(campaigns)
        deleted: list[CcpaDeletedExport] = []
        exempt: list[CcpaExemptExport] = []
        records = sorted(
            (r for campaign_id in wanted for r in self.status_store.for_campaign(campaign_id)),
            key=lambda r: (r.campaign_id, r.created_at, r.id),
        )
        for record in records:
            if record.export_type in CCPA_EXEMPT_TYPES:
                if record.status == Status.FINISHED:
                    exempt.append(
                        CcpaExemptExport(
                            export_id=record.id,
                            campaign_id=record.campaign_id,
                            export_type=record.export_type,
                            object_count=len(record.objects),
                        )
                    )
                continue
            if record.status == Status.FINISHED:
                record = await self._delete_export(record, request)
            elif not (record.status == Status.DELETED and record.deleted_by == request.deleted_by):
                continue  # not finished, or deleted earlier by another request
            deleted.append(
                CcpaDeletedExport(
                    export_id=record.id,
                    campaign_id=record.campaign_id,
                    export_type=record.export_type,
                    bucket=record.bucket,
                    object_count=len(record.objects),
                    keys=tuple(o.key for o in record.objects),
                )
            )
        return CcpaSummary(
            campaign_ids=tuple(campaigns),
            deleted=tuple(deleted),
            exempt=tuple(exempt),
            deleted_object_count=sum(d.object_count for d in deleted),
        )

    def _failed(self, request: CcpaRequest, code: str, message: str) -> CcpaRequest:
        return request.evolve(
            status=CcpaStatus.FAILED,
            finished_at=self.clock(),
            error=ErrorInfo(code=code, message=message),
        )

    async def run(self, request: CcpaRequest) -> CcpaRequest:
        """Run one deletion to COMPLETED or FAILED and announce it; never raises for its own
        failures (a FAILED request runs again when the same request id is sent again)."""
        with tracing.span(
            "ccpa.deletion",
            parent=tracing.context_from_traceparent(request.trace_parent),
            attributes={"ccpa.request_id": request.request_id, "ccpa.try": request.attempts + 1},
        ) as span:
            if request.trace_id is None and tracing.trace_id_of() is not None:
                # Recorded while tracing was off: the run's trace becomes the request's.
                request = request.evolve(**tracing.record_ids())
            final = await self._run(request)
            span.set_attribute("ccpa.status", final.status.value)
            if final.summary is not None:
                span.set_attribute("ccpa.deleted_objects", final.summary.deleted_object_count)
            if final.error is not None:
                span.set_status(StatusCode.ERROR, final.error.code)
            return final

    async def _run(self, request: CcpaRequest) -> CcpaRequest:
        settings: Settings = self.app.settings
        if request.attempts >= settings.export_max_attempts:
            final = self._failed(
                request,
                "TOO_MANY_ATTEMPTS",
                f"the deletion was started {request.attempts} times without finishing",
            )
        else:
            current = request.evolve(
                status=CcpaStatus.RUNNING, started_at=self.clock(), attempts=request.attempts + 1
            )
            self.status_store.put_ccpa(current)
            logger.info("CCPA request %s RUNNING", request.request_id)
            try:
                async with asyncio.timeout(settings.export_timeout_seconds):
                    summary = await self.delete_user_exports(current)
                final = current.evolve(
                    status=CcpaStatus.COMPLETED,
                    finished_at=self.clock(),
                    summary=summary,
                    error=None,
                )
            except TimeoutError:
                err = ExportTimedOut(
                    f"deletion ran longer than {settings.export_timeout_seconds:g} s"
                )
                final = self._failed(current, err.code, err.message)
            except ExportServiceError as exc:
                final = self._failed(current, exc.code, exc.message)
            except Exception as exc:
                logger.exception("CCPA request %s failed unexpectedly", request.request_id)
                final = self._failed(current, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        self.status_store.put_ccpa(final)
        logger.info("CCPA request %s %s", request.request_id, final.status.value)
        self._record_outcome(final.status.value.lower())
        return await self.announce(final)
