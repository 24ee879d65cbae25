"""What the views of one app share, built by the composition root and kept on that app's
aiohttp Application, where every request reaches it (`context_of(request)`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from yarl import URL

from core.app import ExportApp
from core.deps import Broker, Clock
from topics.definitions import SinglePartitionTable
from topics.status import StatusStore

if TYPE_CHECKING:
    from web.auth import Authenticators


@dataclass
class WebContext:
    """One app's status store and table, broker, clock and authenticators; and when its
    broker last answered a probe (monotonic seconds), so that views probe at most once a
    second."""

    app: ExportApp
    status_store: StatusStore
    status_table: SinglePartitionTable
    broker: Broker
    clock: Clock
    authenticators: Authenticators
    table_owner: Callable[[], URL | None]
    """The canonical URL of the worker that owns the status table (web/routing.py)."""
    broker_seen_at: float = float("-inf")


CONTEXT = web.AppKey("export_service_context", WebContext)


def web_app_of(app: ExportApp) -> web.Application:
    """The aiohttp Application of the app's web server (Faust's aiohttp driver)."""
    return cast(web.Application, cast(Any, app.web).web_app)


def attach(context: WebContext) -> None:
    """Keep `context` where the requests of its app find it; before the server starts."""
    web_app_of(context.app)[CONTEXT] = context


def context_of(request: web.Request) -> WebContext:
    return request.app[CONTEXT]
