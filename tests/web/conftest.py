"""View tests over aiohttp's test client, fake deps and an in-memory table (no broker)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from core.deps import Deps


@pytest.fixture
async def client(aiohttp_client: Any, deps: Deps) -> Any:
    from core.app import app

    return await aiohttp_client(cast(Any, app.web).web_app)
