"""JSON responses and the spec's error shape for every view."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust
import orjson
from aiohttp import web
from pydantic import BaseModel

from core.errors import ExportServiceError
from web.bodies import ErrorBody, ErrorDetail

logger = logging.getLogger(__name__)

JSON = "application/json"

# Every answer is JSON (or Prometheus text) for machines: nothing may be framed, sniffed,
# cached by intermediaries, or run as a document.
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """`body` as JSON; a model (web/bodies.py) is written by its aliases."""
    if isinstance(body, BaseModel):
        body = body.model_dump(by_alias=True)
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def error_response(
    code: str,
    message: str,
    *,
    status: int,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """`{"error": {"code", "message", "details"}}` (SPEC §5)."""
    return json_response(
        ErrorBody(error=ErrorDetail(code=code, message=message, details=details or {})),
        status=status,
        headers=headers,
    )


def error_from(exc: ExportServiceError) -> web.Response:
    """The error shape of a typed error, with the headers it carries (WWW-Authenticate, Allow)."""
    return error_response(
        exc.code,
        exc.message,
        status=exc.http_status,
        details=exc.details,
        headers=getattr(exc, "headers", None),
    )


def add_security_headers(response: web.StreamResponse) -> None:
    """SECURITY_HEADERS on a response not yet sent; a view's own values are kept."""
    if response.prepared:
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


class ApiView(faust.web.View):
    """A view whose typed errors become the error shape and whose bugs become a clean 500."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except ExportServiceError as exc:
            return error_from(exc)
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            return error_response("INTERNAL_ERROR", "internal server error", status=500)
