"""The Kafka event shapes: requests on the exports topic, results on export-events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.models import CcpaRequest, ExportRecord, Status

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


InputEvent = Annotated[ExportRequested | CcpaDeletionRequested, Field(discriminator="type")]
input_event_adapter: TypeAdapter[ExportRequested | CcpaDeletionRequested] = TypeAdapter(
    cast(Any, InputEvent)  # an Annotated union: mypy's view of TypeAdapter takes only types
)


def parse_input_event(raw: bytes) -> ExportRequested | CcpaDeletionRequested:
    """Parse one exports-topic message; raises ValueError (JSON) or ValidationError."""
    return input_event_adapter.validate_python(orjson.loads(raw))


def export_requested_bytes(record: ExportRecord) -> bytes:
    return orjson.dumps(
        {
            "type": "export.requested",
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
            "requestId": request.request_id,
            "userId": request.user_id,
            "requestedBy": request.requested_by,
            "requestedAt": request.created_at.isoformat(),
        }
    )


def ccpa_completed_bytes(request: CcpaRequest) -> bytes:
    """`ccpa.deletion_completed`: the request with its summary (or its error when FAILED)."""
    return orjson.dumps({"type": "ccpa.deletion_completed", **request.to_public()})


_RESULT_TYPES = {
    Status.FINISHED: "export.finished",
    Status.FAILED: "export.failed",
    Status.EXPIRED: "export.expired",
}


def export_result_bytes(record: ExportRecord) -> bytes:
    """The output event for a terminal export: its type plus the public record."""
    body = record.to_public()
    return orjson.dumps(
        {
            "type": _RESULT_TYPES[record.status],
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
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail,
            "origin": origin,
            "original": text,
            "originalHex": original.hex(),
            "rejectedAt": dt.datetime.now(dt.UTC).isoformat(),
        },
        default=str,
    )
