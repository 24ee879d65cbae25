"""The OpenAPI document matches the routes, the catalogue and the answers."""

from __future__ import annotations

import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from core.app import ExportApp
from core.models import ExportRecord, Status, StoredObject, new_export_id
from exporters.registry import SPECS
from tests.fakes import seed
from topics.status import StatusStore
from web.console import PREFIX as CONSOLE
from web.context import web_app_of
from web.openapi import document

METHODS = {"get", "post", "put", "patch", "delete"}


def _normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def registered_routes(app: ExportApp) -> set[tuple[str, str]]:
    """(METHOD, path) of every API route of the app's aiohttp router; HEAD comes with GET.

    The admin console's pages (/console, /console/...) are served by the worker but are not
    API: the OpenAPI document leaves them out (tests/web/test_console.py covers them)."""
    router: Any = web_app_of(app).router
    return {
        (route.method, _normalised(route.resource.canonical))
        for route in router.routes()
        if route.method not in {"HEAD", "OPTIONS"} and not _is_console(route.resource.canonical)
    }


def _is_console(path: str) -> bool:
    return path == CONSOLE or path.startswith(f"{CONSOLE}/")


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), _normalised(path))
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


def validator(name: str) -> Any:
    doc = document()
    return jsonschema.Draft202012Validator(
        {**doc, "$ref": f"#/components/schemas/{name}"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_every_route_is_documented_and_every_documented_route_exists(app: ExportApp) -> None:
    registered = registered_routes(app)
    assert ("POST", "/campaigns/{}/exports") in registered
    assert registered == documented_routes()


def test_the_document_is_openapi_3_1_with_bearer_jwt() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert doc["security"] == [{"bearerAuth": []}]
    for path in ("/heartbeat", "/ready", "/openapi.json", "/asyncapi.json"):
        assert doc["paths"][path]["get"]["security"] == []
    jsonschema.Draft202012Validator.check_schema(doc["components"]["schemas"]["ExportRecord"])


def test_every_export_type_is_documented_with_its_params() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["ExportType"]["enum"] == [spec.name for spec in SPECS]
    alternatives = schemas["CreateExportRequest"]["oneOf"]
    assert [a["properties"]["exportType"]["const"] for a in alternatives] == [
        spec.name for spec in SPECS
    ]
    check = validator("CreateExportRequest")
    assert check.is_valid({"exportType": "codes"})
    assert check.is_valid({"exportType": "codeWave", "params": {"waveId": "w1"}})
    assert not check.is_valid({"exportType": "codeWave"})
    assert not check.is_valid({"exportType": "codes", "params": {"x": 1}})
    assert not check.is_valid({"exportType": "nope"})
    assert not check.is_valid({"exportType": "codes", "extra": 1})


def test_every_operation_documents_its_error_answers() -> None:
    doc = document()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation["responses"]
            if not operation.get("security", doc["security"]):
                continue
            # GET /me takes no input and may see any token: only 401 and 503 apply.
            expected = (
                {"401", "503"}
                if operation["operationId"] == "whoAmI"
                else {"400", "401", "403", "503"}
            )
            assert expected <= set(responses), (method, path)


async def test_answers_match_their_schemas(
    client: Any, anon_client: Any, status_store: StatusStore
) -> None:
    finished = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="codes",
        status=Status.FINISHED,
        bucket="exports",
        objects=(StoredObject(key="codes/c1/x/a.csv", size=3, sha256="00"),),
    )
    seed(status_store, finished)
    one = await (await client.get(f"/campaigns/c1/exports/{finished.id}")).json()
    validator("ExportWithDownloads").validate(one)
    page = await (await client.get("/campaigns/c1/exports?limit=2")).json()
    validator("ExportPage").validate(page)
    assert page["items"]
    for item in page["items"]:
        validator("ExportRecord").validate(item)
    validator("Identity").validate(await (await client.get("/me")).json())
    validator("Heartbeat").validate(await (await client.get("/heartbeat")).json())
    validator("Readiness").validate(await (await client.get("/ready")).json())
    for response in (
        await anon_client.get("/campaigns/c1/exports"),
        await client.get("/campaigns/c1/exports?limit=0"),
        await client.get("/nope"),
    ):
        validator("Error").validate(await response.json())


async def test_the_document_is_served(anon_client: Any) -> None:
    response = await anon_client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == document()


@pytest.mark.parametrize("name", ["ExportRecord", "ExportPage", "Error", "CreateExportRequest"])
def test_component_schemas_are_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(document()["components"]["schemas"][name])


def test_ids_and_cursors_are_documented_as_the_code_checks_them() -> None:
    """One definition (core/ids.py, web/requests.py) for the check and the schema."""
    from core.ids import ID_PATTERN
    from web.requests import CURSOR_PATTERN

    parameters = document()["components"]["parameters"]
    for name in ("CampaignId", "ExportId", "UserId", "RequestId"):
        assert parameters[name]["schema"]["pattern"] == ID_PATTERN
    assert parameters["Cursor"]["schema"]["pattern"] == CURSOR_PATTERN
    assert parameters["Limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
