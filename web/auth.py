"""Who is calling: the authentication seam the views call on every protected request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True)
class Principal:
    """The caller and what it may do (the JWT claims of SPEC §5)."""

    sub: str
    permissions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    supreme: bool = False

    def can_report(self, campaign_id: str) -> bool:
        return self.supreme or "REPORT" in self.permissions.get(campaign_id, ())


class Authenticator(Protocol):
    def authenticate(self, request: web.Request) -> Principal: ...


class OpenAccess:
    """Every caller is a supreme local user: the walking skeleton has no JWT yet."""

    def authenticate(self, request: web.Request) -> Principal:
        return Principal(sub="local", supreme=True)


authenticator: Authenticator = OpenAccess()
