"""Dev token tool: `python -m web.devtoken --sub alice --supreme | --campaign c1` prints a JWT.

Signed with the configured key (JWT_SECRET for HS256; for RS256 the private key given with
`--private-key-file`), so the running service accepts it. For local use and tests only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt

from core.settings import Settings, get_settings

DEFAULT_EXPIRY_SECONDS = 3600
REPORT = "REPORT"


def mint_token(
    key: str,
    *,
    sub: str,
    algorithm: str = "HS256",
    permissions: Mapping[str, Sequence[str]] | None = None,
    supreme: bool = False,
    expires_in: float = DEFAULT_EXPIRY_SECONDS,
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A signed token with the service's claims: sub, permissions, supreme, iat, nbf, exp."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": sub,
        "permissions": {k: list(v) for k, v in (permissions or {}).items()},
        "supreme": supreme,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(expires_in),
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm=algorithm)


def mint_for_settings(
    settings: Settings,
    *,
    sub: str,
    campaigns: Sequence[str] = (),
    supreme: bool = False,
    expires_in: float = DEFAULT_EXPIRY_SECONDS,
    private_key: str | None = None,
) -> str:
    """A token the service configured by `settings` accepts (REPORT on each campaign)."""
    if settings.jwt_algorithm == "HS256":
        if settings.jwt_secret is None:
            raise ValueError("JWT_SECRET is not set: there is no key to sign with")
        key = settings.jwt_secret.get_secret_value()
    else:
        if private_key is None:
            raise ValueError("JWT_ALGORITHM is RS256: give the signing key with --private-key-file")
        key = private_key
    return mint_token(
        key,
        sub=sub,
        algorithm=settings.jwt_algorithm,
        permissions={campaign: [REPORT] for campaign in campaigns},
        supreme=supreme,
        expires_in=expires_in,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m web.devtoken", description=__doc__)
    parser.add_argument("--sub", default="dev", help="the caller's id (default: %(default)s)")
    parser.add_argument("--supreme", action="store_true", help="every campaign, and CCPA")
    parser.add_argument(
        "--campaign",
        action="append",
        default=[],
        metavar="CAMPAIGN_ID",
        help="REPORT permission on this campaign (repeatable)",
    )
    parser.add_argument(
        "--expires-in",
        type=int,
        default=DEFAULT_EXPIRY_SECONDS,
        metavar="SECONDS",
        help="lifetime (default: %(default)s)",
    )
    parser.add_argument("--private-key-file", type=Path, help="RS256 signing key (PEM)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.expires_in <= 0:
        print("devtoken: --expires-in must be positive", file=sys.stderr)
        return 2
    try:
        private_key = args.private_key_file.read_text("utf-8") if args.private_key_file else None
        token = mint_for_settings(
            get_settings(),
            sub=args.sub,
            campaigns=args.campaign,
            supreme=args.supreme,
            expires_in=args.expires_in,
            private_key=private_key,
        )
    except (ValueError, OSError) as exc:
        print(f"devtoken: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
