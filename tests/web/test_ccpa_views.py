"""CCPA views: supreme only, the request's status and summary."""

from __future__ import annotations

from typing import Any

from core.models import CcpaRequest, CcpaStatus, CcpaSummary, new_export_id
from tests.fakes import seed
from tests.web.conftest import Mint, bearer
from topics.status import StatusStore
from web.openapi import document


async def test_ccpa_needs_a_supreme_token(client: Any, anon_client: Any, mint: Mint) -> None:
    reporter = bearer(mint(permissions={"c1": ["REPORT"]}))
    for method, path in (("DELETE", "/ccpa/users/u1"), ("GET", "/ccpa/requests/r1")):
        response = await client.request(method, path, headers=reporter)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "FORBIDDEN"
        assert (await anon_client.request(method, path)).status == 401


async def test_a_request_shows_its_status_and_summary(
    client: Any, status_store: StatusStore
) -> None:
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


async def test_the_requests_are_listed_newest_first_in_pages(
    client: Any, mint: Mint, status_store: StatusStore
) -> None:
    import datetime as dt

    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    requests = [
        CcpaRequest(
            request_id=f"list-{i:02d}",
            user_id=f"u{i}",
            status=CcpaStatus.COMPLETED if i % 2 else CcpaStatus.PENDING,
            created_at=base + dt.timedelta(minutes=i),
        )
        for i in range(5)
    ]
    seed(status_store, *requests)
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + ("" if cursor is None else f"&cursor={cursor}")
        body = await (await client.get(f"/ccpa/requests?{query}")).json()
        seen += [
            item["requestId"]
            for item in body["items"]
            if item["requestId"] in {r.request_id for r in requests}
        ]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [f"list-{i:02d}" for i in (4, 3, 2, 1, 0)]
    completed = await (await client.get("/ccpa/requests?status=COMPLETED&limit=200")).json()
    ours = [i["requestId"] for i in completed["items"] if i["requestId"].startswith("list-")]
    assert ours == ["list-03", "list-01"]
    assert all(i["status"] == "COMPLETED" for i in completed["items"])

    reporter = bearer(mint(permissions={"c1": ["REPORT"]}))
    assert (await client.get("/ccpa/requests", headers=reporter)).status == 403
    bad = await client.get("/ccpa/requests?status=DONE")
    assert (bad.status, (await bad.json())["error"]["code"]) == (400, "INVALID_REQUEST")
