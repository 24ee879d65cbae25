"""Liveness (/heartbeat) and readiness (/ready) endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp import web

from web.bodies import Heartbeat as HeartbeatBody
from web.bodies import Readiness
from web.context import WebContext, context_of
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("health")

_CHECK_TIMEOUT_SECONDS = 2.0


def _partition_check(context: WebContext) -> str | None:
    """None when this worker is assigned a partition of the exports topic (it runs exports)."""
    topic = context.app.settings.topic_exports
    try:
        held = context.broker.holds_partition_of(topic)
    except Exception as exc:  # consumer not started yet
        return f"consumer not started: {type(exc).__name__}"
    if held:
        return None
    return f"no partition of {topic} assigned (starting, rebalancing or standby)"


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
        return json_response(HeartbeatBody())


@blueprint.route("/ready", name="ready")
class Ready(ApiView):
    """The worker can serve the API and run exports: broker connected, exports partition
    assigned, table recovered, MongoDB and S3 reachable."""

    async def get(self, request: web.Request) -> web.Response:
        context = context_of(request)
        app = context.app
        checks: dict[str, str | None] = {
            "statusTable": None if app.table_ready() else "recovering or rebalancing",
            "exportsPartition": _partition_check(context),
        }
        probes = [_check("kafka", context.broker.ping())]
        try:
            deps = app.deps
        except RuntimeError as exc:
            checks["dependencies"] = str(exc)
        else:
            probes.append(_check("mongodb", deps.source.ping()))
            probes.append(_check("s3", deps.store.ping(app.settings.s3_bucket_exports)))
        checks.update(await asyncio.gather(*probes))
        ready = all(v is None for v in checks.values())
        body = Readiness(
            status="ready" if ready else "not ready",
            checks={k: ("ok" if v is None else v) for k, v in checks.items()},
        )
        return json_response(body, status=200 if ready else 503)
