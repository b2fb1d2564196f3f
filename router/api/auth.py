"""Bearer tokens: who is calling, for which tenant, in which roles.

Tokens live in the config as SHA-256 digests only. A request's token is hashed
and looked up; the principal it maps to is fixed to one tenant, so no request
can reach another tenant's data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..config.model import Config, Role
from .problems import ApiError, Handler

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/health", "/openapi.json", "/v1/webhooks/")


@dataclass(frozen=True)
class Principal:
    tenant: str
    roles: frozenset[Role]
    name: str = ""
    agent: str | None = None  # bound agent token
    pool: str | None = None  # supervisor scope

    def may_act_for(self, agent_id: str) -> bool:
        """An agent token acts for its own agent, a platform-wide one for any."""
        return Role.AGENT in self.roles and (self.agent is None or self.agent == agent_id)


class TokenTable:
    def __init__(self, config: Config) -> None:
        self._by_digest: dict[str, Principal] = {}
        for tid, tenant in config.tenants.items():
            for tok in tenant.tokens:
                self._by_digest[tok.sha256] = Principal(
                    tid, frozenset(tok.roles), tok.name, tok.agent, tok.pool
                )

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(hashlib.sha256(token.encode()).hexdigest())


PRINCIPAL = web.RequestKey("principal", Principal)


def auth_middleware(tokens: TokenTable) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PREFIXES) or not request.path.startswith("/v1/"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
        principal = tokens.lookup(token.strip())
        if principal is None:
            raise ApiError(401, "unauthorized", "the bearer token is not valid")
        request[PRINCIPAL] = principal
        return await handler(request)

    return middleware


def principal(request: web.Request, *roles: Role) -> Principal:
    """The caller, who must hold one of `roles` (any role when none is given)."""
    p = request[PRINCIPAL]
    if roles and not (p.roles & set(roles)):
        wanted = " or ".join(r.value for r in roles)
        raise ApiError(403, "forbidden", f"this action needs the {wanted} role")
    return p
