"""GET /asyncapi.json: the AsyncAPI 3 document of the Kafka interface (core/asyncapi.py)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import faust
from aiohttp import web

from core.asyncapi import build_document
from exporters.registry import SPECS
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("asyncapi")


@cache
def _document() -> dict[str, Any]:
    return build_document(SPECS)


def document() -> dict[str, Any]:
    """The AsyncAPI document with the registered export types (a fresh copy)."""
    return copy.deepcopy(_document())


@blueprint.route("/asyncapi.json", name="asyncapi")
class AsyncApiDocument(ApiView):
    """Open, like /openapi.json: it describes the interface, not its data."""

    async def get(self, request: web.Request) -> web.Response:
        return json_response(_document())
