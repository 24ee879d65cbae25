"""The AsyncAPI 3.0 document of the Kafka interface, generated from the event models.

Channels are the three topics, under their default names (each name is a setting), the
operations say what the service does on each, and the messages are the events of
core/events.py: their payload schemas come from those models (and the export types'
`params` models), and each example of an event the service publishes is made by the code
that makes the real bytes. Served at GET /asyncapi.json (web/asyncapi.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from core.events import (
    RESULT_TYPES,
    CcpaDeletionCompleted,
    CcpaDeletionRequested,
    DeadLetter,
    ExportCancelRequested,
    ExportRequested,
    ExportResult,
    ccpa_completed_bytes,
    ccpa_requested_bytes,
    dead_letter_bytes,
    export_requested_bytes,
    export_result_bytes,
    parse_input_event,
)
from core.ids import Id
from core.models import (
    CcpaDeletedExport,
    CcpaExemptExport,
    CcpaRequest,
    CcpaStatus,
    CcpaSummary,
    ErrorInfo,
    ExportRecord,
    Status,
    StoredObject,
)
from core.schemas import (
    DocumentedExportType,
    Schema,
    ccpa_request_schema,
    export_record_schema,
    export_type_alternatives,
    model_schema,
    ref,
    referenced_only,
    service_version,
    type_schema,
)
from core.settings import Settings

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

# The channels' ids in the document (topic names are settings; these are not).
EXPORTS = "exports"
EXPORT_EVENTS = "exportEvents"
DEAD_LETTERS = "deadLetters"

_TOPIC_SETTINGS = {
    EXPORTS: "topic_exports",
    EXPORT_EVENTS: "topic_export_events",
    DEAD_LETTERS: "topic_dlq",
}

TRACEPARENT_PATTERN = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

_EXAMPLE_TIME = dt.datetime(2026, 5, 1, 17, 0, tzinfo=dt.UTC)
_EXAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_EXAMPLE_TRACEPARENT = f"00-{_EXAMPLE_TRACE_ID}-00f067aa0ba902b7-01"


def default_topic(channel: str) -> str:
    """The channel's topic name when its setting is not given."""
    return str(Settings.model_fields[_TOPIC_SETTINGS[channel]].default)


def topic_setting(channel: str) -> str:
    """The environment variable that names the channel's topic."""
    return _TOPIC_SETTINGS[channel].upper()


# -- schemas ---------------------------------------------------------------------------


def _head_and_record(head: type[BaseModel], record: Schema, schemas: dict[str, Schema]) -> Schema:
    """An event that is a head model followed by a public record, in one object."""
    head_schema = model_schema(head, schemas, mode="serialization", by_alias=True)
    description = head_schema.pop("description", None)
    return {"description": description, "allOf": [head_schema, record]}


def _schemas(export_types: Sequence[DocumentedExportType]) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    schemas["ExportRecord"] = export_record_schema(schemas)
    schemas["CcpaRequest"] = ccpa_request_schema(schemas)
    requested = model_schema(ExportRequested, schemas, by_alias=True)
    # Which params an export type takes; an event that names an unregistered type, or the
    # wrong params, is dead-lettered (UNKNOWN_EXPORT_TYPE, INVALID_PARAMS).
    requested["oneOf"] = export_type_alternatives(export_types, schemas, closed=False)
    schemas["ExportRequested"] = requested
    schemas["CcpaDeletionRequested"] = model_schema(CcpaDeletionRequested, schemas, by_alias=True)
    schemas["ExportCancelRequested"] = model_schema(ExportCancelRequested, schemas, by_alias=True)
    schemas["ExportResult"] = _head_and_record(ExportResult, ref("ExportRecord"), schemas)
    schemas["CcpaDeletionCompleted"] = _head_and_record(
        CcpaDeletionCompleted, ref("CcpaRequest"), schemas
    )
    schemas["DeadLetter"] = model_schema(DeadLetter, schemas, mode="serialization", by_alias=True)
    schemas["TraceHeaders"] = {
        "type": "object",
        "description": "Kafka headers (UTF-8 values). Other headers may be present.",
        "properties": {
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": "W3C trace context. The service sets it on what it publishes "
                "while tracing is on (OTEL_* settings); on a request event it makes the "
                "export's trace continue the producer's.",
            },
            "tracestate": {"type": "string", "description": "W3C trace state, with traceparent"},
        },
    }
    return schemas


# -- examples, made by the code that makes the events ----------------------------------


