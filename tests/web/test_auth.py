"""JWT authentication (401), REPORT/supreme authorisation (403) and requestedBy = sub."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from core.app import ExportApp
from core.errors import AuthNotConfigured, Forbidden, Unauthenticated
from core.models import new_export_id
from core.settings import Settings
from tests.fakes import FakeBroker
from tests.web.conftest import SECRET, Mint, bearer
from tests.web.test_exports_views import assert_error
from topics.status import StatusStore
from web.auth import JwtAuthenticator, Principal, require_report, require_supreme
from web.context import web_app_of

LIST = "/campaigns/c1/exports"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "supreme": True, "iat": now, "nbf": now}
    base["exp"] = now + 86_400  # built at collection time: valid for the whole run
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def use_settings(app: ExportApp, auth_settings: Settings) -> Any:
    """use_settings(**changes): the test's app runs with these settings from now on."""

    def apply(**changes: Any) -> Settings:
        app.settings = auth_settings.model_copy(update=changes)
        return app.settings

    return apply


async def test_open_endpoints_need_no_token(anon_client: Any) -> None:
    for path in ("/heartbeat", "/ready", "/openapi.json", "/asyncapi.json"):
        response = await anon_client.get(path)
        assert response.status == 200, path


async def test_a_missing_token_is_401_with_a_challenge(anon_client: Any) -> None:
    for method, path in (("GET", LIST), ("POST", LIST), ("GET", f"{LIST}/abc")):
        response = await anon_client.request(method, path, json={"exportType": "codes"})
        assert response.status == 401, (method, path)
        body = await response.json()
        assert_error(body, "UNAUTHENTICATED")
        assert body["error"]["details"] == {"reason": "missing"}
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="export-service"'


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic YWxpY2U6c2VjcmV0", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer two tokens", "malformed"),
        ("Bearer not-a-jwt", "malformed"),
        ("Bearer a.b.c", "malformed"),
        ("Bearer " + "A" * 4000, "malformed"),
    ],
)
async def test_malformed_authorization_is_401(anon_client: Any, header: str, reason: str) -> None:
    response = await anon_client.get(LIST, headers={"Authorization": header})
    assert response.status == 401
    body = await response.json()
    assert_error(body, "UNAUTHENTICATED")
    assert body["error"]["details"] == {"reason": reason}
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(exp=int(time.time()) - 3600), "expired"),
        (claims(nbf=int(time.time()) + 3600), "not_yet_valid"),
        (claims(iat=int(time.time()) + 3600), "not_yet_valid"),
        (claims(exp=None), "missing_claim"),
        (claims(sub=None), "missing_claim"),
        (claims(sub=42), "invalid"),
        (claims(exp="tomorrow"), "malformed"),
        (claims(supreme="yes"), "bad_claims"),
        (claims(permissions=["c1"]), "bad_claims"),
        (claims(permissions={"c1": "REPORT"}), "bad_claims"),
        (claims(sub=""), "bad_claims"),
    ],
)
async def test_invalid_claims_are_401(
    anon_client: Any, payload: dict[str, Any], reason: str
) -> None:
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    response = await anon_client.get(LIST, headers=bearer(token))
    assert response.status == 401
    body = await response.json()
    assert_error(body, "UNAUTHENTICATED")
    assert body["error"]["details"]["reason"] == reason
    assert token not in str(body)


async def test_a_token_signed_with_another_secret_is_401(anon_client: Any) -> None:
    token = jwt.encode(claims(), "another-secret-0123456789-abcdefghijkl", algorithm="HS256")
    response = await anon_client.get(LIST, headers=bearer(token))
    assert response.status == 401
    assert (await response.json())["error"]["details"]["reason"] == "bad_signature"


async def test_a_tampered_payload_is_401(anon_client: Any, mint: Mint) -> None:
    header, _, signature = mint(sub="bob", permissions={"c2": ["REPORT"]}).split(".")
    forged = b64(orjson.dumps(claims(sub="bob", supreme=True)))
    response = await anon_client.get(LIST, headers=bearer(f"{header}.{forged}.{signature}"))
    assert response.status == 401
    assert (await response.json())["error"]["details"]["reason"] == "bad_signature"


