"""CCPA views: supreme only, the request's status and summary."""

from __future__ import annotations

from typing import Any

from core.models import CcpaRequest, CcpaStatus, CcpaSummary, new_export_id
from tests.fakes import seed
from tests.web.conftest import Mint, bearer
from topics.definitions import status_store
from web.openapi import document


async def test_ccpa_needs_a_supreme_token(client: Any, anon_client: Any, mint: Mint) -> None:
    reporter = bearer(mint(permissions={"c1": ["REPORT"]}))
    for method, path in (("DELETE", "/ccpa/users/u1"), ("GET", "/ccpa/requests/r1")):
        response = await client.request(method, path, headers=reporter)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "FORBIDDEN"
        assert (await anon_client.request(method, path)).status == 401


async def test_a_request_shows_its_status_and_summary(client: Any) -> None:
    request = CcpaRequest(
        request_id=new_export_id(),
        user_id="u1",
        status=CcpaStatus.COMPLETED,
        summary=CcpaSummary(campaign_ids=("c1",)),
    )
    seed(status_store, request)
    response = await client.get(f"/ccpa/requests/{request.request_id}")
    assert response.status == 200
    body = await response.json()
    assert body == request.to_public()
    assert body["summary"]["campaignIds"] == ["c1"]
    assert "attempts" not in body
    assert set(document()["components"]["schemas"]["CcpaRequest"]["required"]) == set(body)


async def test_unknown_request_is_404_and_bad_ids_400(client: Any) -> None:
    response = await client.get(f"/ccpa/requests/{new_export_id()}")
    assert (response.status, (await response.json())["error"]["code"]) == (
        404,
        "CCPA_REQUEST_NOT_FOUND",
    )
    assert (await client.delete("/ccpa/users/bad%20id")).status == 400
