"""Two tenants on different shards: transitions, timers, random traffic, invariants.

Both tenants work at the same time, so the batched script calls of one event-loop
tick go to two shards. Scripts are strict (`#!lua`, see conftest.py): a key
outside the tenant's slot would fail the call.
"""

from __future__ import annotations

import asyncio
import random

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.engine import Engine
from router.errors import SwitchboardError
from router.keys import TenantKeys
from router.model import AgentStatus, ContactState

from ..conftest import EngineFactory
from ..engine.test_routing import NO_PRESENCE
from ..engine.test_transitions import chat, events, ready_agent, voice
from ..factories import agent
from ..invariants import assert_invariants
from .conftest import as_cluster, shard_of, shards, tenant_on


async def keys_on_node(host: str, port: int, pattern: str) -> list[bytes]:
    """The keys one node holds, read with a plain client on that node alone."""
    async with Redis(host=host, port=port) as node:
        return [k async for k in node.scan_iter(match=pattern, count=1000)]


async def two_engines(
    make_engine: EngineFactory, redis: Redis, clock: VirtualClock
) -> tuple[Engine, Engine]:
    a = await make_engine(NO_PRESENCE, clock, tenant=tenant_on(redis, 0))
    b = await make_engine(NO_PRESENCE, clock, tenant=tenant_on(redis, 2))
    return a, b


async def test_tenants_live_on_their_own_shard(make_engine: EngineFactory, redis: Redis) -> None:
    clock = VirtualClock()
    a, b = await two_engines(make_engine, redis, clock)
    rc = as_cluster(redis)
    nodes = shards(redis)
    for eng, shard in ((a, 0), (b, 2)):
        slot = int(await rc.execute_command("CLUSTER KEYSLOT", eng.keys.anchor))
        assert rc.nodes_manager.get_node_from_slot(slot).name == nodes[shard].name
        assert shard_of(redis, eng.tenant.id).name == nodes[shard].name
        await ready_agent(eng, "a1")
        await eng.create_contact(chat(id="c1"))
    # each tenant's keys are all on its own node, and on no other
    for eng, shard in ((a, 0), (b, 2)):
        pattern = eng.keys.pattern()
        for i, node in enumerate(nodes):
            found = await keys_on_node(node.host, node.port, pattern)
            if i == shard:
                assert TenantKeys(eng.tenant.id).anchor.encode() in found
                assert len(found) > 5
            else:
                assert found == []


async def test_main_transitions_on_two_shards_at_once(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    engines = await two_engines(make_engine, redis, clock)

    async def life(eng: Engine) -> list[str]:
        await ready_agent(eng, "a1", capacity={"chat": 1, "voice": 1})
        await ready_agent(eng, "a2", capacity={"chat": 1, "voice": 1})
        r1 = await eng.create_contact(voice(id="c1"))  # voice has a wrap-up
        assert r1.state is ContactState.RESERVED
        other = await eng.reject("c1", r1.agent or "")  # goes to the other agent
        assert other is not None and other != r1.agent
        await eng.accept("c1", other)
        assert await eng.complete("c1", other) is ContactState.WRAP_UP
        assert await eng.finish_wrap_up("c1", other) is ContactState.COMPLETED
        await eng.create_contact(chat(id="c2"))
        await eng.abandon("c2", "hangup")
        assert (await eng.get_contact("c2")).state is ContactState.ABANDONED
        return [e["type"] for e in await events(eng)]

    types_a, types_b = await asyncio.gather(*(life(e) for e in engines))
    assert types_a == types_b
    for t in (
        "contact.received",
        "contact.reserved",
        "contact.reservation_rejected",
        "contact.assigned",
        "contact.wrap_up",
        "contact.completed",
        "contact.abandoned",
    ):
        assert t in types_a, t


async def test_timers_on_two_shards(make_engine: EngineFactory, redis: Redis) -> None:
    clock = VirtualClock()
    engines = await two_engines(make_engine, redis, clock)

    async def offer(eng: Engine) -> None:
        await ready_agent(eng, "a1", capacity={"chat": 1})
        assert (await eng.create_contact(chat(id="c1"))).agent == "a1"

    await asyncio.gather(*(offer(e) for e in engines))
    clock.advance(29.999)
    assert await asyncio.gather(*(e.run_due_timers() for e in engines)) == [0, 0]
    clock.advance(0.001)  # chat offers expire after 30 s
    assert await asyncio.gather(*(e.run_due_timers() for e in engines)) == [1, 1]
    for eng in engines:
        c = await eng.get_contact("c1")
        assert c.agent == "a1" or c.state is ContactState.QUEUED
        evs = [e["type"] for e in await events(eng)]
        assert "contact.reservation_expired" in evs
        await assert_invariants(redis, eng.tenant)


async def random_traffic(eng: Engine, clock: VirtualClock, rng: random.Random, steps: int) -> None:
    agents = [f"a{i}" for i in range(4)]
    for aid in agents:
        await eng.upsert_agent(
            agent(aid, capacity={"chat": rng.randint(1, 2), "voice": 1}), AgentStatus.AVAILABLE
        )
    made: list[str] = []
    for step in range(steps):
        op = rng.random()
        try:
            if op < 0.35 or not made:
                cid = f"c{step}"
                await eng.create_contact(chat(id=cid) if rng.random() < 0.6 else voice(id=cid))
                made.append(cid)
                continue
            cid = rng.choice(made)
            c = await eng.get_contact(cid)
            if c.state is ContactState.RESERVED and c.agent:
                if rng.random() < 0.7:
                    await eng.accept(cid, c.agent)
                else:
                    await eng.reject(cid, c.agent)
            elif c.state is ContactState.ASSIGNED and c.agent:
                await eng.complete(cid, c.agent, skip_wrap_up=rng.random() < 0.5)
            elif c.state is ContactState.QUEUED and rng.random() < 0.3:
                await eng.abandon(cid, "hangup")
            elif op > 0.9:
                aid = rng.choice(agents)
                status = rng.choice([AgentStatus.AVAILABLE, AgentStatus.AWAY])
                await eng.set_agent_status(aid, status)
        except SwitchboardError:
            pass  # a move the state no longer allows: refused cleanly
        if step % 10 == 9:
            clock.advance(rng.choice([1, 5, 31]))
            await eng.run_due_timers()


async def test_random_traffic_keeps_invariants_on_both_shards(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    engines = await two_engines(make_engine, redis, clock)
    await asyncio.gather(
        *(random_traffic(e, clock, random.Random(i), 150) for i, e in enumerate(engines))
    )
    for eng in engines:
        s = await assert_invariants(redis, eng.tenant)
        assert len(s.contacts) > 20 and len(s.events) > 50
