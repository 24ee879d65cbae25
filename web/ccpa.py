"""CCPA endpoints: request the deletion of a user's exports, and read a request's outcome."""

from __future__ import annotations

import logging

import faust
from aiohttp import web

from core import tracing
from core.errors import ExportServiceError, NotReady
from core.events import ccpa_requested_bytes
from core.models import CcpaRequest, new_export_id
from web.auth import Principal, require_supreme
from web.bodies import CcpaPage
from web.context import context_of
from web.publish import publish_request, require_broker
from web.requests import decode_cursor, encode_cursor, parse_ccpa_list_query, validated_id
from web.responses import ApiView, json_response
from web.routing import served_by_table_owner

logger = logging.getLogger(__name__)

blueprint = faust.web.Blueprint("ccpa")


class CcpaRequestNotFound(ExportServiceError):
    code, http_status = "CCPA_REQUEST_NOT_FOUND", 404

    def __init__(self, *, request_id: str) -> None:
        super().__init__(f"CCPA request {request_id} not found", details={"requestId": request_id})


def _authorised(request: web.Request, value: str, *, name: str) -> Principal:
    """401 without a valid token, 403 unless supreme, 400 for a bad id, 503 until recovered."""
    principal = require_supreme(request)
    validated_id(value, name=name)
    if not context_of(request).app.table_ready():
        raise NotReady("the export status table is still being recovered; retry shortly")
    return principal


@blueprint.route("/ccpa/users/{user_id}", name="ccpa-user")
class CcpaUser(ApiView):
    async def delete(self, request: web.Request, user_id: str) -> web.Response:
        principal = _authorised(request, user_id, name="userId")
        context = context_of(request)
        status_store = context.status_store
        ccpa = CcpaRequest(
            request_id=new_export_id(),
            user_id=user_id,
            source="rest",
            requested_by=principal.sub,
            created_at=context.clock(),
            **tracing.record_ids(),
        )
        await require_broker(request)
        # Visible (PENDING) at once; the intake finds it recorded when the event comes back.
        status_store.put_ccpa(ccpa)
        await publish_request(
            request,
            ccpa.request_id,
            ccpa_requested_bytes(ccpa),
            forget=lambda: status_store.remove_ccpa(ccpa.request_id),
        )
        return json_response(ccpa.to_public(), status=202)


@blueprint.route("/ccpa/requests", name="ccpa-requests")
class CcpaRequests(ApiView):
    @served_by_table_owner
    async def get(self, request: web.Request) -> web.StreamResponse:
        """Every CCPA deletion request, newest first (supreme only)."""
        require_supreme(request)
        context = context_of(request)
        if not context.app.table_ready():
            raise NotReady("the export status table is still being recovered; retry shortly")
        query = parse_ccpa_list_query(request.query)
        page = context.status_store.ccpa_page(
            status=query.status,
            before=None if query.cursor is None else decode_cursor(query.cursor),
            limit=query.limit,
        )
        last = page.items[-1] if page.items else None
        next_cursor = (
            encode_cursor(last.created_at, last.request_id)
            if page.more and last is not None
            else None
        )
        return json_response(CcpaPage(items=list(page.items), next=next_cursor))


@blueprint.route("/ccpa/requests/{request_id}", name="ccpa-request")
class CcpaRequestView(ApiView):
    @served_by_table_owner
    async def get(self, request: web.Request, request_id: str) -> web.StreamResponse:
        _authorised(request, request_id, name="requestId")
        found = context_of(request).status_store.get_ccpa(request_id)
        if found is None:
            raise CcpaRequestNotFound(request_id=request_id)
        return json_response(found.to_public())
