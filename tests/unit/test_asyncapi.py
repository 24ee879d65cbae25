"""The AsyncAPI document: AsyncAPI 3 in shape, every reference resolves, every schema is
valid, and the events the service makes (and the requests it accepts) are what it says."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
from pydantic import ValidationError

from core.asyncapi import DEAD_LETTERS, EXPORT_EVENTS, EXPORTS, build_document
from core.events import (
    RESULT_TYPES,
    ccpa_completed_bytes,
    ccpa_requested_bytes,
    dead_letter_bytes,
    export_requested_bytes,
    export_result_bytes,
    parse_input_event,
)
from core.models import (
    CcpaDeletedExport,
    CcpaRequest,
    CcpaStatus,
    CcpaSummary,
    ErrorInfo,
    ExportRecord,
    Status,
    StoredObject,
    new_export_id,
)
from core.settings import Settings
from exporters.registry import BY_NAME, SPECS
from exporters.runner import parse_params
from tests.contract import EventContract, resolve

DOC = build_document(SPECS)
CONTRACT = EventContract(DOC)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# What an AsyncAPI 3.0 object may hold (spec §3.3; `x-` extensions aside).
ROOT_FIELDS = {
    "asyncapi",
    "id",
    "info",
    "servers",
    "defaultContentType",
    "channels",
    "operations",
    "components",
}
CHANNEL_FIELDS = {
    "address",
    "messages",
    "title",
    "summary",
    "description",
    "servers",
    "parameters",
    "tags",
    "externalDocs",
    "bindings",
}
OPERATION_FIELDS = {
    "action",
    "channel",
    "title",
    "summary",
    "description",
    "security",
    "tags",
    "externalDocs",
    "bindings",
    "traits",
    "messages",
    "reply",
}
MESSAGE_FIELDS = {
    "headers",
    "payload",
    "correlationId",
    "contentType",
    "name",
    "title",
    "summary",
    "description",
    "tags",
    "externalDocs",
    "bindings",
    "examples",
    "traits",
}
COMPONENT_FIELDS = {
    "schemas",
    "servers",
    "channels",
    "operations",
    "messages",
    "securitySchemes",
    "serverVariables",
    "parameters",
    "correlationIds",
    "replies",
    "replyAddresses",
    "externalDocs",
    "tags",
    "operationTraits",
    "messageTraits",
    "serverBindings",
    "channelBindings",
    "operationBindings",
    "messageBindings",
}
KAFKA_MESSAGE_BINDING = {
    "key",
    "schemaIdLocation",
    "schemaIdPayloadEncoding",
    "schemaLookupStrategy",
    "bindingVersion",
}
COMPONENT_NAME = r"^[\w\d.\-_]+$"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _messages() -> dict[str, dict[str, Any]]:
    return dict(DOC["components"]["messages"])


def _schemas_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [message["payload"], message["headers"], message["bindings"]["kafka"]["key"]]


def test_the_document_is_asyncapi_3_0_with_the_three_topics() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert set(DOC) <= ROOT_FIELDS
    assert {"title", "version", "description"} <= set(DOC["info"])
    assert set(DOC["components"]) <= COMPONENT_FIELDS
    defaults = Settings.model_construct()
    addresses = {name: channel["address"] for name, channel in DOC["channels"].items()}
    assert addresses == {
        EXPORTS: defaults.topic_exports,
        EXPORT_EVENTS: defaults.topic_export_events,
        DEAD_LETTERS: defaults.topic_dlq,
    }
    for name, channel in DOC["channels"].items():
        assert set(channel) <= CHANNEL_FIELDS, name
        assert "setting" in channel["description"], "topic names are settings"
        assert channel["bindings"]["kafka"] == {"partitions": 1, "bindingVersion": "0.5.0"}
    for section in ("schemas", "messages"):
        for name in DOC["components"][section]:
            assert jsonschema.Draft202012Validator({"pattern": COMPONENT_NAME}).is_valid(name)


def test_every_reference_resolves() -> None:
    refs = set(_refs(DOC))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        resolve(DOC, ref)  # KeyError if it names nothing


def test_operations_send_and_receive_messages_of_their_own_channel() -> None:
    used = set()
    for name, operation in DOC["operations"].items():
        assert set(operation) <= OPERATION_FIELDS, name
        assert operation["action"] in {"send", "receive"}, name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        channel = resolve(DOC, channel_ref)
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are a subset of its channel's.
            prefix, key = message["$ref"].rsplit("/", 1)
            assert prefix == f"{channel_ref}/messages", (name, message)
            assert key in channel["messages"], (name, key)
            used.add(resolve(DOC, message["$ref"])["name"])
    assert used == {m["name"] for m in _messages().values()}, "every message is used"
    actions = {(op["channel"]["$ref"], op["action"]) for op in DOC["operations"].values()}
    assert actions == {
        ("#/channels/exports", "receive"),
        ("#/channels/exports", "send"),
        ("#/channels/exportEvents", "send"),
        ("#/channels/deadLetters", "send"),
    }


def test_messages_are_message_objects_with_kafka_keys() -> None:
    for key, message in _messages().items():
        assert set(message) <= MESSAGE_FIELDS, key
        assert message["contentType"] == "application/json"
        assert set(message["bindings"]["kafka"]) <= KAFKA_MESSAGE_BINDING
        assert message["bindings"]["kafka"]["bindingVersion"] == "0.5.0"
        assert message["examples"], key
        for example in message["examples"]:
            assert set(example) <= {"name", "summary", "headers", "payload"}
            assert "payload" in example


def test_the_document_is_a_valid_asyncapi3_object_model() -> None:
    """A second opinion: the asyncapi3 package's models of the AsyncAPI 3.0 objects."""
    with warnings.catch_warnings():
        # It names fields "schema", which shadows a BaseModel attribute: pydantic warns.
        warnings.simplefilter("ignore", UserWarning)
        from asyncapi3.models.asyncapi import AsyncAPI3  # type: ignore[import-untyped]

        AsyncAPI3.model_validate(DOC)
        broken = orjson.loads(orjson.dumps(DOC))
        broken["operations"]["receiveRequests"]["action"] = "subscribe"  # AsyncAPI 2's verb
        with pytest.raises(ValidationError):
            AsyncAPI3.model_validate(broken)


