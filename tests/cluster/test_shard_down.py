"""One shard down: only its tenants' calls fail, and they work again once it is back.

Its own small cluster (the session's must stay whole), with
`cluster-require-full-coverage no` so the other shards keep serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.errors import AgentNotFound
from router.keys import TenantKeys
from router.store.cluster import transaction
from router.store.connection import connect
from router.store.scripts import Scripts

from .conftest import shard_of, shards, tenant_on
from .server import ValkeyCluster


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ValkeyCluster]:
    cluster = ValkeyCluster(tmp_path, full_coverage=False)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def client(own_cluster: ValkeyCluster) -> AsyncIterator[Redis]:
    c = await connect(own_cluster.url, socket_timeout=1.0, socket_connect_timeout=0.5)
    yield c
    await c.aclose()


async def test_a_dead_shard_fails_only_its_own_calls(
    own_cluster: ValkeyCluster, client: Redis
) -> None:
    scripts = Scripts(client)
    tenants = [tenant_on(client, i) for i in range(3)]
    down = shards(client)[1]
    node = next(n for n in own_cluster.nodes if n.port == down.port)
    assert shard_of(client, tenants[1]).name == down.name

    async def beat() -> list[object]:
        """One tick: one call per shard, batched together."""
        return await asyncio.gather(
            *[scripts.run("heartbeat", [TenantKeys(t).anchor], [1000, "nobody"]) for t in tenants],
            return_exceptions=True,
        )

    assert [type(r) for r in await beat()] == [AgentNotFound] * 3
    node.kill()
    replies = await beat()
    assert isinstance(replies[0], AgentNotFound) and isinstance(replies[2], AgentNotFound)
    assert isinstance(replies[1], RedisError), replies[1]  # unavailable: a 503, not a 500
    # transactions on the live shards go on too
    pipe = transaction(client)
    pipe.set(TenantKeys(tenants[2]).prefix + "t", "1")
    assert await pipe.execute() == [True]
    node.start()  # same port, same data: its slots come back
    own_cluster.wait_ok()
    for _ in range(50):
        replies = await beat()
        if [type(r) for r in replies] == [AgentNotFound] * 3:
            break
        await asyncio.sleep(0.1)
    assert [type(r) for r in replies] == [AgentNotFound] * 3, replies
