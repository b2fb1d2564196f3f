"""Bearer tokens: who is calling, for which tenant, in which roles.

Tokens live in the config as SHA-256 digests only. A request's token is hashed
and looked up; the principal it maps to is fixed to one tenant, so no request
can reach another tenant's data. Agent tokens issued by an admin
(`POST /v1/agents/{id}/token`) read `sb1.<tenant>.<secret>`: the tenant part
says which tenant's Redis hash holds the digest, and the digest says which agent.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..config.model import Config, Role, TenantConfig, TokenConfig
from ..ids import is_valid_id
from ..service import Service
from .problems import ApiError, Handler

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/health", "/openapi.json", "/v1/webhooks/")
ISSUED_PREFIX = "sb1."


@dataclass(frozen=True)
class Principal:
    tenant: str
    roles: frozenset[Role]
    name: str = ""
    agent: str | None = None  # bound agent token
    pool: str | None = None  # supervisor scope
    token_id: str = ""  # first 16 hex of the token's digest: names its rate bucket
    rate: float = 100.0  # requests per second
    burst: int = 200

    def may_act_for(self, agent_id: str) -> bool:
        """An agent token acts for its own agent, a platform-wide one for any."""
        return Role.AGENT in self.roles and (self.agent is None or self.agent == agent_id)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_agent_token(tenant: str) -> str:
    return f"{ISSUED_PREFIX}{tenant}.{secrets.token_urlsafe(32)}"


def _principal(tenant: TenantConfig, tok: TokenConfig) -> Principal:
    rate, burst = tenant.limits.bucket(tok)
    return Principal(
        tenant.id, frozenset(tok.roles), tok.name, tok.agent, tok.pool, tok.sha256[:16], rate, burst
    )


class TokenTable:
    """The config's tokens, by digest."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._by_digest: dict[str, Principal] = {}
        self._by_token: dict[str, Principal] = {}  # lookup's cache
        for tenant in config.tenants.values():
            for tok in tenant.tokens:
                self._by_digest[tok.sha256] = _principal(tenant, tok)

    def lookup(self, token: str) -> Principal | None:
        """Hash and look up; a valid token is remembered, so the next request with it
        costs a dict lookup instead of a SHA-256.
        Only tokens found in the config are kept, so the cache is no bigger than the
        config's token list; a reload builds a new table and forgets it."""
        who = self._by_token.get(token)
        if who is None:
            who = self._by_digest.get(digest(token))
            if who is not None and len(self._by_token) < len(self._by_digest):
                self._by_token[token] = who
        return who


async def _issued(service: Service, token: str) -> Principal | None:
    """An admin-issued agent token: `sb1.<tenant>.<secret>`, digest kept in Redis."""
    tenant_id, _, secret = token[len(ISSUED_PREFIX) :].rpartition(".")
    engine = service.engines.get(tenant_id) if is_valid_id(tenant_id) and secret else None
    if engine is None:
        return None
    d = digest(token)
    agent = await engine.agent_for_token(d)
    if agent is None:
        return None
    rate, burst = engine.tenant.limits.bucket()
    return Principal(
        tenant_id, frozenset({Role.AGENT}), f"agent {agent}", agent, None, d[:16], rate, burst
    )


PRINCIPAL = web.RequestKey("principal", Principal)


def auth_middleware(service: Service) -> Middleware:
    table = TokenTable(service.config)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal table
        if request.path.startswith(PUBLIC_PREFIXES) or not request.path.startswith("/v1/"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
        if table.config is not service.config:  # reloaded
            table = TokenTable(service.config)
        who = table.lookup(token)
        if who is None and token.startswith(ISSUED_PREFIX):
            who = await _issued(service, token)
        if who is None or who.tenant not in service.engines:
            raise ApiError(401, "unauthorized", "the bearer token is not valid")
        if service.limiter is not None:
            wait_ms = await service.limiter.take(who.tenant, who.token_id, who.rate, who.burst)
            if wait_ms is not None:
                seconds = max(1, math.ceil(wait_ms / 1000))
                raise ApiError(
                    429,
                    "too many requests",
                    f"this token may make {who.rate:g} requests per second "
                    f"(bursts of {who.burst}); retry in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
        request[PRINCIPAL] = who
        return await handler(request)

    return middleware


def principal(request: web.Request, *roles: Role) -> Principal:
    """The caller, who must hold one of `roles` (any role when none is given)."""
    p = request[PRINCIPAL]
    if roles and not (p.roles & set(roles)):
        wanted = " or ".join(r.value for r in roles)
        raise ApiError(403, "forbidden", f"this action needs the {wanted} role")
    return p