def test_every_schema_is_valid_json_schema() -> None:
    """Draft 2020-12 (what pydantic writes and the tests validate with) and Draft 7 (what
    AsyncAPI's default schema format extends)."""
    schemas = list(DOC["components"]["schemas"].values())
    for message in _messages().values():
        schemas.extend(_schemas_of(message))
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft7Validator.check_schema(schema)
    text = orjson.dumps(DOC).decode()
    for newer in ('"$defs"', '"prefixItems"', '"unevaluatedProperties"', '"dependentRequired"'):
        assert newer not in text, f"{newer} is not Draft 7"


@pytest.mark.parametrize("key", sorted(DOC["components"]["messages"]))
def test_every_example_is_its_message(key: str) -> None:
    message = DOC["components"]["messages"][key]
    channel = next(c for c, ch in DOC["channels"].items() if key in ch["messages"])
    for example in message["examples"]:
        value = orjson.dumps(example["payload"])
        name = CONTRACT.check(
            channel, value, key=_example_key(message), headers=example.get("headers")
        )
        assert name == message["name"]


def _example_key(message: dict[str, Any]) -> bytes | None:
    key_schema = message["bindings"]["kafka"]["key"]
    return None if key_schema.get("type") == "null" else b"some-id"


# -- the events the service publishes --------------------------------------------------


def _record(**changes: Any) -> ExportRecord:
    return ExportRecord(
        id=new_export_id(),
        campaign_id="cmp-1",
        export_type="codes",
        requested_by="someone@example.com",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    ).evolve(**changes)