def _json(raw: bytes) -> Any:
    return orjson.loads(raw)


def _example_record(**changes: Any) -> ExportRecord:
    record = ExportRecord(
        id="6f1c2e0a9b7d4c3e8a5f0b1d2c3e4f5a",
        campaign_id="cmp-1",
        export_type="codeWave",
        params={"waveId": "wave-1"},
        source="rest",
        requested_by="admin@example.com",
        created_at=_EXAMPLE_TIME,
        trace_id=_EXAMPLE_TRACE_ID,
    )
    return record.evolve(**changes)


def _ended(status: Status, **changes: Any) -> ExportRecord:
    return _example_record(
        status=status,
        triggered_at=_EXAMPLE_TIME + dt.timedelta(seconds=2),
        finished_at=_EXAMPLE_TIME + dt.timedelta(seconds=40),
        total_count=1200,
        **changes,
    )


def _result_examples() -> dict[Status, list[Schema]]:
    key = "codeWave/cmp-1/6f1c2e0a9b7d4c3e8a5f0b1d2c3e4f5a/Summer Tour - Code Wave.csv"
    finished = _ended(
        Status.FINISHED,
        row_count=1180,
        skipped_count=20,
        rows_per_second=29.5,
        eta_seconds=0.0,
        bucket="exports-bucket",
        objects=(StoredObject(key=key, size=48213, sha256="9f86d08" + "0" * 57),),
    )
    failed = _ended(
        Status.FAILED,
        row_count=400,
        error=ErrorInfo(code="SOURCE_UNAVAILABLE", message="MongoDB did not answer in time"),
    )
    expired = _ended(
        Status.EXPIRED,
        row_count=900,
        error=ErrorInfo(code="EXPORT_TIMEOUT", message="export ran longer than 3600 s"),
    )
    cancelled = _ended(
        Status.CANCELLED,
        row_count=300,
        error=ErrorInfo(code="EXPORT_CANCELLED", message="cancelled by admin@example.com"),
    )
    return {
        record.status: [
            {
                "name": record.status.value.lower(),
                "summary": f"a {record.export_type} export, {record.status.value}",
                "headers": {"traceparent": _EXAMPLE_TRACEPARENT},
                "payload": _json(export_result_bytes(record)),
            }
        ]
        for record in (finished, failed, expired, cancelled)
    }


def _ccpa_request(**changes: Any) -> CcpaRequest:
    request = CcpaRequest(
        request_id="0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
        user_id="user-42",
        requested_by="privacy-desk",
        created_at=_EXAMPLE_TIME,
    )
    return request.evolve(**changes)


def _ccpa_completed_example() -> Schema:
    request = _ccpa_request(
        status=CcpaStatus.COMPLETED,
        source="kafka",
        started_at=_EXAMPLE_TIME + dt.timedelta(seconds=1),
        finished_at=_EXAMPLE_TIME + dt.timedelta(seconds=3),
        summary=CcpaSummary(
            campaign_ids=("cmp-1",),
            deleted=(
                CcpaDeletedExport(
                    export_id="6f1c2e0a9b7d4c3e8a5f0b1d2c3e4f5a",
                    campaign_id="cmp-1",
                    export_type="codeWave",
                    bucket="exports-bucket",
                    object_count=1,
                    keys=("codeWave/cmp-1/6f1c2e0a9b7d4c3e8a5f0b1d2c3e4f5a/codes.csv",),
                ),
            ),
            exempt=(
                CcpaExemptExport(
                    export_id="a1b2c3d4e5f60718293a4b5c6d7e8f90",
                    campaign_id="cmp-1",
                    export_type="scoring",
                    object_count=1,
                ),
            ),
            deleted_object_count=1,
        ),
    )
    return {
        "name": "completed",
        "summary": "one export's files deleted, one kept as exempt",
        "payload": _json(ccpa_completed_bytes(request)),
    }


def _dead_letter_example() -> Schema:
    raw = b'{"type": "export.requested", "campaignId": "cmp-1", "exportType": "codes"}'
    try:
        parse_input_event(raw)
    except ValidationError as exc:
        detail: Any = exc.errors(include_url=False)
    else:  # pragma: no cover - the example is an invalid event
        raise AssertionError("the dead letter example must be refused")
    letter = dead_letter_bytes(
        raw,
        reason="INVALID_EVENT",
        detail=detail,
        origin={"topic": default_topic(EXPORTS), "partition": 0, "offset": 1842},
        rejected_at=_EXAMPLE_TIME,
    )
    return {
        "name": "missing-export-id",
        "summary": "an export.requested without exportId",
        "payload": _json(letter),
    }


