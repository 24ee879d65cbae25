"""GET /metrics: the Prometheus text exposition of core.metrics.REGISTRY (open, no auth).

Gauges read from the status table (exports by status, queue depth) and the consumer lag of
the exports topic are recomputed on every scrape.
"""

from __future__ import annotations

import faust
from aiohttp import web

from core import metrics
from core.app import app
from exporters.registry import BY_NAME
from topics.definitions import status_store
from web.responses import ApiView

blueprint = faust.web.Blueprint("metrics")

metrics.register_export_types(BY_NAME)


def refresh() -> None:
    """Scrape-time values: statuses from the table, lag from the consumer."""
    metrics.set_status_counts(status_store.status_counts())
    metrics.set_consumer_lag(metrics.consumer_lag(app.consumer, app.settings.topic_exports))


@blueprint.route("/metrics", name="metrics")
class Metrics(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        refresh()
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE_LATEST
        return response


blueprint.register(app, url_prefix="")