def _terminal_records() -> list[ExportRecord]:
    now = dt.datetime.now(dt.UTC)
    objects = (
        StoredObject(key="codes/cmp-1/x/a.csv", size=10, sha256="ab" * 32),
        StoredObject(key="codes/cmp-1/x/b.csv", size=0, sha256="cd" * 32),
    )
    error = ErrorInfo(code="SOURCE_UNAVAILABLE", message="MongoDB is away")
    return [
        _record(status=Status.FINISHED, bucket="b", objects=objects, finished_at=now),
        _record(status=Status.FINISHED, source="kafka", requested_by=None, total_count=0),
        _record(status=Status.FAILED, error=error, triggered_at=now, finished_at=now),
        _record(status=Status.EXPIRED, error=error, rows_per_second=12.5, eta_seconds=3.0),
        _record(status=Status.CANCELLED, export_type="codeWave", params={"waveId": "w"}),
    ]


def test_every_result_event_is_its_message_on_export_events() -> None:
    for record in _terminal_records():
        name = CONTRACT.check(
            EXPORT_EVENTS,
            export_result_bytes(record),
            key=record.id.encode(),
            headers=[("traceparent", TRACEPARENT.encode())],
        )
        assert name == RESULT_TYPES[record.status]


def test_a_result_of_one_type_is_not_another() -> None:
    finished = orjson.loads(export_result_bytes(_terminal_records()[0]))
    key = finished["exportId"].encode()
    for wrong in ({"type": "export.failed"}, {"status": "FAILED"}, {"keys": "a.csv"}):
        assert CONTRACT.refuses(EXPORT_EVENTS, orjson.dumps({**finished, **wrong}), key=key)
    assert CONTRACT.refuses(EXPORT_EVENTS, orjson.dumps({**finished, "eventId": "x"}), key=key)
    bad_header = [("traceparent", b"not a trace")]
    value = orjson.dumps(finished)
    assert CONTRACT.refuses(EXPORT_EVENTS, value, key=key, headers=bad_header)
    assert CONTRACT.refuses(EXPORT_EVENTS, value, key=None)


def test_ccpa_completions_are_their_message_on_export_events() -> None:
    summary = CcpaSummary(
        campaign_ids=("cmp-1",),
        deleted=(
            CcpaDeletedExport(
                export_id="e1",
                campaign_id="cmp-1",
                export_type="codes",
                bucket="b",
                object_count=1,
                keys=("k",),
            ),
        ),
        deleted_object_count=1,
    )
    for request in (
        CcpaRequest(request_id="r1", user_id="u1", status=CcpaStatus.COMPLETED, summary=summary),
        CcpaRequest(
            request_id="r2",
            user_id="u1",
            status=CcpaStatus.FAILED,
            error=ErrorInfo(code="UPLOAD_FAILED", message="S3 refused"),
        ),
    ):
        value = ccpa_completed_bytes(request)
        name = CONTRACT.check(EXPORT_EVENTS, value, key=request.request_id.encode())
        assert name == "ccpa.deletion_completed"


def test_the_requests_the_rest_views_publish_are_their_message_on_exports() -> None:
    for record in (_record(), _record(export_type="codeWave", params={"waveId": "w1"})):
        value = export_requested_bytes(record)
        assert CONTRACT.check(EXPORTS, value, key=record.id.encode()) == "export.requested"
    ccpa = CcpaRequest(request_id=new_export_id(), user_id="u-1", requested_by="admin")
    value = ccpa_requested_bytes(ccpa)
    assert CONTRACT.check(EXPORTS, value, key=ccpa.request_id.encode()) == (
        "ccpa.deletion_requested"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "INVALID_JSON"),
        (b"\xff\xfe", "INVALID_JSON"),
        (b'{"type": "export.requested", "campaignId": "c"}', "INVALID_EVENT"),
        (b"", "INVALID_JSON"),
    ],
)
def test_dead_letters_are_their_message_on_the_dlq(raw: bytes, reason: str) -> None:
    try:
        detail: Any = parse_input_event(raw)
    except ValidationError as exc:
        detail = exc.errors(include_url=False)
    except ValueError as exc:
        detail = str(exc)
    origin = {"topic": "exports", "partition": 0, "offset": 7}
    value = dead_letter_bytes(raw, reason=reason, detail=detail, origin=origin)
    assert CONTRACT.check(DEAD_LETTERS, value) == "dead_letter"


