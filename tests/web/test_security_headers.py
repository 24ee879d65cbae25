"""Security headers on every answer, CORS off."""

from __future__ import annotations

from typing import Any

import pytest

from web.responses import SECURITY_HEADERS

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def test_the_content_security_policy_allows_nothing() -> None:
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize(
    ("method", "path", "status", "authorised"),
    [
        ("GET", "/heartbeat", 200, False),
        ("GET", "/ready", 200, False),
        ("GET", "/openapi.json", 200, False),
        ("GET", "/asyncapi.json", 200, False),
        ("GET", "/campaigns/c1/exports", 200, True),
        ("GET", "/campaigns/c1/exports", 401, False),
        ("GET", "/campaigns/c1/exports/nope", 404, True),
        ("POST", "/campaigns/c1/exports", 400, True),
        ("GET", "/no/such/path", 404, False),
        ("PUT", "/heartbeat", 405, False),
    ],
)
async def test_every_answer_has_the_security_headers(
    client: Any, anon_client: Any, method: str, path: str, status: int, authorised: bool
) -> None:
    response = await (client if authorised else anon_client).request(method, path)
    assert response.status == status
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"] == policy
    assert response.headers["Content-Type"].startswith("application/json")


async def test_cors_is_off(client: Any) -> None:
    origin = {"Origin": "https://evil.example"}
    response = await client.get("/campaigns/c1/exports", headers=origin)
    assert response.status == 200
    assert not any(h.lower().startswith("access-control-") for h in response.headers)
    preflight = await client.options(
        "/campaigns/c1/exports",
        headers=origin | {"Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 405
    assert not any(h.lower().startswith("access-control-") for h in preflight.headers)
