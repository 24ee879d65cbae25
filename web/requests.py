"""Parsing and validating request bodies, path ids and query strings."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidRequest
from core.models import Status

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class CreateExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    export_type: str = Field(alias="exportType", min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


def validated_id(value: str, *, name: str) -> str:
    if not _ID_RE.match(value):
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
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest("invalid request body", details={"errors": errors}) from exc


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    export_type: str | None = Field(None, alias="exportType", max_length=64)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=512)


def parse_list_query(query: Any) -> ListQuery:
    try:
        return ListQuery.model_validate(dict(query))
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest("invalid query", details={"errors": errors}) from exc


def encode_cursor(created_at: dt.datetime, export_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), export_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, export_id = orjson.loads(base64.urlsafe_b64decode(padded))
        return dt.datetime.fromisoformat(created), str(export_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidRequest("invalid cursor", details={"cursor": cursor[:100]}) from exc
