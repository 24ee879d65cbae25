"""GET /metrics: the Prometheus text exposition of the app's metrics registry (open, no auth).

Gauges read from the status table (exports by status, queue depth) and the consumer lag of
the exports topic are recomputed on every scrape.
"""

from __future__ import annotations

import faust
from aiohttp import web

from core.metrics import CONTENT_TYPE_LATEST, consumer_lag
from web.context import WebContext, context_of
from web.responses import ApiView

blueprint = faust.web.Blueprint("metrics")


def refresh(context: WebContext) -> None:
    """Scrape-time values: statuses from the table, lag from the consumer."""
    app = context.app
    metrics = app.service_metrics
    metrics.set_status_counts(context.status_store.status_counts())
    metrics.set_consumer_lag(consumer_lag(app.consumer, app.settings.topic_exports))


@blueprint.route("/metrics", name="metrics")
class Metrics(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        context = context_of(request)
        refresh(context)
        response = web.Response(body=context.app.service_metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
