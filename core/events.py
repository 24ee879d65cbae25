"""The Kafka event shapes: requests on the exports topic, results on export-events, the DLQ.

Each event is a model here, and the bytes the service publishes are that model's dump: the
AsyncAPI document (core/asyncapi.py, served at /asyncapi.json) is generated from the same
models, so the document cannot drift from the bytes. Results and CCPA completions are a small
head (type, eventId, ...) followed by the public record (`to_public()`) in one JSON object.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from core.ids import REQUESTER_MAX_LENGTH, ExportTypeName, Id
from core.models import CcpaRequest, ExportRecord, Status, utcnow

EVENT_ID_NAMESPACE = uuid.UUID("5b0c3f3e-2d7a-4f4e-9a55-6f1d2c0e7a01")
"""Every event the service publishes has `eventId` = UUIDv5(this, "<type>/<subject id>"):
the same event published twice (a retry after a crash) has the same id, so consumers can
drop repeats."""


def event_id(event_type: str, subject_id: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}/{subject_id}"))


_EVENT_ID_DESCRIPTION = (
    'UUIDv5 of "<type>/<subject id>": the same event published again (a retry after a '
    "crash) has the same id, so consumers can drop repeats"
)
_REQUEST_EVENT_ID_DESCRIPTION = (
    "set by the service on the requests its REST views publish (" + _EVENT_ID_DESCRIPTION + "); "
    "an upstream system may set its own; the intake does not use it"
)


def _requested_by() -> Any:
    return Field(
        None,
        alias="requestedBy",
        max_length=REQUESTER_MAX_LENGTH,
        description="who asked: a service name, or the JWT `sub` of a REST caller",
    )


def _requested_at() -> Any:
    return Field(None, alias="requestedAt", description="when it was asked (RFC 3339)")


# Fields the service does not read: documented as what it writes itself, but any value a
# producer sends is accepted (before they were documented they were ignored, and a
# producer's own ids must not send its events to the dead-letter topic).
_Ignored = Annotated[Any, WithJsonSchema({"type": ["string", "null"]})]
_IgnoredTime = Annotated[Any, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]


class _InputEvent(BaseModel):
    # Unknown fields are ignored (producers may add their own); names are the aliases only.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ExportRequested(_InputEvent):
    """`export.requested`: what upstream systems (and the REST views) publish."""

    type: Literal["export.requested"]
    event_id: _Ignored = Field(None, alias="eventId", description=_REQUEST_EVENT_ID_DESCRIPTION)
    export_id: Id = Field(
        alias="exportId",
        description="chosen by the requester; sending the same id again changes nothing",
    )
    campaign_id: Id = Field(alias="campaignId")
    export_type: ExportTypeName = Field(alias="exportType")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the export type's parameters (see exportType)"
    )
    requested_by: str | None = _requested_by()
    requested_at: dt.datetime | None = _requested_at()


class CcpaDeletionRequested(_InputEvent):
    """`ccpa.deletion_requested`: delete the files of the user's non-exempt exports."""

    type: Literal["ccpa.deletion_requested"]
    event_id: _Ignored = Field(None, alias="eventId", description=_REQUEST_EVENT_ID_DESCRIPTION)
    request_id: Id = Field(
        alias="requestId",
        description="chosen by the requester; sending the same id again changes nothing",
    )
    user_id: Id = Field(alias="userId", description="the entries' userId")
    requested_by: str | None = _requested_by()
    requested_at: dt.datetime | None = _requested_at()


class ExportCancelRequested(_InputEvent):
    """`export.cancel_requested`: stop a PENDING or TRIGGERED export."""

    type: Literal["export.cancel_requested"]
    event_id: _Ignored = Field(
        None, alias="eventId", description="an upstream system may set one; not used"
    )
    export_id: Id = Field(alias="exportId")
    campaign_id: Id | None = Field(
        None, alias="campaignId", description="the export's campaign (checked when given)"
    )
    requested_by: str | None = _requested_by()
    # Not used, and producers sent it before it was documented: any value is taken.
    requested_at: _IgnoredTime = _requested_at()


AnyInputEvent = ExportRequested | CcpaDeletionRequested | ExportCancelRequested
InputEvent = Annotated[AnyInputEvent, Field(discriminator="type")]
input_event_adapter: TypeAdapter[AnyInputEvent] = TypeAdapter(
    cast(Any, InputEvent)  # an Annotated union: mypy's view of TypeAdapter takes only types
)


def parse_input_event(raw: bytes) -> AnyInputEvent:
    """Parse one exports-topic message; raises ValueError (JSON) or ValidationError."""
    return input_event_adapter.validate_python(orjson.loads(raw))


def _dump(event: BaseModel, tail: dict[str, Any] | None = None, *, default: Any = None) -> bytes:
    """The event's JSON (datetimes as `isoformat()` writes them), then `tail`'s fields."""
    body = event.model_dump(by_alias=True)
    body.update(tail or {})
    return orjson.dumps(body, default=default)


def export_requested_bytes(record: ExportRecord) -> bytes:
    """The `export.requested` a REST view publishes for the export it recorded."""
    event = ExportRequested.model_validate(
        {
            "type": "export.requested",
            "eventId": event_id("export.requested", record.id),
            "exportId": record.id,
            "campaignId": record.campaign_id,
            "exportType": record.export_type,
            "params": record.params,
            "requestedBy": record.requested_by,
            "requestedAt": record.created_at,
        }
    )
    return _dump(event)


