"""GET /me: who the token says the caller is, and the campaigns it may export."""

from __future__ import annotations

import faust
from aiohttp import web

from web.auth import REPORT, authenticate
from web.bodies import Identity
from web.responses import ApiView, json_response

blueprint = faust.web.Blueprint("identity")


@blueprint.route("/me", name="me")
class Me(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        """The CLI's `whoami` and the console's campaign picker: a supreme caller may use any
        campaign, so `campaigns` lists only those its token names."""
        principal = authenticate(request)
        campaigns = sorted(c for c, perms in principal.permissions.items() if REPORT in perms)
        return json_response(
            Identity(sub=principal.sub, supreme=principal.supreme, campaigns=campaigns)
        )