async def test_alg_none_is_refused(anon_client: Any) -> None:
    header = b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    token = f"{header}.{b64(orjson.dumps(claims()))}."
    response = await anon_client.get(LIST, headers=bearer(token))
    assert response.status == 401
    assert (await response.json())["error"]["details"]["reason"] == "bad_algorithm"


async def test_only_the_configured_algorithm_is_accepted(
    anon_client: Any, rsa_keys: tuple[str, str]
) -> None:
    private, _public = rsa_keys
    for token in (
        jwt.encode(claims(), SECRET * 2, algorithm="HS512"),
        jwt.encode(claims(), SECRET * 2, algorithm="HS384"),
        jwt.encode(claims(), private, algorithm="RS256"),
    ):
        response = await anon_client.get(LIST, headers=bearer(token))
        assert response.status == 401
        assert (await response.json())["error"]["details"]["reason"] == "bad_algorithm"


async def test_rs256_accepts_the_key_pair_and_refuses_key_confusion(
    anon_client: Any, use_settings: Any, rsa_keys: tuple[str, str]
) -> None:
    private, public = rsa_keys
    use_settings(jwt_algorithm="RS256", jwt_public_key=SecretStr(public), jwt_secret=None)
    good = jwt.encode(claims(), private, algorithm="RS256")
    assert (await anon_client.get(LIST, headers=bearer(good))).status == 200
    # The classic attack: HS256 "signed" with the public key the server verifies with.
    confused = jwt.api_jws.PyJWS()
    confused._algorithms["HS256"].prepare_key = lambda key: key  # type: ignore[method-assign]
    forged = confused.encode(orjson.dumps(claims()), public.encode(), algorithm="HS256")
    response = await anon_client.get(LIST, headers=bearer(forged))
    assert response.status == 401
    assert (await response.json())["error"]["details"]["reason"] == "bad_algorithm"
    hs = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert (await anon_client.get(LIST, headers=bearer(hs))).status == 401


async def test_rs256_key_from_a_file(
    anon_client: Any, use_settings: Any, rsa_keys: tuple[str, str], tmp_path: Any
) -> None:
    private, public = rsa_keys
    pem = tmp_path / "public.pem"
    pem.write_text(public)
    use_settings(jwt_algorithm="RS256", jwt_public_key_file=pem)
    good = jwt.encode(claims(), private, algorithm="RS256")
    assert (await anon_client.get(LIST, headers=bearer(good))).status == 200


async def test_issuer_and_audience_when_configured(
    anon_client: Any, use_settings: Any, mint: Mint
) -> None:
    use_settings(jwt_issuer="https://idp.example", jwt_audience="export-service")
    ok = mint(supreme=True, issuer="https://idp.example", audience="export-service")
    assert (await anon_client.get(LIST, headers=bearer(ok))).status == 200
    for token, reason in (
        (mint(supreme=True, audience="export-service"), "missing_claim"),
        (mint(supreme=True, issuer="https://idp.example"), "missing_claim"),
        (mint(supreme=True, issuer="https://evil", audience="export-service"), "bad_issuer"),
        (mint(supreme=True, issuer="https://idp.example", audience="other"), "bad_audience"),
    ):
        response = await anon_client.get(LIST, headers=bearer(token))
        assert response.status == 401
        assert (await response.json())["error"]["details"]["reason"] == reason


async def test_clock_skew_within_the_leeway_is_accepted(anon_client: Any, mint: Mint) -> None:
    late = mint(supreme=True, now=time.time() - 3610, expires_in=3600)  # expired 10 s ago
    assert (await anon_client.get(LIST, headers=bearer(late))).status == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"jwt_secret": None},
        {"jwt_algorithm": "RS256", "jwt_public_key": None},
        {"jwt_algorithm": "RS256", "jwt_public_key": SecretStr("not a pem")},
        {"jwt_algorithm": "RS256", "jwt_public_key_file": Path("/nonexistent/key.pem")},
    ],
)
async def test_without_a_usable_key_protected_endpoints_fail_closed(
    anon_client: Any, use_settings: Any, mint: Mint, changes: dict[str, Any]
) -> None:
    use_settings(**changes)
    response = await anon_client.get(LIST, headers=bearer(mint(supreme=True)))
    assert response.status == 503
    assert_error(await response.json(), "AUTH_NOT_CONFIGURED")
    assert (await anon_client.get("/heartbeat")).status == 200


