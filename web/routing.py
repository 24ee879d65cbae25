"""Table reads answered by the worker that owns the status table, from any worker.

Workers of one group (one APP_ID) share the status table's single partition: one worker
owns it (active), the others keep standby copies and refuse reads (503 NOT_READY). A read
on a worker that does not own the partition is forwarded over HTTP to the owner's
canonical URL (WEB_CANONICAL_URL), found in the group's assignment that Faust's partition
assignor shares with every member (`app.router.table_metadata`, as Faust's own
`app.table_route` uses). The owner checks the token and readiness itself; its answer is
passed back as it is. Writes are not forwarded: a POST or DELETE on a worker that does not
own the table answers 503 NOT_READY.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

from core.app import ExportApp
from core.errors import NotReady
from topics.definitions import SinglePartitionTable
from web.context import context_of

logger = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Export-Service-Forwarded-By"
"""Set on forwarded requests: the receiving worker answers itself and never forwards again
(two workers that briefly disagree about the assignment cannot bounce a request)."""

_FORWARDED_REQUEST_HEADERS = ("Authorization", "Accept")
_KEPT_RESPONSE_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After", "Allow")
_FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=8)

V = TypeVar("V")
P = ParamSpec("P")
Handler = Callable[Concatenate[V, web.Request, P], Coroutine[Any, Any, web.StreamResponse]]


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


class TableOwner:
    """Who owns one app's status table, as the group's assignment says."""

    def __init__(self, app: ExportApp, status_table: SinglePartitionTable) -> None:
        self._app = app
        self._table = status_table

    def __call__(self) -> URL | None:
        """The canonical URL of the worker that owns the status table's partition; None when
        no assignment says (not joined yet, rebalancing, or running without a group)."""
        try:
            metadata = self._app.router.table_metadata(self._table.name)
            topic = self._table.changelog_topic.get_topic_name()
        except Exception:  # no assignor or table metadata yet
            return None
        for url, partitions in metadata.items():
            if 0 in partitions.get(topic, ()):
                return URL(url)
        return None


def _elsewhere(request: web.Request) -> URL | None:
    """The owner to forward `request` to, or None to answer here."""
    if FORWARDED_HEADER in request.headers:
        return None
    context = context_of(request)
    owner = context.table_owner()
    if owner is None or _ident(owner) == _ident(URL(str(context.app.conf.canonical_url))):
        return None
    return owner


async def _forward(owner: URL, request: web.Request) -> web.Response:
    app = context_of(request).app
    url = URL(str(owner).rstrip("/") + str(request.rel_url), encoded=True)
    headers = {k: request.headers[k] for k in _FORWARDED_REQUEST_HEADERS if k in request.headers}
    headers[FORWARDED_HEADER] = str(app.conf.canonical_url)
    try:
        async with app.http_client.request(
            request.method, url, headers=headers, timeout=_FORWARD_TIMEOUT, allow_redirects=False
        ) as answer:
            body = await answer.read()
            kept = {k: answer.headers[k] for k in _KEPT_RESPONSE_HEADERS if k in answer.headers}
            return web.Response(body=body, status=answer.status, headers=kept)
    except (TimeoutError, aiohttp.ClientError) as exc:
        logger.warning(
            "forwarding %s %s to %s failed: %r", request.method, request.path, owner, exc
        )
        raise NotReady(
            "the worker that owns the export status table did not answer; retry shortly"
        ) from exc


def served_by_table_owner(handler: Handler[V, P]) -> Handler[V, P]:
    """A view method that reads the status table: forwarded to the owner when that is another
    worker; answered here when this worker owns it or no assignment names an owner."""

    @wraps(handler)
    async def routed(
        view: V, request: web.Request, /, *args: P.args, **kwargs: P.kwargs
    ) -> web.StreamResponse:
        owner = _elsewhere(request)
        if owner is not None:
            return await _forward(owner, request)
        return await handler(view, request, *args, **kwargs)

    return routed
