"""The OpenAPI 3.1 document of the REST API, served at GET /openapi.json.

Paths and operations are written here; every schema comes from the code: the export record,
the CCPA request, the answers the views build (web/bodies.py), the per-type `params` and the
export types (the spec registry), the ids and the query parameters (core/ids.py,
web/requests.py), so they cannot drift. A test checks that every registered route is
documented and every documented one exists.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import faust
from aiohttp import web
from pydantic import BaseModel

from core.ids import Id
from core.schemas import (
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
from exporters.registry import SPECS
from web.bodies import (
    CcpaPage,
    DownloadUrl,
    ErrorBody,
    ExportDownloads,
    ExportPage,
    Heartbeat,
    Identity,
    Readiness,
)
from web.requests import CcpaListQuery, ListQuery
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("openapi")


def _json(schema: Schema, description: str, **extra: Any) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str, **extra: Any) -> Schema:
    return _json(ref("Error"), description, **extra)


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


def _query_schema(model: type[BaseModel], name: str, schemas: dict[str, Schema]) -> Schema:
    """A query model's field as a parameter schema: a missing parameter is the default, so
    the `null` alternative of an optional field is left out."""
    schema = dict(model_schema(model, schemas)["properties"][name])
    alternatives = schema.pop("anyOf", None)
    if alternatives is not None:
        (kept,) = [a for a in alternatives if a != {"type": "null"}]
        schema = {**kept, **schema}
        if schema.get("default", "") is None:
            del schema["default"]
    return schema


def _parameters(schemas: dict[str, Schema]) -> dict[str, Schema]:
    def path_id(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": type_schema(Id),
        }

    def query(name: str, schema: Schema) -> Schema:
        description = schema.pop("description", None)
        parameter = {"name": name, "in": "query", "required": False, "schema": schema}
        return parameter if description is None else {**parameter, "description": description}

    return {
        "CampaignId": path_id("campaignId", "campaign id"),
        "ExportId": path_id("exportId", "export id"),
        "UserId": path_id("userId", "user id (the entries' userId)"),
        "RequestId": path_id("requestId", "CCPA deletion request id"),
        "Status": query("status", _query_schema(ListQuery, "status", schemas)),
        # The registered types: ListQuery parses any name, the view refuses unknown ones.
        "ExportType": query("exportType", ref("ExportType")),
        "Limit": query("limit", _query_schema(ListQuery, "limit", schemas)),
        "Cursor": query("cursor", _query_schema(ListQuery, "cursor", schemas)),
        "CcpaStatus": query("status", _query_schema(CcpaListQuery, "status", schemas)),
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
                    "content": {"application/json": {"schema": ref("CreateExportRequest")}},
                },
                "responses": {
                    "202": _json(ref("ExportRecord"), "accepted: the new export, PENDING"),
                    "200": _json(
                        ref("ExportRecord"),
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
                    "200": _json(ref("ExportPage"), "a page of exports"),
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
                    "200": _json(ref("ExportWithDownloads"), "the export"),
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
                    "202": _json(ref("ExportRecord"), "the export, CANCELLED"),
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
                    "202": _json(ref("CcpaRequest"), "accepted: the deletion request, PENDING"),
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
                "parameters": [_param("CcpaStatus"), _param("Limit"), _param("Cursor")],
                "responses": {
                    "200": _json(ref("CcpaPage"), "a page of deletion requests"),
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
                    "200": _json(ref("Identity"), "the caller"),
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
                    "200": _json(ref("CcpaRequest"), "the deletion request"),
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
                "responses": {"200": _json(ref("Heartbeat"), "alive")},
            }
        },
        "/ready": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: broker connected, exports partition assigned, status "
                "table recovered, MongoDB and S3 reachable",
                "security": open_access,
                "responses": {
                    "200": _json(ref("Readiness"), "ready"),
                    "503": _json(ref("Readiness"), "not ready, with the failing checks"),
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
        "/asyncapi.json": {
            "get": {
                "operationId": "asyncapi",
                "summary": "The AsyncAPI 3 document of the Kafka interface: the request events "
                "on the exports topic, the result events on export-events, the DLQ",
                "security": open_access,
                "responses": {"200": _json({"type": "object"}, "the AsyncAPI 3.0 document")},
            }
        },
    }


def _schemas() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    schemas["ExportRecord"] = export_record_schema(schemas)
    schemas["CreateExportRequest"] = {
        "oneOf": export_type_alternatives(SPECS, schemas, closed=True)
    }
    schemas["CcpaRequest"] = ccpa_request_schema(schemas)
    schemas["ExportType"] = {"type": "string", "enum": [spec.name for spec in SPECS]}
    schemas["ExportWithDownloads"] = {
        "allOf": [
            ref("ExportRecord"),
            model_schema(ExportDownloads, schemas, mode="serialization", by_alias=True),
        ]
    }
    answers: tuple[tuple[str, type[BaseModel]], ...] = (
        ("Error", ErrorBody),
        ("DownloadUrl", DownloadUrl),
        ("ExportPage", ExportPage),
        ("CcpaPage", CcpaPage),
        ("Identity", Identity),
        ("Heartbeat", Heartbeat),
        ("Readiness", Readiness),
    )
    for name, model in answers:
        schemas[name] = model_schema(model, schemas, mode="serialization", by_alias=True)
    return schemas


def _components() -> Schema:
    schemas = _schemas()
    parameters = _parameters(schemas)
    responses = _responses()
    paths = _paths()
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
        # What a model nests but no answer shows (a record's run bookkeeping) is left out.
        "schemas": referenced_only(schemas, paths, parameters, responses),
        "parameters": parameters,
        "responses": responses,
    }


@cache
def _document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "export-service",
            "version": service_version(),
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