def test_a_pem_key_is_not_accepted_as_an_hmac_secret(rsa_keys: tuple[str, str]) -> None:
    settings = Settings(jwt_secret=rsa_keys[1])
    with pytest.raises(AuthNotConfigured):
        JwtAuthenticator.from_settings(settings)


def test_a_short_secret_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(jwt_secret="short")


async def test_report_permission_is_per_campaign(anon_client: Any, mint: Mint) -> None:
    token = mint(sub="carol", permissions={"c1": ["REPORT"], "c2": ["VIEW"]})
    assert (await anon_client.get(LIST, headers=bearer(token))).status == 200
    for path in ("/campaigns/c2/exports", "/campaigns/c3/exports", f"/campaigns/c3/exports/{'x'}"):
        response = await anon_client.get(path, headers=bearer(token))
        assert response.status == 403, path
        body = await response.json()
        assert_error(body, "FORBIDDEN")
    response = await anon_client.post(
        "/campaigns/c2/exports", json={"exportType": "codes"}, headers=bearer(token)
    )
    assert response.status == 403


async def test_no_permissions_at_all_is_403(anon_client: Any, mint: Mint) -> None:
    response = await anon_client.get(LIST, headers=bearer(mint(sub="dave")))
    assert response.status == 403


async def test_supreme_reaches_every_campaign(anon_client: Any, mint: Mint) -> None:
    token = mint(sub="root", supreme=True)
    for campaign in ("c1", "anything", "x.y:z"):
        response = await anon_client.get(f"/campaigns/{campaign}/exports", headers=bearer(token))
        assert response.status == 200, campaign


class _SentFuture:
    def __await__(self) -> Any:
        return iter(())


class _AcceptingTopic:
    """Stands in for the exports topic: the request is published at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes, headers: Any = None) -> _SentFuture:
        self.sent.append(value)
        return _SentFuture()


async def test_rest_requests_are_recorded_as_requested_by_the_token_subject(
    anon_client: Any,
    mint: Mint,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    broker: FakeBroker,
    settings: Settings,
) -> None:
    token = mint(sub="erin@example.com", permissions={"c1": ["REPORT"]})
    params = {"waveId": f"w-{new_export_id()}"}  # a fresh duplicate key
    response = await anon_client.post(
        LIST, json={"exportType": "codeWave", "params": params}, headers=bearer(token)
    )
    body = await response.json()
    assert response.status == 202, body
    assert body["requestedBy"] == "erin@example.com"
    assert body["source"] == "rest"
    stored = status_store.get(body["id"])
    assert stored is not None
    assert stored.requested_by == "erin@example.com"
    assert (
        orjson.loads(broker.on(settings.topic_exports)[0]["value"])["requestedBy"]
        == "erin@example.com"
    )


def test_require_report() -> None:
    require_report(Principal(sub="a", supreme=True), "c9")
    require_report(Principal(sub="a", permissions={"c9": ("REPORT",)}), "c9")
    with pytest.raises(Forbidden):
        require_report(Principal(sub="a", permissions={"c9": ("REPORT",)}), "c8")


def test_require_supreme_for_ccpa(mint: Mint, app: ExportApp) -> None:
    def request(token: str | None) -> Any:
        headers = {} if token is None else bearer(token)
        return make_mocked_request("DELETE", "/ccpa/users/u1", headers=headers, app=web_app_of(app))

    assert require_supreme(request(mint(sub="root", supreme=True))).sub == "root"
    with pytest.raises(Forbidden):
        require_supreme(request(mint(sub="a", permissions={"c1": ["REPORT"]})))
    with pytest.raises(Unauthenticated):
        require_supreme(request(None))
