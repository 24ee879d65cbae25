"""JSON responses and the spec's error shape for every view."""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
from aiohttp import web

from core.errors import ExportServiceError

logger = logging.getLogger(__name__)

JSON = "application/json"


def json_response(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def error_response(
    code: str, message: str, *, status: int, details: dict[str, Any] | None = None
) -> web.Response:
    """`{"error": {"code", "message", "details"}}` (SPEC §5)."""
    return json_response(
        {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


class ApiView(faust.web.View):
    """A view whose typed errors become the error shape and whose bugs become a clean 500."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except ExportServiceError as exc:
            return error_response(
                exc.code, exc.message, status=exc.http_status, details=exc.details
            )
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            return error_response("INTERNAL_ERROR", "internal server error", status=500)
