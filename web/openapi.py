"""The OpenAPI 3.1 document of the REST API, served at GET /openapi.json.

Paths and operations are written here; the export record, the per-type `params` and the
export types come from the code (`ExportRecord`, the spec registry), so they cannot drift.
A test checks that every registered route is documented and every documented one exists.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import faust
from aiohttp import web
from pydantic import BaseModel

from core.app import app
from core.models import CcpaRequest, CcpaStatus, ExportRecord, Status
from exporters.registry import SPECS
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("openapi")

Schema = dict[str, Any]

_REF = "#/components/schemas/{model}"
ID_PATTERN = "^[A-Za-z0-9_.:-]{1,128}$"
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,512}$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _untitled(schema: Any) -> Any:
    """Pydantic's generated titles ("Campaignid") add nothing but noise."""
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


def _model_schema(model: type[BaseModel], schemas: dict[str, Schema], **options: Any) -> Schema:
    """The model's JSON schema; its nested definitions go to components.schemas."""
    schema = model.model_json_schema(ref_template=_REF, **options)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, _untitled(definition))
    return dict(_untitled(schema))


def _export_record(schemas: dict[str, Schema]) -> Schema:
    """ExportRecord as `to_public()` writes it: every public field, always present."""
    schema = _model_schema(ExportRecord, schemas, mode="serialization", by_alias=True)
    public = list(ExportRecord(id="x", campaign_id="c", export_type="t").to_public())
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in public}
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["required"] = public
    return schema


def _ccpa_request(schemas: dict[str, Schema]) -> Schema:
    """CcpaRequest as `to_public()` writes it."""
    schema = _model_schema(CcpaRequest, schemas, mode="serialization", by_alias=True)
    public = list(CcpaRequest(request_id="r", user_id="u").to_public())
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in public}
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["required"] = public
    return schema


def _create_request(schemas: dict[str, Schema]) -> Schema:
    """One alternative per export type, each with that type's own params schema."""
    alternatives = []
    for spec in SPECS:
        params_name = spec.params.__name__
        if params_name not in schemas:
            schemas[params_name] = _model_schema(spec.params, schemas)
        params = schemas[params_name]
        alternatives.append(
            {
                "type": "object",
                "description": spec.description or spec.name,
                "properties": {"exportType": {"const": spec.name}, "params": _ref(params_name)},
                "required": ["exportType", "params"] if params.get("required") else ["exportType"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": alternatives}


def _error_schema() -> Schema:
    return {
        "type": "object",
        "description": "Every error answer (SPEC §5).",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "examples": ["INVALID_REQUEST"]},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
                "required": ["code", "message", "details"],
                "additionalProperties": False,
            }
        },
        "required": ["error"],
        "additionalProperties": False,
    }


def _json(schema: Schema, description: str, **extra: Any) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str, **extra: Any) -> Schema:
    return _json(_ref("Error"), description, **extra)


def _responses() -> dict[str, Schema]:
    challenge = {
        "WWW-Authenticate": {
            "description": "RFC 6750 bearer challenge",
            "required": True,
            "schema": {"type": "string"},
        }
    }
    return {
        "BadRequest": _error(
            "INVALID_REQUEST (bad JSON, unknown field, wrong type, bad id or query), "
            "UNKNOWN_EXPORT_TYPE, INVALID_PARAMS"
        ),
        "Unauthenticated": _error(
            "UNAUTHENTICATED: missing, malformed, expired or wrongly signed token",
            headers=challenge,
        ),
        "Forbidden": _error("FORBIDDEN: no REPORT permission on the campaign (nor supreme)"),
        "NotFound": _error("CAMPAIGN_NOT_FOUND or EXPORT_NOT_FOUND"),
        "PayloadTooLarge": _error("PAYLOAD_TOO_LARGE: body over MAX_REQUEST_BODY_BYTES"),
        "Unavailable": _error(
            "NOT_READY (status table recovering), QUEUE_UNAVAILABLE (broker down, nothing "
            "recorded), AUTH_NOT_CONFIGURED (no JWT key in the settings)"
        ),
    }


