"""View tests over aiohttp's test client, fake deps and an in-memory table (no broker).

The app's settings get a test JWT secret for the duration of each test; `client` sends a
supreme token by default, `anon_client` sends none, `mint` makes any other token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from pydantic import SecretStr

from core.deps import Deps
from core.settings import Settings
from web.devtoken import mint_token

SECRET = "test-secret-0123456789-abcdefghijklmnop"

Mint = Callable[..., str]


@pytest.fixture(autouse=True)
def kafka_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """No broker in view tests: /ready's Kafka checks (connection, partition) pass."""
    import web.health

    async def connected() -> None:
        return None

    monkeypatch.setattr(web.health, "broker_probe", connected)
    monkeypatch.setattr(web.health, "_partition_check", lambda: None)


@pytest.fixture
def auth_settings(finalized_app: object) -> Iterator[Settings]:
    """The app's settings with an HS256 test secret, restored afterwards."""
    from core.app import app

    original = app.settings
    app.settings = original.model_copy(
        update={"jwt_algorithm": "HS256", "jwt_secret": SecretStr(SECRET)}
    )
    try:
        yield app.settings
    finally:
        app.settings = original


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
async def client(aiohttp_client: Any, deps: Deps, mint: Mint) -> Any:
    """A test client whose requests carry a supreme token unless they set their own."""
    from core.app import app

    web_app = cast(Any, app.web).web_app
    return await aiohttp_client(web_app, headers=bearer(mint(sub="admin", supreme=True)))


@pytest.fixture
async def anon_client(aiohttp_client: Any, deps: Deps, auth_settings: Settings) -> Any:
    from core.app import app

    return await aiohttp_client(cast(Any, app.web).web_app)
