"""The admin console: a few static files (no build step) served under /console/ by the worker.

The page is a client of the same REST API as any other: it holds the caller's token in
sessionStorage and sends it as `Authorization: Bearer`; this module only serves the files.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources

import faust
from aiohttp import web

from core.errors import NotFound
from web.responses import ApiView

blueprint = faust.web.Blueprint("console")

PREFIX = "/console"

# Only the console's own files, and nothing inline: the markup has no <script> or <style>
# body and no on* attribute, so the policy never needs 'unsafe-inline'. connect-src 'self'
# keeps the page talking to this API only; downloads are navigations to presigned URLs.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# The whole allow-list: a name not in it is 404, so no request path reaches the file system.
ASSETS: Mapping[str, str] = {
    "index.html": "text/html",
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


@functools.cache
def _asset_bytes(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def asset_response(name: str) -> web.Response:
    """One console file with its type and the console's CSP; the middleware adds the rest of
    the security headers. Cache-Control stays no-store: the files are a few tens of KB from
    the same worker, and a browser must never run a console.js older than the API it talks to
    (after an upgrade, or a rollback)."""
    if name not in ASSETS:
        raise NotFound(f"no console file {name[:100]!r}", details={"name": name[:100]})
    return web.Response(
        body=_asset_bytes(name),
        content_type=ASSETS[name],
        charset="utf-8",
        headers={"Content-Security-Policy": CONSOLE_CSP},
    )


@blueprint.route(PREFIX, name="console-root")
class ConsoleRoot(ApiView):
    """`/console` -> `/console/`, so that the page's relative asset URLs resolve under it."""

    async def get(self, request: web.Request) -> web.Response:
        # Returned, not raised: the middleware then adds the security headers to it as well.
        # Relative, so that it also holds behind a proxy that mounts the API under a prefix.
        return web.Response(status=308, headers={"Location": "console/"})


@blueprint.route(f"{PREFIX}/", name="console-index")
class ConsoleIndex(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        return asset_response("index.html")


@blueprint.route(f"{PREFIX}/{{name}}", name="console-asset")
class ConsoleAsset(ApiView):
    async def get(self, request: web.Request, name: str) -> web.Response:
        return asset_response(name)