# -- messages, channels, operations ----------------------------------------------------


def _message(
    name: str,
    *,
    title: str,
    summary: str,
    payload: str,
    key: Schema,
    examples: list[Schema],
    description: str | None = None,
) -> Schema:
    message: Schema = {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": ref("TraceHeaders"),
        "payload": ref(payload),
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": examples,
    }
    if description:
        message["description"] = description
    return message


def _request_key(id_name: str) -> Schema:
    return {
        "type": ["string", "null"],
        "description": f"the REST views key their events by `{id_name}`; upstream systems "
        "may use any key, or none (one partition: the key routes nothing)",
    }


def _result_key(id_name: str) -> Schema:
    return {**type_schema(Id), "description": f"the `{id_name}`: an export's events share it"}


_RESULT_TITLES = {
    Status.FINISHED: ("exportFinished", "Export finished", "every object is complete in S3"),
    Status.FAILED: ("exportFailed", "Export failed", "`error` says why; no object was left"),
    Status.EXPIRED: (
        "exportExpired",
        "Export expired",
        "it ran longer than EXPORT_TIMEOUT_SECONDS; no object was left",
    ),
    Status.CANCELLED: (
        "exportCancelled",
        "Export cancelled",
        "cancelled over REST or Kafka; no object was left",
    ),
}


def _messages() -> dict[str, Schema]:
    requested = _json(export_requested_bytes(_example_record()))
    messages: dict[str, Schema] = {
        "exportRequested": _message(
            "export.requested",
            title="Export requested",
            summary="Run one export of a campaign (recorded PENDING at once, run in turn).",
            description="A request whose (campaignId, exportType, params, UTC day) matches a "
            "PENDING or TRIGGERED export is served by that export.",
            payload="ExportRequested",
            key=_request_key("exportId"),
            examples=[
                {
                    "name": "upstream",
                    "summary": "what an upstream system sends",
                    "payload": {
                        "type": "export.requested",
                        "exportId": "ticketing-20260501-0001",
                        "campaignId": "cmp-1",
                        "exportType": "codeWave",
                        "params": {"waveId": "wave-1"},
                        "requestedBy": "ticketing",
                        "requestedAt": "2026-05-01T17:00:00Z",
                    },
                },
                {
                    "name": "rest",
                    "summary": "what a REST view publishes for the export it recorded",
                    "headers": {"traceparent": _EXAMPLE_TRACEPARENT},
                    "payload": requested,
                },
            ],
        ),
        "ccpaDeletionRequested": _message(
            "ccpa.deletion_requested",
            title="CCPA deletion requested",
            summary="Delete the files of every non-exempt FINISHED export of every campaign "
            "the user has entries in (run in the export queue).",
            payload="CcpaDeletionRequested",
            key=_request_key("requestId"),
            examples=[
                {
                    "name": "rest",
                    "summary": "what DELETE /ccpa/users/{userId} publishes",
                    "payload": _json(ccpa_requested_bytes(_ccpa_request())),
                }
            ],
        ),
        "exportCancelRequested": _message(
            "export.cancel_requested",
            title="Export cancel requested",
            summary="Stop a PENDING or TRIGGERED export (a running one stops within a second).",
            payload="ExportCancelRequested",
            key=_request_key("exportId"),
            examples=[
                {
                    "name": "upstream",
                    "payload": {
                        "type": "export.cancel_requested",
                        "exportId": "ticketing-20260501-0001",
                        "campaignId": "cmp-1",
                        "requestedBy": "ticketing",
                        "requestedAt": "2026-05-01T17:05:00Z",
                    },
                }
            ],
        ),
    }
    results = _result_examples()
    for status, kind in RESULT_TYPES.items():
        channel_key, title, summary = _RESULT_TITLES[status]
        messages[channel_key] = _message(
            kind,
            title=title,
            summary=f"The export ended {status.value}: {summary}.",
            payload="ExportResult",
            key=_result_key("exportId"),
            examples=results[status],
        )
        # One message per type: its `type` and `status` are known.
        messages[channel_key]["payload"] = {
            "allOf": [
                ref("ExportResult"),
                {"properties": {"type": {"const": kind}, "status": {"const": status.value}}},
            ]
        }
    messages["ccpaDeletionCompleted"] = _message(
        "ccpa.deletion_completed",
        title="CCPA deletion completed",
        summary="A deletion request ended COMPLETED (with its summary) or FAILED (with its error).",
        payload="CcpaDeletionCompleted",
        key=_result_key("requestId"),
        examples=[_ccpa_completed_example()],
    )
    messages["deadLetter"] = _message(
        "dead_letter",
        title="Dead letter",
        summary="An exports-topic message that could not be parsed or validated, or that "
        "was refused; nothing is dropped silently.",
        payload="DeadLetter",
        key={"type": "null", "description": "no key"},
        examples=[_dead_letter_example()],
    )
    return messages


