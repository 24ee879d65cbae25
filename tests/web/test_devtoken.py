"""The dev token tool mints tokens the service accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from core.app import ExportApp
from core.settings import Settings
from tests.web.conftest import SECRET, bearer
from web.auth import JwtAuthenticator
from web.devtoken import DEFAULT_EXPIRY_SECONDS, mint_for_settings

ROOT = Path(__file__).resolve().parents[2]


def run_devtoken(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
    if secret is not None:
        env["JWT_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "web.devtoken", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_prints_a_supreme_token() -> None:
    result = run_devtoken("--sub", "alice", "--supreme")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["supreme"] is True
    assert claims["permissions"] == {}
    assert claims["exp"] - claims["iat"] == DEFAULT_EXPIRY_SECONDS


def test_the_command_grants_report_per_campaign() -> None:
    result = run_devtoken("--sub", "bob", "--campaign", "c1", "--campaign", "c2")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["permissions"] == {"c1": ["REPORT"], "c2": ["REPORT"]}
    assert claims["supreme"] is False


def test_the_command_refuses_without_a_secret() -> None:
    result = run_devtoken("--supreme", secret=None)
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr
    assert result.stdout == ""


def test_minted_tokens_verify_with_the_same_settings() -> None:
    settings = Settings(jwt_secret=SecretStr(SECRET), jwt_issuer="idp", jwt_audience="svc")
    token = mint_for_settings(settings, sub="carol", campaigns=["c1"])
    principal = JwtAuthenticator.from_settings(settings).verify(token)
    assert principal.sub == "carol"
    assert principal.can_report("c1")
    assert not principal.can_report("c2")


async def test_a_minted_token_opens_the_api(anon_client: Any, app: ExportApp) -> None:
    token = mint_for_settings(app.settings, sub="dave", campaigns=["c1"])
    assert (await anon_client.get("/campaigns/c1/exports", headers=bearer(token))).status == 200


def test_rs256_needs_the_private_key() -> None:
    settings = Settings(jwt_algorithm="RS256")
    with pytest.raises(ValueError, match="private-key-file"):
        mint_for_settings(settings, sub="x", supreme=True)
