"""The Kafka event shapes: requests on the exports topic, results on export-events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.models import CcpaRequest, ExportRecord, Status

EVENT_ID_NAMESPACE = uuid.UUID("5b0c3f3e-2d7a-4f4e-9a55-6f1d2c0e7a01")
"""Every event the service publishes has `eventId` = UUIDv5(this, "<type>/<subject id>"):
the same event published twice (a retry after a crash) has the same id, so consumers can
drop repeats."""


def event_id(event_type: str, subject_id: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}/{subject_id}"))


_ID = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ExportRequested(BaseModel):
    """`export.requested`: what upstream systems (and the REST views) publish."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["export.requested"]
    export_id: _ID = Field(alias="exportId")
    campaign_id: _ID = Field(alias="campaignId")
    export_type: str = Field(alias="exportType", min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = Field(None, alias="requestedBy", max_length=256)
    requested_at: dt.datetime | None = Field(None, alias="requestedAt")


class CcpaDeletionRequested(BaseModel):
    """`ccpa.deletion_requested`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["ccpa.deletion_requested"]
    request_id: _ID = Field(alias="requestId")
    user_id: _ID = Field(alias="userId")
    requested_by: str | None = Field(None, alias="requestedBy", max_length=256)
    requested_at: dt.datetime | None = Field(None, alias="requestedAt")


class ExportCancelRequested(BaseModel):
    """`export.cancel_requested`: stop a PENDING or TRIGGERED export."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["export.cancel_requested"]
    export_id: _ID = Field(alias="exportId")
    campaign_id: _ID | None = Field(None, alias="campaignId")
    requested_by: str | None = Field(None, alias="requestedBy", max_length=256)


AnyInputEvent = ExportRequested | CcpaDeletionRequested | ExportCancelRequested
InputEvent = Annotated[AnyInputEvent, Field(discriminator="type")]
input_event_adapter: TypeAdapter[AnyInputEvent] = TypeAdapter(
    cast(Any, InputEvent)  # an Annotated union: mypy's view of TypeAdapter takes only types
)


def parse_input_event(raw: bytes) -> AnyInputEvent:
    """Parse one exports-topic message; raises ValueError (JSON) or ValidationError."""
    return input_event_adapter.validate_python(orjson.loads(raw))


def export_requested_bytes(record: ExportRecord) -> bytes:
    return orjson.dumps(
        {
            "type": "export.requested",
            "eventId": event_id("export.requested", record.id),
            "exportId": record.id,
            "campaignId": record.campaign_id,
            "exportType": record.export_type,
            "params": record.params,
            "requestedBy": record.requested_by,
            "requestedAt": record.created_at.isoformat(),
        }
    )


def ccpa_requested_bytes(request: CcpaRequest) -> bytes:
    return orjson.dumps(
        {
            "type": "ccpa.deletion_requested",
            "eventId": event_id("ccpa.deletion_requested", request.request_id),
            "requestId": request.request_id,
            "userId": request.user_id,
            "requestedBy": request.requested_by,
            "requestedAt": request.created_at.isoformat(),
        }
    )


def ccpa_completed_bytes(request: CcpaRequest) -> bytes:
    """`ccpa.deletion_completed`: the request with its summary (or its error when FAILED)."""
    kind = "ccpa.deletion_completed"
    return orjson.dumps(
        {"type": kind, "eventId": event_id(kind, request.request_id), **request.to_public()}
    )


_RESULT_TYPES = {
    Status.FINISHED: "export.finished",
    Status.FAILED: "export.failed",
    Status.EXPIRED: "export.expired",
    Status.CANCELLED: "export.cancelled",
}


def export_result_bytes(record: ExportRecord) -> bytes:
    """The output event for a terminal export: its type plus the public record."""
    body = record.to_public()
    kind = _RESULT_TYPES[record.status]
    return orjson.dumps(
        {
            "type": kind,
            "eventId": event_id(kind, record.id),
            "exportId": record.id,
            "keys": [o.key for o in record.objects],
            **body,
        }
    )


def dead_letter_bytes(
    raw: bytes | None, *, reason: str, detail: Any, origin: dict[str, Any]
) -> bytes:
    """A DLQ message: why it was refused, where it came from, and the original bytes."""
    original = raw or b""
    try:
        text: str | None = original.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    where = f"{origin.get('topic')}/{origin.get('partition')}/{origin.get('offset')}"
    return orjson.dumps(
        {
            "eventId": event_id("dead_letter", where),
            "reason": reason,
            "detail": detail,
            "origin": origin,
            "original": text,
            "originalHex": original.hex(),
            "rejectedAt": dt.datetime.now(dt.UTC).isoformat(),
        },
        default=str,
    )
