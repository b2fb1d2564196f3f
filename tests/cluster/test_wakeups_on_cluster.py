"""Offer wake-ups on the cluster: one subscription per shard, shared by its tenants."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode

from router.engine import Engine
from router.wakeups import OfferWakeups

from ..conftest import EngineFactory
from ..engine.test_routing import NO_PRESENCE
from ..engine.test_transitions import chat, ready_agent
from .conftest import as_cluster, shard_of, shards, tenant_on


async def pubsub_clients(redis: Redis, node: ClusterNode) -> int:
    """Connections in subscriber mode on `node`."""
    clients = await as_cluster(redis).client_list(_type="pubsub", target_nodes=node)
    return len(clients)


async def test_one_reader_per_shard_wakes_every_tenants_long_polls(
    make_engine: EngineFactory, redis: Redis
) -> None:
    engines: list[Engine] = [
        await make_engine(NO_PRESENCE, tenant=tenant_on(redis, i % 3)) for i in range(6)
    ]
    nodes = shards(redis)
    assert {shard_of(redis, e.tenant.id).name for e in engines} == {n.name for n in nodes}
    before = [await pubsub_clients(redis, n) for n in nodes]
    wakeups = OfferWakeups(redis, [e.tenant.id for e in engines])
    stop = asyncio.Event()
    task = asyncio.create_task(wakeups.run(stop))
    try:
        await asyncio.wait_for(wakeups.ready.wait(), timeout=10)
        # six tenants, three shards: one subscribed connection on each shard
        assert [await pubsub_clients(redis, n) for n in nodes] == [b + 1 for b in before]
        for eng in engines:
            await ready_agent(eng, "a1", capacity={"chat": 1})
        latencies = []
        for eng in engines:
            with wakeups.waiter(eng.tenant.id, "a1") as woken:
                started = time.monotonic()
                r = await eng.create_contact(chat(id="c1"))  # the offer script SPUBLISHes
                assert r.agent == "a1"
                await asyncio.wait_for(woken.wait(), timeout=5)
                latencies.append(time.monotonic() - started)
        # woken by the message, not by a poll of the shards in turn (0.5 s each)
        assert max(latencies) < 0.4, latencies
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert [await pubsub_clients(redis, n) for n in nodes] == before