def ccpa_requested_bytes(request: CcpaRequest) -> bytes:
    """The `ccpa.deletion_requested` the REST view publishes for the request it recorded."""
    event = CcpaDeletionRequested.model_validate(
        {
            "type": "ccpa.deletion_requested",
            "eventId": event_id("ccpa.deletion_requested", request.request_id),
            "requestId": request.request_id,
            "userId": request.user_id,
            "requestedBy": request.requested_by,
            "requestedAt": request.created_at,
        }
    )
    return _dump(event)


class _OutputEvent(BaseModel):
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, json_schema_serialization_defaults_required=True
    )


ExportResultType = Literal["export.finished", "export.failed", "export.expired", "export.cancelled"]

RESULT_TYPES: dict[Status, ExportResultType] = {
    Status.FINISHED: "export.finished",
    Status.FAILED: "export.failed",
    Status.EXPIRED: "export.expired",
    Status.CANCELLED: "export.cancelled",
}
"""The terminal statuses that are announced, and the type of their event."""


class ExportResult(_OutputEvent):
    """The head of `export.finished | export.failed | export.expired | export.cancelled`;
    the public export record (ExportRecord) follows in the same object."""

    type: ExportResultType
    event_id: uuid.UUID = Field(alias="eventId", description=_EVENT_ID_DESCRIPTION)
    export_id: Id = Field(alias="exportId", description="the record's `id` (and the message key)")
    keys: tuple[str, ...] = Field(
        description="the keys of the export's objects in `bucket` (as in `objects`); fetch "
        "them with S3 credentials, or ask the REST API for presigned `downloadUrls`"
    )

    @classmethod
    def of(cls, record: ExportRecord) -> ExportResult:
        kind = RESULT_TYPES[record.status]
        return cls(
            type=kind,
            event_id=uuid.UUID(event_id(kind, record.id)),
            export_id=record.id,
            keys=tuple(o.key for o in record.objects),
        )


def export_result_bytes(record: ExportRecord) -> bytes:
    """The output event for a terminal export: its head plus the public record."""
    return _dump(ExportResult.of(record), record.to_public())


class CcpaDeletionCompleted(_OutputEvent):
    """The head of `ccpa.deletion_completed`; the public CCPA request (CcpaRequest, with
    its summary, or its error when FAILED) follows in the same object."""

    type: Literal["ccpa.deletion_completed"] = "ccpa.deletion_completed"
    event_id: uuid.UUID = Field(alias="eventId", description=_EVENT_ID_DESCRIPTION)

    @classmethod
    def of(cls, request: CcpaRequest) -> CcpaDeletionCompleted:
        return cls(event_id=uuid.UUID(event_id("ccpa.deletion_completed", request.request_id)))


def ccpa_completed_bytes(request: CcpaRequest) -> bytes:
    """`ccpa.deletion_completed`: the request with its summary (or its error when FAILED)."""
    return _dump(CcpaDeletionCompleted.of(request), request.to_public())


class DeadLetterOrigin(_OutputEvent):
    """Where the refused message was read."""

    topic: str
    partition: int
    offset: int


class DeadLetter(_OutputEvent):
    """A DLQ message: an input event that could not be parsed or validated, why, and the
    original bytes."""

    event_id: uuid.UUID = Field(
        alias="eventId",
        description='UUIDv5 of "dead_letter/<topic>/<partition>/<offset>": a message '
        "dead-lettered again after a crash has the same id",
    )
    reason: str = Field(
        description="INVALID_JSON, INVALID_EVENT (not one of the request events, see "
        "`detail`), or the error code the request was refused with (UNKNOWN_EXPORT_TYPE, "
        "INVALID_PARAMS, EXPORT_NOT_FOUND, ...)",
        examples=["INVALID_JSON", "INVALID_EVENT", "UNKNOWN_EXPORT_TYPE"],
    )
    detail: Any = Field(
        description="INVALID_JSON: the parser's message; INVALID_EVENT: the validation "
        "errors (loc, msg, type, input); otherwise the error's message and details"
    )
    origin: DeadLetterOrigin
    original: str | None = Field(description="the original bytes as UTF-8 (null when not UTF-8)")
    original_hex: str = Field(
        alias="originalHex", pattern="^([0-9a-f]{2})*$", description="the original bytes, hex"
    )
    rejected_at: dt.datetime = Field(alias="rejectedAt")


def dead_letter_bytes(
    raw: bytes | None,
    *,
    reason: str,
    detail: Any,
    origin: dict[str, Any],
    rejected_at: dt.datetime | None = None,
) -> bytes:
    """A DLQ message: why it was refused, where it came from, and the original bytes."""
    original = raw or b""
    try:
        text: str | None = original.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    where = f"{origin.get('topic')}/{origin.get('partition')}/{origin.get('offset')}"
    letter = DeadLetter(
        event_id=uuid.UUID(event_id("dead_letter", where)),
        reason=reason,
        detail=detail,
        origin=DeadLetterOrigin.model_validate(origin),
        original=text,
        original_hex=original.hex(),
        rejected_at=rejected_at or utcnow(),
    )
    # `detail` may hold what a validation error quotes (any JSON value, or an exception).
    return _dump(letter, default=str)