# -- what the document accepts is what the intake accepts ------------------------------

REQUESTS: list[Any] = [
    {"type": "export.requested", "exportId": "e1", "campaignId": "c", "exportType": "codes"},
    {
        "type": "export.requested",
        "exportId": "e1",
        "campaignId": "c",
        "exportType": "codeWave",
        "params": {"waveId": "w1"},
        "requestedBy": "ticketing",
        "requestedAt": "2026-05-01T17:00:00+00:00",
        "extra": "ignored",
    },
    {
        "type": "export.requested",
        "exportId": "e1",
        "campaignId": "c",
        "exportType": "reminderEmailSample",
        "params": {"sampleSize": 5},
    },
    {"type": "export.requested", "exportId": "e1", "campaignId": "c", "exportType": "codeWave"},
    {"type": "export.requested", "exportId": "e1", "campaignId": "c", "exportType": "nope"},
    {
        "type": "export.requested",
        "exportId": "e1",
        "campaignId": "c",
        "exportType": "codes",
        "params": {"x": 1},
    },
    {"type": "export.requested", "campaignId": "c", "exportType": "codes"},
    {"type": "export.requested", "exportId": "bad id", "campaignId": "c", "exportType": "codes"},
    {"type": "export.requested", "exportId": "x" * 129, "campaignId": "c", "exportType": "codes"},
    {
        "type": "export.requested",
        "exportId": "e1",
        "campaignId": "c",
        "exportType": "codes",
        "requestedBy": "x" * 257,
    },
    {"type": "ccpa.deletion_requested", "requestId": "r1", "userId": "u1"},
    {"type": "ccpa.deletion_requested", "requestId": "r1"},
    {"type": "export.cancel_requested", "exportId": "e1"},
    {"type": "export.cancel_requested", "exportId": "e1", "campaignId": "c", "requestedBy": "x"},
    {"type": "export.cancel_requested", "campaignId": "c"},
    {"type": "something.else"},
    {"exportId": "e1"},
    ["export.requested"],
]


def _intake_accepts(event: Any) -> bool:
    """Whether the intake records the event (parsed, a registered type, valid params)."""
    try:
        parsed = parse_input_event(orjson.dumps(event))
    except ValueError:  # ValidationError is a ValueError
        return False
    export_type = getattr(parsed, "export_type", None)
    if export_type is None:
        return True
    if export_type not in BY_NAME:
        return False
    try:
        parse_params(BY_NAME[export_type], parsed.params)  # type: ignore[union-attr]
    except Exception:
        return False
    return True


@pytest.mark.parametrize("event", REQUESTS, ids=lambda e: orjson.dumps(e).decode()[:70])
def test_the_document_accepts_a_request_exactly_when_the_intake_does(event: Any) -> None:
    value = orjson.dumps(event)
    accepted, _ = CONTRACT.problems(EXPORTS, value)
    assert (len(accepted) == 1) == _intake_accepts(event), accepted


def test_an_id_is_the_whole_string() -> None:
    """Python's `$` also matches before a final newline; JSON Schema's (ECMA-262) and
    pydantic's do not, and neither does `is_id` (Python's jsonschema follows Python here,
    so this case is not in the agreement test above)."""
    from core.ids import is_id

    assert is_id("e-1.x:y_z")
    for bad in ("e\n", "", "x" * 129, "a b", "é"):
        assert not is_id(bad), bad
    with pytest.raises(ValidationError):
        parse_input_event(orjson.dumps({**REQUESTS[0], "exportId": "e\n"}))
