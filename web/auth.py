"""Who is calling: JWT bearer authentication and the REPORT / supreme permission checks."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import HMACAlgorithm
from jwt.types import Options
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from core.errors import AuthNotConfigured, Forbidden, Unauthenticated
from core.ids import REQUESTER_MAX_LENGTH
from core.settings import Settings
from web.context import context_of

logger = logging.getLogger(__name__)

REPORT = "REPORT"
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)


@dataclass(frozen=True)
class Principal:
    """The caller and what it may do (the JWT claims of SPEC §5)."""

    sub: str
    permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    supreme: bool = False

    def can_report(self, campaign_id: str) -> bool:
        return self.supreme or REPORT in self.permissions.get(campaign_id, ())


class Claims(BaseModel):
    """The claims the service reads; types are strict (`"supreme": "yes"` is refused)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # It becomes the `requestedBy` of the events a REST request publishes.
    sub: StrictStr = Field(min_length=1, max_length=REQUESTER_MAX_LENGTH)
    permissions: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    supreme: StrictBool = False

    def principal(self) -> Principal:
        return Principal(
            sub=self.sub,
            permissions={k: tuple(v) for k, v in self.permissions.items()},
            supreme=self.supreme,
        )


class Authenticator(Protocol):
    def authenticate(self, request: web.Request) -> Principal: ...


def bearer_token(request: web.Request) -> str:
    """The token of `Authorization: Bearer <token>`; 401 when missing or malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthenticated("a bearer token is required", reason="missing")
    match = _BEARER.match(header)
    if match is None:
        raise Unauthenticated("Authorization must be 'Bearer <token>'", reason="malformed")
    return match.group(1)


# PyJWT error -> (reason, message); the first matching class wins, so subclasses come first.
_REJECTIONS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidSignatureError, "bad_signature", "the token signature is invalid"),
    (jwt.InvalidAlgorithmError, "bad_algorithm", "the token algorithm is not accepted"),
    (jwt.MissingRequiredClaimError, "missing_claim", "the token lacks a required claim"),
    (jwt.InvalidAudienceError, "bad_audience", "the token is not meant for this service"),
    (jwt.InvalidIssuerError, "bad_issuer", "the token issuer is not accepted"),
    (jwt.DecodeError, "malformed", "the token is malformed"),
)


class JwtAuthenticator:
    """Verifies bearer tokens with one pinned algorithm and key; `exp` required."""

    def __init__(
        self,
        *,
        algorithm: str,
        key: str | RSAPublicKey,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_seconds: float = 0.0,
    ) -> None:
        self.algorithm = algorithm
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        require = ["exp", "sub"]
        if issuer is not None:
            require.append("iss")
        if audience is not None:
            require.append("aud")
        self._options: Options = {
            "verify_signature": True,
            "require": require,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_sub": True,
            "verify_iss": issuer is not None,
            "verify_aud": audience is not None,
            "enforce_minimum_key_length": True,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtAuthenticator:
        """The authenticator the settings describe; AuthNotConfigured when they hold no key."""
        try:
            material = settings.jwt_verification_key()
        except OSError as exc:
            raise AuthNotConfigured(f"the JWT public key file cannot be read: {exc}") from exc
        if not material:
            raise AuthNotConfigured(
                f"no JWT key configured for {settings.jwt_algorithm} "
                "(JWT_SECRET, JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE)"
            )
        key: str | RSAPublicKey
        if settings.jwt_algorithm == "RS256":
            try:
                loaded = load_pem_public_key(material.encode())
            except ValueError as exc:
                raise AuthNotConfigured("the JWT public key is not a PEM public key") from exc
            if not isinstance(loaded, RSAPublicKey):
                raise AuthNotConfigured("the JWT public key is not an RSA key")
            key = loaded
        else:
            try:  # refuses PEM keys as HMAC secrets (the RS/HS key-confusion attack)
                HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(material)
            except jwt.InvalidKeyError as exc:
                raise AuthNotConfigured(f"JWT_SECRET is not usable: {exc}") from exc
            key = material
        return cls(
            algorithm=settings.jwt_algorithm,
            key=key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthenticated (401) for anything else."""
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                options=self._options,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.PyJWTError as exc:
            reason, message = next(
                ((r, m) for kind, r, m in _REJECTIONS if isinstance(exc, kind)),
                ("invalid", "the token is invalid"),
            )
            raise Unauthenticated(message, reason=reason) from exc
        try:
            return Claims.model_validate(payload).principal()
        except ValidationError as exc:
            raise Unauthenticated("the token claims are invalid", reason="bad_claims") from exc

    def authenticate(self, request: web.Request) -> Principal:
        return self.verify(bearer_token(request))


class Unconfigured:
    """No usable key: every protected request fails closed with 503 AUTH_NOT_CONFIGURED."""

    def __init__(self, error: AuthNotConfigured) -> None:
        self.error = error

    def authenticate(self, request: web.Request) -> Principal:
        raise AuthNotConfigured(self.error.message)


def authenticator_for(settings: Settings) -> Authenticator:
    """The authenticator of these settings; an unusable key makes one that refuses all."""
    try:
        return JwtAuthenticator.from_settings(settings)
    except AuthNotConfigured as exc:
        logger.error("authentication is not configured: %s", exc.message)
        return Unconfigured(exc)


class Authenticators:
    """One app's authenticator, built once per settings object (tests swap the settings)."""

    def __init__(self) -> None:
        self._built: tuple[Settings, Authenticator] | None = None

    def for_settings(self, settings: Settings) -> Authenticator:
        if self._built is None or self._built[0] is not settings:
            self._built = (settings, authenticator_for(settings))
        return self._built[1]


def authenticate(request: web.Request) -> Principal:
    """The verified caller of `request` (401/503 otherwise), with its app's settings."""
    context = context_of(request)
    return context.authenticators.for_settings(context.app.settings).authenticate(request)


def require_report(principal: Principal, campaign_id: str) -> None:
    """403 unless the caller has REPORT on the campaign or is supreme."""
    if not principal.can_report(campaign_id):
        raise Forbidden(
            f"{REPORT} permission on the campaign is required",
            details={"campaignId": campaign_id, "permission": REPORT},
        )


def require_supreme(request: web.Request) -> Principal:
    """The caller, authenticated (401) and supreme (403): the CCPA endpoints' rule."""
    principal = authenticate(request)
    if not principal.supreme:
        raise Forbidden("a supreme token is required", details={"permission": "supreme"})
    return principal
