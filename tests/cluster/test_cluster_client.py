"""The cluster client itself: URL, startup checks, transactions, batched scripts."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from router.errors import AgentNotFound, ServerError
from router.keys import TenantKeys
from router.store.cluster import is_cluster, transaction
from router.store.connection import connect, inspect_servers, is_cluster_url, open_checked
from router.store.scripts import Scripts

from .conftest import STRICT, as_cluster, shard_of, shards, tenant_on


async def test_cluster_url_gives_a_cluster_client_with_every_primary(
    redis: Redis, cluster_url: str
) -> None:
    assert is_cluster_url(cluster_url) and not is_cluster_url("redis://127.0.0.1:6379")
    assert is_cluster(redis)
    assert len(shards(redis)) == 3
    # one seed is enough: the client learns the other primaries from it
    one = cluster_url.split(",")[0]
    client = await connect(one)
    try:
        assert len(as_cluster(client).get_primaries()) == 3
        assert await client.set("sb:{seed-test}:x", b"1") is True
        assert await client.get("sb:{seed-test}:x") == b"1"
        await client.delete("sb:{seed-test}:x")
    finally:
        await client.aclose()
    # several seeds, and redis:// query options applied to every node
    client = await connect(cluster_url + "?socket_timeout=3.5&health_check_interval=7")
    try:
        kwargs = as_cluster(client).nodes_manager.connection_kwargs
        assert kwargs["socket_timeout"] == 3.5 and kwargs["health_check_interval"] == 7
        assert await client.ping()
    finally:
        await client.aclose()


async def test_startup_checks_read_every_primary(redis: Redis, cluster_url: str) -> None:
    servers = await inspect_servers(redis)
    assert sorted(name for name, _ in servers) == sorted(n.name for n in shards(redis))
    for _, info in servers:
        assert info.product == "valkey" and info.cluster and info.aof_enabled
        assert info.maxmemory_policy == "noeviction"
    # one primary that would evict keys fails the whole check, naming the node
    bad = shards(redis)[1]
    await as_cluster(redis).config_set("maxmemory-policy", "allkeys-lru", target_nodes=bad)
    try:
        with pytest.raises(ServerError, match=f"cluster node {bad.name}: maxmemory-policy"):
            await open_checked(cluster_url)
    finally:
        await as_cluster(redis).config_set("maxmemory-policy", "noeviction", target_nodes=bad)
    client, info = await open_checked(cluster_url)
    await client.aclose()
    assert info.cluster


async def test_bad_cluster_urls_fail_clearly() -> None:
    with pytest.raises(ServerError, match="only database 0"):
        await connect("redis+cluster://127.0.0.1:1/3")
    with pytest.raises(ServerError, match="cannot connect to Redis Cluster at redis"):
        await connect("redis+cluster://u:secret@127.0.0.1:1", socket_connect_timeout=0.2)
    try:
        await connect("redis+cluster://u:secret@127.0.0.1:1", socket_connect_timeout=0.2)
    except ServerError as exc:
        assert "secret" not in str(exc)


async def test_transaction_runs_on_the_tenants_shard_and_parses_replies(redis: Redis) -> None:
    for shard in range(3):
        k = TenantKeys(tenant_on(redis, shard))
        try:
            pipe = transaction(redis)
            pipe.hincrby(k.config, "version", 1)
            pipe.hset(k.config, mapping={"source": "x", "text": "y"})
            pipe.set(k.prefix + "t", "v")
            pipe.hget(k.config, "text")
            assert await pipe.execute() == [1, 2, True, b"y"]
            # an error reply inside EXEC is raised, as redis-py's pipeline does
            pipe = transaction(redis)
            pipe.hincrby(k.config, "version", 1)
            pipe.hincrby(k.config, "text", 1)
            with pytest.raises(ResponseError, match="not an integer"):
                await pipe.execute()
            assert await redis.hget(k.config, "version") == b"2"  # EXEC ran the rest
        finally:
            await redis.delete(k.config, k.prefix + "t")


async def test_transaction_after_the_client_lost_its_slot_map(redis: Redis) -> None:
    """redis-py's own cluster transaction fails here ("Event loop is closed")."""
    k = TenantKeys(tenant_on(redis, 2))
    as_cluster(redis)._initialize = True
    pipe = transaction(redis)
    pipe.set(k.prefix + "t", "1")
    pipe.get(k.prefix + "t")
    try:
        assert await pipe.execute() == [True, b"1"]
    finally:
        await redis.delete(k.prefix + "t")


async def test_batched_scripts_on_three_shards_and_noscript(redis: Redis) -> None:
    """Calls of one tick go out per shard; each gets its own reply, even after the
    script cache was lost on every node (restart, SCRIPT FLUSH)."""
    scripts = Scripts(redis)
    tenants = [tenant_on(redis, i % 3) for i in range(12)]
    assert len({shard_of(redis, t).name for t in tenants}) == 3

    async def round_() -> list[object]:
        return await asyncio.gather(
            *[
                scripts.run("heartbeat", [TenantKeys(t).anchor], [1000, f"nobody-{t}"])
                for t in tenants
            ],
            return_exceptions=True,
        )

    assert [type(r) for r in await round_()] == [AgentNotFound] * 12
    rc = as_cluster(redis)
    await rc.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.PRIMARIES)
    for node in shards(redis):
        assert await rc.execute_command(
            "SCRIPT EXISTS", scripts.sha("heartbeat"), target_nodes=node
        ) == [False]
    replies = await round_()
    assert [type(r) for r in replies] == [AgentNotFound] * 12, replies
    assert all(f"nobody-{t}" in str(r) for t, r in zip(tenants, replies, strict=True))


async def test_strict_scripts_refuse_a_key_of_another_slot(redis: Redis) -> None:
    """The guard the other cluster tests rely on: `#!lua` scripts keep to one slot."""
    a, b = TenantKeys(tenant_on(redis, 0)), TenantKeys(tenant_on(redis, 0))
    assert shard_of(redis, a.tenant).name == shard_of(redis, b.tenant).name
    script = redis.register_script(STRICT + "return redis.call('EXISTS', ARGV[1])")
    assert await script(keys=[a.anchor], args=[a.prefix + "x"]) == 0
    with pytest.raises(ResponseError, match="same slot"):
        await script(keys=[a.anchor], args=[b.prefix + "x"])


async def test_a_stale_slot_map_is_followed_by_scripts_and_transactions(
    cluster_url: str,
) -> None:
    """After a failover or resharding the client's map points at the wrong shard:
    the MOVED reply (nothing ran) is followed, and the map is read again."""
    client = await connect(cluster_url)
    try:
        rc = as_cluster(client)
        k = TenantKeys(tenant_on(client, 0))
        wrong = shards(client)[1]
        slot = rc.keyslot(k.anchor)

        def misroute() -> None:
            rc.nodes_manager.slots_cache[slot] = [wrong]
            assert shard_of(client, k.tenant).name == wrong.name

        misroute()
        scripts = Scripts(client)
        with pytest.raises(AgentNotFound):
            await scripts.run("heartbeat", [k.anchor], [1000, "nobody"])
        assert shard_of(client, k.tenant).name == shards(client)[0].name  # map refreshed
        misroute()
        pipe = transaction(client)
        pipe.set(k.prefix + "t", "1")
        pipe.get(k.prefix + "t")
        assert await pipe.execute() == [True, b"1"]
        assert shard_of(client, k.tenant).name == shards(client)[0].name
        await client.delete(k.prefix + "t")
    finally:
        await client.aclose()
