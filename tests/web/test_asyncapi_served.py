"""GET /asyncapi.json: open, JSON, the document core/asyncapi.py builds for the registry."""

from __future__ import annotations

from typing import Any

from core.asyncapi import build_document
from exporters.registry import SPECS
from web.asyncapi import document


async def test_the_asyncapi_document_is_served_without_a_token(anon_client: Any) -> None:
    response = await anon_client.get("/asyncapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    served = await response.json()
    assert served == document() == build_document(SPECS)
    assert served["asyncapi"] == "3.0.0"
    # the request event names exactly the registered export types
    alternatives = served["components"]["schemas"]["ExportRequested"]["oneOf"]
    assert [a["properties"]["exportType"]["const"] for a in alternatives] == [
        spec.name for spec in SPECS
    ]
