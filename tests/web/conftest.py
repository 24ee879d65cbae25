"""View tests over aiohttp's test client, fake deps and an in-memory table (no broker).

Each test's app is built with a test JWT secret; `client` sends a supreme token by default,
`anon_client` sends none, `mint` makes any other token. The fake broker answers and holds
the exports partition unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from core.app import ExportApp
from core.deps import Deps
from core.settings import Settings
from export_service import Service
from web.context import WebContext, web_app_of
from web.devtoken import mint_token

SECRET = "test-secret-0123456789-abcdefghijklmnop"

Mint = Callable[..., str]


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_algorithm="HS256", jwt_secret=SecretStr(SECRET))


@pytest.fixture
def auth_settings(app: ExportApp) -> Settings:
    """The settings of the test's app (with the HS256 test secret)."""
    return app.settings


@pytest.fixture
def mint(auth_settings: Settings) -> Mint:
    """mint(sub=..., permissions=..., supreme=..., ...) -> a token the app accepts."""

    def make(**claims: Any) -> str:
        claims.setdefault("sub", "tester")
        return mint_token(SECRET, **claims)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(aiohttp_client: Any, app: ExportApp, deps: Deps, mint: Mint) -> Any:
    """A test client whose requests carry a supreme token unless they set their own."""
    return await aiohttp_client(web_app_of(app), headers=bearer(mint(sub="admin", supreme=True)))


@pytest.fixture
async def anon_client(aiohttp_client: Any, app: ExportApp, auth_settings: Settings) -> Any:
    return await aiohttp_client(web_app_of(app))


@pytest.fixture
def web_context(service: Service) -> WebContext:
    return service.web
