"""The intake agent: every event on the exports topic is recorded at once or dead-lettered."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from core import tracing
from core.app import Canceller, ExportApp
from core.deps import Broker, Clock
from core.errors import ExportNotFound, ExportServiceError
from core.events import (
    CcpaDeletionRequested,
    ExportCancelRequested,
    ExportRequested,
    dead_letter_bytes,
    parse_input_event,
)
from core.models import CcpaRequest, ExportRecord
from exporters.registry import get_spec
from exporters.runner import parse_params
from topics.status import StatusStore

logger = logging.getLogger(__name__)


class Intake:
    """The intake of one app: records into its status store, dead-letters through its broker,
    and cancels through the runner's `cancel`."""

    def __init__(
        self,
        app: ExportApp,
        status_store: StatusStore,
        broker: Broker,
        clock: Clock,
        cancel: Canceller,
    ) -> None:
        self.app = app
        self.status_store = status_store
        self.broker = broker
        self.clock = clock
        self.cancel = cancel

    async def dead_letter(
        self, raw: bytes | None, *, reason: str, detail: Any, origin: dict[str, Any]
    ) -> None:
        """Publish the refused event with its reason; wait until the broker has it."""
        await self.broker.send(
            self.app.settings.topic_dlq,
            value=dead_letter_bytes(
                raw, reason=reason, detail=detail, origin=origin, rejected_at=self.clock()
            ),
            headers=tracing.kafka_headers(),
        )
        logger.warning("dead-lettered an input event: %s", reason, extra={"origin": origin})

    def record_export_request(self, event: ExportRequested) -> ExportRecord:
        """Validate the type and params, then record it PENDING (or find what serves it)."""
        spec = get_spec(event.export_type)
        parse_params(spec, event.params)
        record = ExportRecord(
            id=event.export_id,
            campaign_id=event.campaign_id,
            export_type=spec.name,
            params=dict(event.params),
            source="kafka",
            requested_by=event.requested_by,
            created_at=self.clock(),
            **tracing.record_ids(),
        )
        accepted, created = self.status_store.accept(record)
        if created:
            self.app.service_metrics.record_export_request(spec.name, "accepted")
            logger.info(
                "export %s recorded PENDING",
                record.id,
                extra={"export_id": record.id, "campaign_id": record.campaign_id},
            )
        elif accepted.id != record.id:
            # A redelivery, or the event a REST view published for its own record, has the
            # same id and was counted where it was accepted; a true duplicate has another.
            self.app.service_metrics.record_export_request(spec.name, "duplicate")
        return accepted

    def record_ccpa_request(self, event: CcpaDeletionRequested) -> CcpaRequest:
        """Record the deletion PENDING; a replayed request id changes nothing (SPEC §5)."""
        request = CcpaRequest(
            request_id=event.request_id,
            user_id=event.user_id,
            source="kafka",
            requested_by=event.requested_by,
            created_at=self.clock(),
            **tracing.record_ids(),
        )
        accepted, queued = self.status_store.accept_ccpa(request)
        if queued:
            logger.info("CCPA request %s recorded %s", accepted.request_id, accepted.status.value)
        else:
            logger.info(
                "CCPA request %s replayed: already %s", accepted.request_id, accepted.status
            )
        return accepted

    async def cancel_requested(self, event: ExportCancelRequested) -> None:
        """Cancel the export the event names (in its campaign, when the event gives one)."""
        stored = self.status_store.get(event.export_id)
        campaign_id = event.campaign_id or (stored.campaign_id if stored else "")
        if stored is None:
            raise ExportNotFound(campaign_id=campaign_id, export_id=event.export_id)
        await self.cancel(campaign_id, event.export_id, event.requested_by)

    async def process(self, stream: Any) -> None:
        """Records requests while an export runs elsewhere: this agent never runs one."""
        async for event in stream.events():
            message = event.message
            # An upstream producer's `traceparent` makes the request a step of its trace.
            with tracing.span(
                "process exports",
                parent=tracing.context_from_headers(message.headers),
                kind=SpanKind.CONSUMER,
                attributes={"messaging.kafka.offset": message.offset},
            ):
                await self._take(event.value, message)

    async def _take(self, raw: bytes | None, message: Any) -> None:
        """Record, act on or dead-letter one event of the exports topic."""
        origin = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        try:
            parsed = parse_input_event(raw or b"")
        except ValidationError as exc:
            await self.dead_letter(
                raw, reason="INVALID_EVENT", detail=exc.errors(include_url=False), origin=origin
            )
            return
        except ValueError as exc:
            await self.dead_letter(raw, reason="INVALID_JSON", detail=str(exc), origin=origin)
            return
        if isinstance(parsed, CcpaDeletionRequested):
            self.record_ccpa_request(parsed)
            return
        try:
            if isinstance(parsed, ExportCancelRequested):
                await self.cancel_requested(parsed)
            else:
                self.record_export_request(parsed)
        except ExportServiceError as exc:
            if isinstance(parsed, ExportRequested):
                self.app.service_metrics.record_export_request(parsed.export_type, "rejected")
            await self.dead_letter(
                raw, reason=exc.code, detail={"message": exc.message, **exc.details}, origin=origin
            )
