"""Export endpoints: request an export, read one (with download URLs), list a campaign's."""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiohttp import web

from core import tracing
from core.errors import ExportNotFound, ExportRetired, ExportServiceError, NotReady
from core.events import export_requested_bytes
from core.metrics import RequestOutcome
from core.models import ExportRecord, Status, new_export_id
from exporters.registry import BY_NAME, get_spec
from exporters.runner import check_request
from topics.status import StatusStore
from web.auth import Principal, authenticate, require_report
from web.bodies import DownloadUrl, ExportDownloads, ExportPage
from web.context import WebContext, context_of
from web.publish import publish_request, require_broker
from web.requests import (
    check_params,
    decode_cursor,
    encode_cursor,
    parse_create_body,
    parse_list_query,
    read_json,
    validated_id,
)
from web.responses import ApiView, json_response
from web.routing import served_by_table_owner

logger = logging.getLogger(__name__)

blueprint = faust.web.Blueprint("exports")

_EXPORT_TYPE = web.RequestKey("export_type", str)


def _authorised(request: web.Request, campaign_id: str) -> Principal:
    """401 without a valid token, 400 for a bad id, 403 without REPORT, 503 until recovered."""
    principal = authenticate(request)
    validated_id(campaign_id, name="campaignId")
    require_report(principal, campaign_id)
    if not context_of(request).app.table_ready():
        raise NotReady("the export status table is still being recovered; retry shortly")
    return principal


async def _with_download_urls(context: WebContext, record: ExportRecord) -> dict[str, Any]:
    app = context.app
    body = record.to_public()
    if record.status == Status.FINISHED and record.bucket:
        expiry = app.settings.presign_expiry_seconds
        urls = [
            DownloadUrl(
                key=obj.key,
                url=await app.deps.store.presign_get(record.bucket, obj.key, expires_in=expiry),
            )
            for obj in record.objects
        ]
        body.update(ExportDownloads(download_urls=urls).model_dump(by_alias=True))
    return body


@blueprint.route("/campaigns/{campaign_id}/exports", name="campaign-exports")
class CampaignExports(ApiView):
    async def post(self, request: web.Request, campaign_id: str) -> web.Response:
        """_create, counted in export_requests_total (refusals of authenticated callers)."""
        metrics = context_of(request).app.service_metrics
        try:
            response = await self._create(request, campaign_id)
        except ExportServiceError as exc:
            if exc.http_status not in {401, 403}:
                metrics.record_export_request(request.get(_EXPORT_TYPE), "rejected")
            raise
        outcome: RequestOutcome = "accepted" if response.status == 202 else "duplicate"
        metrics.record_export_request(request.get(_EXPORT_TYPE), outcome)
        return response

    async def _create(self, request: web.Request, campaign_id: str) -> web.Response:
        context = context_of(request)
        status_store = context.status_store
        principal = _authorised(request, campaign_id)
        body = parse_create_body(await read_json(request))
        request[_EXPORT_TYPE] = body.export_type
        spec = get_spec(body.export_type)
        check_params(spec.params, body.params, export_type=spec.name)
        record = ExportRecord(
            id=new_export_id(),
            campaign_id=campaign_id,
            export_type=spec.name,
            params=body.params,
            source="rest",
            requested_by=principal.sub,
            created_at=context.clock(),
            **tracing.record_ids(),
        )
        if status_store.find_duplicate(record) is not None:
            # Answered from the table alone (no await before the alias is written): the
            # export it repeats had its campaign checked when it was requested.
            accepted, _ = status_store.accept(record)
            return json_response(accepted.to_public(), status=200)
        # Unknown campaign (404), bad params (400) and no markets (422) fail here, not later.
        await check_request(
            spec, context.app.deps.for_requests, campaign_id=campaign_id, params=body.params
        )
        await require_broker(request)
        # No await between the duplicate check and the write: concurrent requests
        # in this worker cannot both create the same export.
        accepted, created = status_store.accept(record, held=True)
        if not created:
            return json_response(accepted.to_public(), status=200)
        # The runner starts it once the broker has the event: its start would compete with
        # this request for the loop and the CPU, and a failed send forgets the record.
        try:
            await publish_request(
                request,
                record.id,
                export_requested_bytes(record),
                forget=lambda: status_store.remove(record.id),
            )
        finally:
            status_store.release(record.id)
        return json_response(record.to_public(), status=202)

    @served_by_table_owner
    async def get(self, request: web.Request, campaign_id: str) -> web.StreamResponse:
        _authorised(request, campaign_id)
        query = parse_list_query(request.query, export_types=BY_NAME.keys())
        page = context_of(request).status_store.page(
            campaign_id,
            status=query.status,
            export_type=query.export_type,
            before=None if query.cursor is None else decode_cursor(query.cursor),
            limit=query.limit,
        )
        last = page.items[-1] if page.items else None
        next_cursor = (
            encode_cursor(last.created_at, last.id) if page.more and last is not None else None
        )
        return json_response(ExportPage(items=list(page.items), next=next_cursor))


@blueprint.route("/campaigns/{campaign_id}/exports/{export_id}", name="campaign-export")
class CampaignExport(ApiView):
    @served_by_table_owner
    async def get(
        self, request: web.Request, campaign_id: str, export_id: str
    ) -> web.StreamResponse:
        _authorised(request, campaign_id)
        validated_id(export_id, name="exportId")
        context = context_of(request)
        record = _found(context.status_store, campaign_id, export_id)
        return json_response(await _with_download_urls(context, record))

    async def delete(self, request: web.Request, campaign_id: str, export_id: str) -> web.Response:
        """Cancel a PENDING or TRIGGERED export: 202 with the CANCELLED record (SPEC §5), 409
        when it has already ended (with its status), 404 when it is not there."""
        principal = _authorised(request, campaign_id)
        validated_id(export_id, name="exportId")
        context = context_of(request)
        record = _found(context.status_store, campaign_id, export_id)
        cancelled = await context.app.cancel_export(campaign_id, record.id, principal.sub)
        return json_response(cancelled.to_public(), status=202)


def _found(status_store: StatusStore, campaign_id: str, export_id: str) -> ExportRecord:
    """The campaign's export; 404 EXPORT_RETIRED for one retention removed, else
    EXPORT_NOT_FOUND."""
    record = status_store.get(export_id)
    if record is not None and record.campaign_id == campaign_id:
        return record
    retired = status_store.retired(export_id) if record is None else None
    if retired is not None and retired.campaign_id == campaign_id:
        raise ExportRetired(
            campaign_id=campaign_id, export_id=export_id, retired_at=retired.retired_at.isoformat()
        )
    raise ExportNotFound(campaign_id=campaign_id, export_id=export_id)
