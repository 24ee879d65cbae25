"""GET /me: the caller as its token says, for the CLI and the console."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Mint, bearer


async def test_me_lists_the_campaigns_the_token_may_report_on(client: Any, mint: Mint) -> None:
    token = mint(sub="ana", permissions={"c2": ["REPORT"], "c1": ["REPORT"], "c3": ["VIEW"]})
    response = await client.get("/me", headers=bearer(token))
    assert response.status == 200
    assert await response.json() == {"sub": "ana", "supreme": False, "campaigns": ["c1", "c2"]}


async def test_me_needs_a_valid_token(anon_client: Any) -> None:
    response = await anon_client.get("/me")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "UNAUTHENTICATED"
