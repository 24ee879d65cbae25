"""The aiohttp middleware every answer passes: the error shape for any path, security headers."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.trace import SpanKind, StatusCode

from core import tracing
from core.app import ExportApp
from core.errors import ExportServiceError, MethodNotAllowed, NotFound, PayloadTooLarge
from core.metrics import ServiceMetrics
from web.responses import add_security_headers, error_from, error_response

logger = logging.getLogger(__name__)

_INSTALLED_KEY = web.AppKey("export_service_middleware", bool)


def _from_http_exception(exc: web.HTTPException, request: web.Request, limit: int) -> web.Response:
    """aiohttp's own refusals (router, body limit) in the spec's error shape."""
    if isinstance(exc, web.HTTPNotFound):
        return error_from(NotFound(f"no resource at {request.path[:200]}"))
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return error_from(
            MethodNotAllowed(method=request.method, allowed=sorted(exc.allowed_methods))
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_from(PayloadTooLarge(limit=limit))
    code = (exc.reason or "HTTP error").upper().replace(" ", "_").replace("-", "_")
    return error_response(code, exc.reason or "HTTP error", status=exc.status)


def route_pattern(request: web.Request) -> str | None:
    """The matched route's pattern (`/campaigns/{campaign_id}/exports`), never the raw path;
    None when no route matched (404, 405)."""
    resource = getattr(request.match_info.route, "resource", None)
    return None if resource is None else str(resource.canonical)


def api_middleware(max_body_bytes: int, metrics: ServiceMetrics) -> Any:
    """The middleware: 413 before reading an announced oversized body; no plain-text answers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        route = route_pattern(request)
        # A caller's W3C `traceparent` makes this request a step of the caller's trace.
        with tracing.span(
            f"{request.method} {route or 'unmatched'}",
            parent=tracing.context_from_headers(request.headers.items()),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route},
        ) as span:
            try:
                response = await _answer(request, handler)
                status = response.status
                return response
            except web.HTTPException as exc:  # redirects and the like, re-raised as they are
                status = exc.status
                raise
            finally:
                seconds = time.perf_counter() - started
                metrics.record_http_request(route, request.method, status, seconds)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)

    async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.content_length is not None and request.content_length > max_body_bytes:
                raise PayloadTooLarge(limit=max_body_bytes)
            response = await handler(request)
        except ExportServiceError as exc:
            response = error_from(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _from_http_exception(exc, request, max_body_bytes)
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response("INTERNAL_ERROR", "internal server error", status=500)
        add_security_headers(response)
        return response

    return middleware


def install(app: ExportApp) -> None:
    """Add the middleware to the app's aiohttp Application once, before the server starts."""
    web_app: web.Application = cast(Any, app.web).web_app  # the aiohttp driver's Application
    if web_app.get(_INSTALLED_KEY):
        return
    middleware = api_middleware(app.settings.max_request_body_bytes, app.service_metrics)
    web_app.middlewares.append(middleware)
    web_app[_INSTALLED_KEY] = True
