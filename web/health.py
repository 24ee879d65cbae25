"""Liveness (/heartbeat) and readiness (/ready) endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp import web

from core.app import app
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("health")

_CHECK_TIMEOUT_SECONDS = 2.0


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            await probe
    except Exception as exc:  # each failing check is reported, none breaks the endpoint
        return name, f"{type(exc).__name__}: {exc}"[:300]
    return name, None


@blueprint.route("/heartbeat", name="heartbeat")
class Heartbeat(ApiView):
    """The process and its event loop answer."""

    async def get(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})


@blueprint.route("/ready", name="ready")
class Ready(ApiView):
    """The worker can serve the API and run exports: table recovered, MongoDB and S3 reachable."""

    async def get(self, request: web.Request) -> web.Response:
        checks: dict[str, str | None] = {
            "statusTable": None if app.table_ready() else "recovering or rebalancing",
        }
        try:
            deps = app.deps
        except RuntimeError as exc:
            checks["dependencies"] = str(exc)
        else:
            results = await asyncio.gather(
                _check("mongodb", deps.source.ping()),
                _check("s3", deps.store.ping(app.settings.s3_bucket_exports)),
            )
            checks.update(results)
        ready = all(v is None for v in checks.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {k: ("ok" if v is None else v) for k, v in checks.items()},
        }
        return json_response(body, status=200 if ready else 503)


blueprint.register(app, url_prefix="")
