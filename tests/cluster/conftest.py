"""Tests under tests/cluster run against the session's 3-master Valkey cluster.

`redis` and `scripts` are overridden here, so the shared fixtures built on them
(`make_engine`, ...) give engines on the cluster client. Every script is loaded
with a `#!lua` shebang: the server then refuses any key outside KEYS[1]'s slot,
so each script call these tests make also proves it keeps to one slot.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from router.keys import TenantKeys
from router.store.connection import connect
from router.store.scripts import SCRIPT_NAMES, Scripts, script_source

from ..api.conftest import make_api  # noqa: F401 (the API tests' fixture, on the cluster)
from ..conftest import new_tenant_id

STRICT = "#!lua\n"  # no flags: only keys of the declared keys' slot


@pytest.fixture(scope="session")
def redis_url(cluster_url: str) -> str:
    """Servers started by these tests (`make_api`...) connect to the cluster too."""
    return cluster_url


@pytest.fixture(scope="session")
async def redis(cluster_url: str) -> AsyncIterator[Redis]:
    client = await connect(cluster_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def scripts(redis: Redis) -> Scripts:
    return strict_scripts(redis)


def strict_scripts(client: Redis) -> Scripts:
    s = Scripts(client)
    for name in SCRIPT_NAMES:
        s._scripts[name] = client.register_script(STRICT + script_source(name))
    return s


def as_cluster(client: Redis) -> RedisCluster:
    assert isinstance(client, RedisCluster)
    return client


def shard_of(client: Redis, tenant: str) -> ClusterNode:
    """The primary that owns the tenant's slot."""
    node = as_cluster(client).get_node_from_key(TenantKeys(tenant).anchor)
    assert node is not None
    return node


def shards(client: Redis) -> list[ClusterNode]:
    """The primaries, in slot order (the first owns slot 0)."""
    rc = as_cluster(client)
    first: dict[str, int] = {}
    for slot, nodes in rc.nodes_manager.slots_cache.items():
        if nodes:
            first[nodes[0].name] = min(slot, first.get(nodes[0].name, slot))
    return sorted(rc.get_primaries(), key=lambda n: first[n.name])


def tenant_on(client: Redis, shard: int) -> str:
    """A fresh tenant id whose keys live on the `shard`-th primary."""
    want = shards(client)[shard].name
    for _ in itertools.count():
        tid = new_tenant_id()
        if shard_of(client, tid).name == want:
            return tid
    raise AssertionError("unreachable")
