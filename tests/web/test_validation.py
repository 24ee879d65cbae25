"""Client input never causes a 500: bodies, ids, queries, cursors, sizes, paths and methods."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from core.app import ExportApp
from core.errors import InvalidRequest
from core.models import ExportRecord, new_export_id
from tests.fakes import seed
from tests.web.test_exports_views import assert_error
from topics.status import StatusStore
from web.requests import decode_cursor, encode_cursor

LIST = "/campaigns/c1/exports"


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "INVALID_REQUEST"),
        (b"null", "INVALID_REQUEST"),
        (b'"entries"', "INVALID_REQUEST"),
        (b"\xff\xfe{}", "INVALID_REQUEST"),
        (b"[" * 2000 + b"]" * 2000, "INVALID_REQUEST"),
        (b"{}", "INVALID_REQUEST"),
        (b'{"exportType": null}', "INVALID_REQUEST"),
        (b'{"exportType": ["codes"]}', "INVALID_REQUEST"),
        (b'{"exportType": ""}', "INVALID_REQUEST"),
        (b'{"exportType": "codes", "params": []}', "INVALID_REQUEST"),
        (b'{"exportType": "codes", "params": "x"}', "INVALID_REQUEST"),
        (b'{"exportType": "codes", "campaignId": "c2"}', "INVALID_REQUEST"),
        (b'{"exportType": "CODES"}', "UNKNOWN_EXPORT_TYPE"),
        (b'{"exportType": "codeWave"}', "INVALID_PARAMS"),
        (b'{"exportType": "codeWave", "params": {"waveId": 5}}', "INVALID_PARAMS"),
        (b'{"exportType": "codeWave", "params": {"waveId": ""}}', "INVALID_PARAMS"),
        (b'{"exportType": "codeWave", "params": {"waveId": "w", "x": 1}}', "INVALID_PARAMS"),
    ],
)
async def test_invalid_bodies_are_400(client: Any, body: bytes, code: str) -> None:
    response = await client.post(LIST, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert_error(await response.json(), code)


async def test_an_announced_oversized_body_is_413_before_it_is_read(
    client: Any, app: ExportApp
) -> None:
    limit = app.settings.max_request_body_bytes
    body = b'{"exportType": "codes", "params": {"pad": "' + b"x" * limit + b'"}}'
    response = await client.post(LIST, data=body)
    assert response.status == 413
    payload = await response.json()
    assert_error(payload, "PAYLOAD_TOO_LARGE")
    assert payload["error"]["details"] == {"maxBytes": limit}


async def test_a_chunked_oversized_body_is_413(client: Any, app: ExportApp) -> None:
    limit = app.settings.max_request_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"exportType": "codes", "params": {"pad": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}}'

    response = await client.post(LIST, data=chunks())
    assert response.status == 413
    assert_error(await response.json(), "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "path",
    [
        "/campaigns/" + "c" * 129 + "/exports",
        "/campaigns/c%201/exports",
        "/campaigns/c%00/exports",
        "/campaigns/%C3%A9/exports",
        "/campaigns/c1/exports/bad%20id",
        "/campaigns/c1/exports/" + "e" * 129,
    ],
)
async def test_invalid_ids_are_400(client: Any, path: str) -> None:
    response = await client.get(path)
    assert response.status == 400
    assert_error(await response.json(), "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "INVALID_REQUEST"),
        ("limit=201", "INVALID_REQUEST"),
        ("limit=ten", "INVALID_REQUEST"),
        ("limit=1.5", "INVALID_REQUEST"),
        ("limit=", "INVALID_REQUEST"),
        ("status=DONE", "INVALID_REQUEST"),
        ("status=finished", "INVALID_REQUEST"),
        ("exportType=nope", "UNKNOWN_EXPORT_TYPE"),
        ("sort=createdAt", "INVALID_REQUEST"),
        ("export_type=codes", "INVALID_REQUEST"),
        ("limit=1&limit=2", "INVALID_REQUEST"),
        ("cursor=", "INVALID_REQUEST"),
        ("cursor=!!!", "INVALID_REQUEST"),
        ("cursor=" + "A" * 600, "INVALID_REQUEST"),
        ("cursor=bm90IGpzb24", "INVALID_REQUEST"),  # "not json"
        (f"cursor={cursor_of({'a': 1})}", "INVALID_REQUEST"),
        (f"cursor={cursor_of([1, 2])}", "INVALID_REQUEST"),
        (f"cursor={cursor_of(['yesterday', 'x'])}", "INVALID_REQUEST"),
        (f"cursor={cursor_of(['2026-05-01T00:00:00', 'x'])}", "INVALID_REQUEST"),  # naive
        (f"cursor={cursor_of(['2026-05-01T00:00:00+00:00', 'bad id'])}", "INVALID_REQUEST"),
        (f"cursor={cursor_of(['2026-05-01T00:00:00+00:00', 'x', 'y'])}", "INVALID_REQUEST"),
    ],
)
async def test_invalid_queries_are_400(client: Any, query: str, code: str) -> None:
    response = await client.get(f"{LIST}?{query}")
    assert response.status == 400, await response.text()
    assert_error(await response.json(), code)


async def test_filters_by_a_known_type_and_every_status(client: Any) -> None:
    for status in ("PENDING", "TRIGGERED", "FINISHED", "FAILED", "EXPIRED", "DELETED"):
        response = await client.get(f"{LIST}?status={status}&exportType=codes&limit=200")
        assert response.status == 200


def test_cursor_round_trip_and_tampering() -> None:
    created = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    cursor = encode_cursor(created, "abc")
    assert decode_cursor(cursor) == (created, "abc")
    for bad in (cursor[:-2], cursor + "==", cursor[:5] + "é" + cursor[6:], cursor[::-1]):
        with pytest.raises(InvalidRequest):
            decode_cursor(bad)


async def test_pages_cover_every_export_once_even_with_equal_timestamps(
    client: Any, status_store: StatusStore
) -> None:
    campaign = f"page-{new_export_id()}"
    same = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    ids = sorted(f"{campaign}-{i:02d}" for i in range(7))
    for export_id in ids:
        seed(
            status_store,
            ExportRecord(id=export_id, campaign_id=campaign, export_type="codes", created_at=same),
        )
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/campaigns/{campaign}/exports?{query}")).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


async def test_unknown_paths_are_404_in_the_error_shape(client: Any) -> None:
    for path in ("/nope", "/campaigns", "/campaigns/c1", "/campaigns/c1/exports/e1/extra", "/"):
        response = await client.get(path)
        assert response.status == 404, path
        assert_error(await response.json(), "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", LIST, {"GET", "HEAD", "POST"}),
        ("DELETE", LIST, {"GET", "HEAD", "POST"}),
        ("PATCH", f"{LIST}/e1", {"GET", "HEAD", "DELETE"}),
        ("POST", f"{LIST}/e1", {"GET", "HEAD", "DELETE"}),
        ("DELETE", "/heartbeat", {"GET", "HEAD"}),
        ("POST", "/openapi.json", {"GET", "HEAD"}),
        ("OPTIONS", LIST, {"GET", "HEAD", "POST"}),
    ],
)
async def test_wrong_methods_are_405_with_allow(
    client: Any, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status == 405
    assert_error(await response.json(), "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


async def test_a_bug_in_a_view_is_a_clean_500(
    client: Any, monkeypatch: pytest.MonkeyPatch, status_store: StatusStore
) -> None:
    def broken(campaign_id: str, **filters: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(status_store, "page", broken)
    response = await client.get(LIST)
    assert response.status == 500
    body = await response.json()
    assert_error(body, "INTERNAL_ERROR")
    assert "boom" not in str(body)
