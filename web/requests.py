"""Parsing and validating request bodies, path ids and query strings."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.errors import InvalidParams, InvalidRequest, UnknownExportType
from core.ids import ExportTypeName, is_id
from core.models import CcpaStatus, Status

CURSOR_MAX_LENGTH = 512
CURSOR_PATTERN = rf"^[A-Za-z0-9_-]{{1,{CURSOR_MAX_LENGTH}}}$"
Cursor = Annotated[
    str,
    StringConstraints(min_length=1, max_length=CURSOR_MAX_LENGTH, pattern=CURSOR_PATTERN),
]
"""`next` of the previous page: unpadded URL-safe base64 (encode_cursor)."""
_CURSOR_RE = re.compile(CURSOR_PATTERN)


class CreateExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    export_type: ExportTypeName = Field(alias="exportType")
    params: dict[str, Any] = Field(default_factory=dict)


def validated_id(value: str, *, name: str) -> str:
    if not is_id(value):
        raise InvalidRequest(f"invalid {name}", details={name: value[:200]})
    return value


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "request body is not valid JSON", details={"reason": str(exc)}
        ) from exc


def parse_create_body(data: Any) -> CreateExportBody:
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return CreateExportBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest("invalid request body", details={"errors": _errors(exc)}) from exc


def check_params(model: type[BaseModel], params: dict[str, Any], *, export_type: str) -> None:
    """Params as JSON with strict types (`"10"` is not a number), as the OpenAPI schema says.

    The runner parses them again (leniently) for Kafka requests; REST is held to the schema.
    """
    try:
        model.model_validate_json(orjson.dumps(params), strict=True)
    except ValidationError as exc:
        raise InvalidParams(
            f"invalid params for {export_type}", details={"errors": _errors(exc)}
        ) from exc


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    export_type: ExportTypeName | None = Field(None, alias="exportType")
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = Field(None, description="`next` of the previous page (opaque)")


class CcpaListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: CcpaStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = Field(None, description="`next` of the previous page (opaque)")


_Query = TypeVar("_Query", bound=BaseModel)


def _parse_query(query: Mapping[str, str], model: type[_Query]) -> _Query:
    """Unknown, repeated or out-of-range parameters are 400."""
    keys = [key for key, _ in query.items()]  # a MultiDict's keys() lists each key once
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise InvalidRequest("repeated query parameter", details={"parameters": repeated})
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise InvalidRequest("invalid query", details={"errors": _errors(exc)}) from exc


def parse_ccpa_list_query(query: Mapping[str, str]) -> CcpaListQuery:
    return _parse_query(query, CcpaListQuery)


def parse_list_query(query: Mapping[str, str], *, export_types: Collection[str]) -> ListQuery:
    """The listing filters; unknown, repeated or out-of-range parameters are 400."""
    parsed = _parse_query(query, ListQuery)
    if parsed.export_type is not None and parsed.export_type not in export_types:
        raise UnknownExportType(export_type=parsed.export_type, known=sorted(export_types))
    return parsed


def encode_cursor(created_at: dt.datetime, export_id: str) -> str:
    """An opaque position in the newest-first listing: after (createdAt, id)."""
    raw = orjson.dumps([created_at.isoformat(), export_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The position `encode_cursor` wrote; 400 INVALID_REQUEST for anything else."""
    invalid = InvalidRequest("invalid cursor", details={"cursor": cursor[:100]})
    if not _CURSOR_RE.fullmatch(cursor):
        raise invalid
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise invalid from exc
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and all(isinstance(part, str) for part in decoded)
    ):
        raise invalid
    created_text, export_id = decoded
    try:
        created = dt.datetime.fromisoformat(created_text)
    except ValueError as exc:
        raise invalid from exc
    # A naive time could not be compared with the records' aware ones.
    if created.utcoffset() is None or not is_id(export_id):
        raise invalid
    return created, export_id


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
