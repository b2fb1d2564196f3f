"""API test fixtures: a real Service on the session's Valkey, served by aiohttp's test server."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from router.api.app import build_api
from router.clock import VirtualClock
from router.config import load_config_text
from router.config.model import Config, Role, TokenConfig
from router.service import Service, ServiceOptions

from ..conftest import drop_tenant, new_tenant_id
from ..factories import tenant_toml


def token(tenant: str, name: str) -> str:
    return f"{tenant}-{name}"


def _tok(
    plain: str, *roles: Role, agent: str | None = None, pool: str | None = None
) -> TokenConfig:
    return TokenConfig(
        hashlib.sha256(plain.encode()).hexdigest(), frozenset(roles), plain, agent, pool
    )


@dataclasses.dataclass
class Api:
    client: TestClient
    service: Service
    tenant: str
    clock: VirtualClock

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.tenant, name)}"}


ApiFactory = Callable[[], Awaitable[Api]]


@pytest.fixture
async def make_api(redis_url: str, redis: Redis) -> AsyncIterator[ApiFactory]:
    made: list[Api] = []

    async def factory() -> Api:
        tid = new_tenant_id()
        base = load_config_text(tenant_toml(tid), "<test>").tenants[tid]
        tokens = (
            _tok(token(tid, "admin"), Role.ADMIN),
            _tok(token(tid, "ingest"), Role.INGEST),
            _tok(token(tid, "agent"), Role.AGENT),
            _tok(token(tid, "a1"), Role.AGENT, agent="a1"),
            _tok(token(tid, "supervisor"), Role.SUPERVISOR),
            _tok(token(tid, "near-supervisor"), Role.SUPERVISOR, pool="near"),
        )
        tenant = dataclasses.replace(
            base, tokens=tokens, default_queues={"voice": "voice", "chat": "chat"}
        )
        clock = VirtualClock()
        service = Service(Config({tid: tenant}), ServiceOptions(redis_url=redis_url), clock)
        client = TestClient(TestServer(build_api(service)))
        await client.start_server()
        api = Api(client, service, tid, clock)
        made.append(api)
        return api

    yield factory
    for api in made:
        await api.client.close()
        await drop_tenant(redis, api.tenant)