def _parameters() -> dict[str, Schema]:
    def path_id(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string", "pattern": ID_PATTERN},
        }

    return {
        "CampaignId": path_id("campaignId", "campaign id"),
        "ExportId": path_id("exportId", "export id"),
        "UserId": path_id("userId", "user id (the entries' userId)"),
        "RequestId": path_id("requestId", "CCPA deletion request id"),
        "Status": {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": _ref("Status"),
        },
        "ExportType": {
            "name": "exportType",
            "in": "query",
            "required": False,
            "schema": _ref("ExportType"),
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "`next` of the previous page (opaque)",
            "schema": {"type": "string", "pattern": CURSOR_PATTERN},
        },
    }


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _resp(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _paths() -> dict[str, Schema]:
    open_access: list[Schema] = []
    return {
        "/campaigns/{campaignId}/exports": {
            "parameters": [_param("CampaignId")],
            "post": {
                "operationId": "requestExport",
                "summary": "Request an export of the campaign",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateExportRequest")}},
                },
                "responses": {
                    "202": _json(_ref("ExportRecord"), "accepted: the new export, PENDING"),
                    "200": _json(
                        _ref("ExportRecord"),
                        "duplicate: the PENDING or TRIGGERED export with the same campaign, "
                        "type, params and UTC day",
                    ),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _resp("Forbidden"),
                    "404": _resp("NotFound"),
                    "413": _resp("PayloadTooLarge"),
                    "422": _error(
                        "NO_MARKETS_FOUND: a market-based type on a campaign without markets"
                    ),
                    "503": _resp("Unavailable"),
                },
            },
            "get": {
                "operationId": "listExports",
                "summary": "The campaign's exports, newest first",
                "parameters": [
                    _param("Status"),
                    _param("ExportType"),
                    _param("Limit"),
                    _param("Cursor"),
                ],
                "responses": {
                    "200": _json(_ref("ExportPage"), "a page of exports"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _resp("Forbidden"),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/campaigns/{campaignId}/exports/{exportId}": {
            "parameters": [_param("CampaignId"), _param("ExportId")],
            "get": {
                "operationId": "getExport",
                "summary": "One export; presigned download URLs when FINISHED",
                "responses": {
                    "200": _json(_ref("ExportWithDownloads"), "the export"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _resp("Forbidden"),
                    "404": _error(
                        "EXPORT_NOT_FOUND, or EXPORT_RETIRED: removed from the status table "
                        "after STATUS_RETENTION_DAYS (export-events keeps its history)"
                    ),
                    "503": _resp("Unavailable"),
                },
            },
            "delete": {
                "operationId": "cancelExport",
                "summary": "Cancel a PENDING or TRIGGERED export: a running one stops, its "
                "uploads are aborted, it ends CANCELLED and `export.cancelled` is published",
                "responses": {
                    "200": _json(_ref("ExportRecord"), "the export, CANCELLED"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _resp("Forbidden"),
                    "404": _error("EXPORT_NOT_FOUND or EXPORT_RETIRED"),
                    "409": _error(
                        "EXPORT_NOT_CANCELLABLE: the export has already ended "
                        "(details.status says how)"
                    ),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/ccpa/users/{userId}": {
            "parameters": [_param("UserId")],
            "delete": {
                "operationId": "requestCcpaDeletion",
                "summary": "Delete the files of every non-exempt FINISHED export of every "
                "campaign the user has entries in (supreme only; runs in the export queue)",
                "responses": {
                    "202": _json(_ref("CcpaRequest"), "accepted: the deletion request, PENDING"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _error("FORBIDDEN: a supreme token is required"),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/ccpa/requests": {
            "get": {
                "operationId": "listCcpaRequests",
                "summary": "Every CCPA deletion request, newest first (supreme only)",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": _ref("CcpaStatus"),
                    },
                    _param("Limit"),
                    _param("Cursor"),
                ],
                "responses": {
                    "200": _json(_ref("CcpaPage"), "a page of deletion requests"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _error("FORBIDDEN: a supreme token is required"),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/me": {
            "get": {
                "operationId": "whoAmI",
                "summary": "The caller as its token says: subject, supreme, and the campaigns "
                "it holds REPORT on (a supreme caller may use any campaign)",
                "responses": {
                    "200": _json(_ref("Identity"), "the caller"),
                    "401": _resp("Unauthenticated"),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/ccpa/requests/{requestId}": {
            "parameters": [_param("RequestId")],
            "get": {
                "operationId": "getCcpaRequest",
                "summary": "A CCPA deletion request: its status and, when COMPLETED, its summary",
                "responses": {
                    "200": _json(_ref("CcpaRequest"), "the deletion request"),
                    "400": _resp("BadRequest"),
                    "401": _resp("Unauthenticated"),
                    "403": _error("FORBIDDEN: a supreme token is required"),
                    "404": _error("CCPA_REQUEST_NOT_FOUND"),
                    "503": _resp("Unavailable"),
                },
            },
        },
        "/heartbeat": {
            "get": {
                "operationId": "heartbeat",
                "summary": "Liveness: the process and its event loop answer",
                "security": open_access,
                "responses": {"200": _json(_ref("Heartbeat"), "alive")},
            }
        },
        "/ready": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: broker connected, exports partition assigned, status "
                "table recovered, MongoDB and S3 reachable",
                "security": open_access,
                "responses": {
                    "200": _json(_ref("Readiness"), "ready"),
                    "503": _json(_ref("Readiness"), "not ready, with the failing checks"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format): exports, queue, "
                "consumer lag, HTTP, Faust's sensors, process",
                "security": open_access,
                "responses": {
                    "200": {
                        "description": "the metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": open_access,
                "responses": {"200": _json({"type": "object"}, "the OpenAPI 3.1 document")},
            }
        },
    }


def _components() -> Schema:
    schemas: dict[str, Schema] = {}
    schemas["ExportRecord"] = _export_record(schemas)
    schemas["CreateExportRequest"] = _create_request(schemas)
    schemas["CcpaRequest"] = _ccpa_request(schemas)
    schemas["ExportType"] = {"type": "string", "enum": [spec.name for spec in SPECS]}
    schemas["Status"] = {"type": "string", "enum": [s.value for s in Status]}
    schemas["Error"] = _error_schema()
    schemas["DownloadUrl"] = {
        "type": "object",
        "properties": {"key": {"type": "string"}, "url": {"type": "string"}},
        "required": ["key", "url"],
    }
    schemas["ExportWithDownloads"] = {
        "allOf": [
            _ref("ExportRecord"),
            {
                "type": "object",
                "properties": {
                    "downloadUrls": {
                        "type": "array",
                        "description": "only when FINISHED: one presigned GET per object",
                        "items": _ref("DownloadUrl"),
                    }
                },
            },
        ]
    }
    schemas["ExportPage"] = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("ExportRecord")},
            "next": {"type": ["string", "null"], "description": "cursor of the next page"},
        },
        "required": ["items", "next"],
        "additionalProperties": False,
    }
    schemas["CcpaStatus"] = {"type": "string", "enum": [s.value for s in CcpaStatus]}
    schemas["CcpaPage"] = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("CcpaRequest")},
            "next": {"type": ["string", "null"], "description": "cursor of the next page"},
        },
        "required": ["items", "next"],
        "additionalProperties": False,
    }
    schemas["Identity"] = {
        "type": "object",
        "properties": {
            "sub": {"type": "string"},
            "supreme": {"type": "boolean"},
            "campaigns": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["sub", "supreme", "campaigns"],
        "additionalProperties": False,
    }
    schemas["Heartbeat"] = {
        "type": "object",
        "properties": {"status": {"const": "ok"}},
        "required": ["status"],
    }
    schemas["Readiness"] = {
        "type": "object",
        "properties": {
            "status": {"enum": ["ready", "not ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["status", "checks"],
    }
    return {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "HS256 or RS256 as configured; `exp` required. Claims: `sub`, "
                    '`permissions: {"<campaignId>": ["REPORT"]}`, `supreme: bool`.'
                ),
            }
        },
        "schemas": schemas,
        "parameters": _parameters(),
        "responses": _responses(),
    }


def _service_version() -> str:
    try:
        return version("export-service")
    except PackageNotFoundError:
        return "0.0.0"


@cache
def _document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "export-service",
            "version": _service_version(),
            "description": (
                "Exports of campaign data to S3, requested over REST or Kafka. Errors are "
                '`{"error": {"code", "message", "details"}}`.'
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": _components(),
    }


def document() -> Schema:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


@blueprint.route("/openapi.json", name="openapi")
class OpenApiDocument(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        return json_response(_document())


blueprint.register(app, url_prefix="")
