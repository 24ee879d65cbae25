"""Table reads on a worker that does not own the status table go to the owner (web/routing)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from core.app import ExportApp
from core.settings import Settings
from web import routing
from web.context import WebContext

EXPORT_PATH = "/campaigns/cmp-1/exports/exp-1"


@pytest.fixture
async def owner(aiohttp_server: Any) -> Any:
    """A stand-in for the owning worker: answers every GET with what it was sent."""
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(
            {"path": str(request.rel_url), "auth": request.headers.get("Authorization")},
            status=200,
        )

    server_app = web.Application()
    server_app.router.add_get("/{tail:.*}", answer)
    server = await aiohttp_server(server_app)
    server.seen = seen
    return server


async def test_a_read_goes_to_the_owner_with_the_token_and_query(
    client: Any, owner: Any, monkeypatch: pytest.MonkeyPatch, web_context: WebContext
) -> None:
    monkeypatch.setattr(web_context, "table_owner", lambda: URL(str(owner.make_url("/"))))
    resp = await client.get("/campaigns/cmp-1/exports", params={"status": "FINISHED"})
    assert resp.status == 200
    body = await resp.json()
    assert body["path"] == "/campaigns/cmp-1/exports?status=FINISHED"
    assert body["auth"].startswith("Bearer ")
    (sent,) = owner.seen
    assert routing.FORWARDED_HEADER in sent.headers
    assert resp.headers["Cache-Control"] == "no-store"  # this worker's headers still apply


async def test_a_forwarded_read_is_answered_here(
    client: Any, monkeypatch: pytest.MonkeyPatch, web_context: WebContext
) -> None:
    monkeypatch.setattr(web_context, "table_owner", lambda: URL("http://127.0.0.1:9"))
    resp = await client.get(EXPORT_PATH, headers={routing.FORWARDED_HEADER: "x"})
    assert resp.status == 404  # the local table, no second hop


async def test_an_unreachable_owner_is_not_ready(
    client: Any, monkeypatch: pytest.MonkeyPatch, web_context: WebContext
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(web_context, "table_owner", lambda: URL(f"http://127.0.0.1:{port}"))
    resp = await client.get(EXPORT_PATH)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "NOT_READY"


async def test_the_owner_answers_its_own_reads(
    client: Any, monkeypatch: pytest.MonkeyPatch, app: ExportApp, web_context: WebContext
) -> None:
    monkeypatch.setattr(web_context, "table_owner", lambda: URL(str(app.conf.canonical_url)))
    assert (await client.get(EXPORT_PATH)).status == 404


async def test_without_an_assignment_reads_are_answered_here(
    client: Any, web_context: WebContext
) -> None:
    assert web_context.table_owner() is None
    assert (await client.get(EXPORT_PATH)).status == 404


def test_the_canonical_url_is_reachable() -> None:
    assert Settings(web_host="10.0.0.5", web_port=7000).canonical_url() == "http://10.0.0.5:7000"
    assert Settings(web_port=7000).canonical_url(7001) == "http://127.0.0.1:7001"
    wildcard = Settings(web_host="0.0.0.0").canonical_url()
    assert wildcard == f"http://{socket.gethostname()}:6066"
    explicit = Settings(web_canonical_url="http://worker-1.svc:6066/")
    assert explicit.canonical_url(9999) == "http://worker-1.svc:6066"
    assert Settings(web_canonical_url="").web_canonical_url is None