_CHANNEL_MESSAGES = {
    EXPORTS: ("exportRequested", "ccpaDeletionRequested", "exportCancelRequested"),
    EXPORT_EVENTS: (
        "exportFinished",
        "exportFailed",
        "exportExpired",
        "exportCancelled",
        "ccpaDeletionCompleted",
    ),
    DEAD_LETTERS: ("deadLetter",),
}

_CHANNEL_TEXT = {
    EXPORTS: (
        "Export requests, cancels and CCPA deletions",
        "The service's queue: one partition, consumed in order; exports run one at a time. "
        "Upstream systems publish here, and the REST views publish the requests they record.",
    ),
    EXPORT_EVENTS: (
        "Export results and CCPA completions",
        "The durable history of every export that ended and every CCPA deletion. Delivery "
        "is at least once: a result re-sent after a crash has the same `eventId`.",
    ),
    DEAD_LETTERS: (
        "Refused input events",
        "Every exports-topic message that was not a valid request, with the reason and "
        "the original bytes.",
    ),
}


def _channels() -> dict[str, Schema]:
    channels = {}
    for channel, message_keys in _CHANNEL_MESSAGES.items():
        title, description = _CHANNEL_TEXT[channel]
        channels[channel] = {
            "address": default_topic(channel),
            "title": title,
            "description": f"{description}\n\nTopic name: `{default_topic(channel)}` unless "
            f"the {topic_setting(channel)} setting names another.",
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in message_keys},
            "bindings": {"kafka": {"partitions": 1, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
    return channels


def _operation(action: str, channel: str, summary: str, message_keys: Sequence[str]) -> Schema:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"} for key in message_keys],
    }


def _operations() -> dict[str, Schema]:
    group = Settings.model_fields["app_id"].default
    receive = _operation(
        "receive",
        EXPORTS,
        "The intake records every request at once (PENDING) or dead-letters it; the runner "
        "runs the recorded exports one at a time.",
        _CHANNEL_MESSAGES[EXPORTS],
    )
    receive["bindings"] = {
        "kafka": {
            "groupId": {
                "type": "string",
                "enum": [group],
                "description": "the APP_ID setting",
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }
    return {
        "receiveRequests": receive,
        "publishRequests": _operation(
            "send",
            EXPORTS,
            "POST /campaigns/{campaignId}/exports and DELETE /ccpa/users/{userId} publish "
            "the request they recorded, keyed by its id.",
            ("exportRequested", "ccpaDeletionRequested"),
        ),
        "publishResults": _operation(
            "send",
            EXPORT_EVENTS,
            "Every export that ends FINISHED, FAILED, EXPIRED or CANCELLED, and every CCPA "
            "deletion that ends, is announced once it is recorded.",
            _CHANNEL_MESSAGES[EXPORT_EVENTS],
        ),
        "publishDeadLetters": _operation(
            "send",
            DEAD_LETTERS,
            "An input event that could not be parsed, validated or accepted.",
            _CHANNEL_MESSAGES[DEAD_LETTERS],
        ),
    }


def build_document(export_types: Sequence[DocumentedExportType]) -> Schema:
    """The AsyncAPI document; `export_types` are the registered export types."""
    schemas = _schemas(export_types)
    messages = _messages()
    channels = _channels()
    operations = _operations()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "export-service",
            "version": service_version(),
            "description": (
                "The Kafka interface of export-service: upstream systems request exports "
                "and CCPA deletions on the exports topic, downstream systems read the "
                "results on export-events (an export's objects are at `bucket` + `keys`; "
                "GET /campaigns/{campaignId}/exports/{exportId} of the REST API answers "
                "presigned `downloadUrls`). Values are UTF-8 JSON; topic names are "
                "settings (TOPIC_EXPORTS, TOPIC_EXPORT_EVENTS, TOPIC_DLQ)."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": referenced_only(schemas, messages),
            "messages": messages,
        },
    }
