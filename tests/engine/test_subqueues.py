"""Per-contact skill requirements: routed through sub-queues, never to an unskilled agent."""

from __future__ import annotations

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from ..invariants import assert_invariants


async def test_contact_skills_beyond_the_queue_route_only_to_skilled_agents(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("en", skills={"billing": 3}), AgentStatus.AVAILABLE)
    clock.advance(1)
    await eng.upsert_agent(agent("es", skills={"billing": 3, "spanish": 4}), AgentStatus.AWAY)
    # "en" is idle longest, but cannot speak Spanish: the contact waits
    r = await eng.create_contact(NewContact(channel="voice", queue="voice", skills={"spanish": 3}))
    assert r.state is ContactState.QUEUED and r.queue == "voice"
    c = await eng.get_contact(r.contact_id)
    assert c.queue == "voice" and c.skills == {"spanish": 3}
    # a plain contact still goes to "en"
    plain = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    assert plain.agent == "en"
    # the Spanish speaker becomes available and gets the Spanish contact
    await eng.set_agent_status("es", AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "es"
    evs = [
        {k.decode(): v.decode() for k, v in f.items()}
        for _, f in await redis.xrange(eng.keys.events)
    ]
    reserved = [e for e in evs if e["type"] == "contact.reserved" and e["contact"] == r.contact_id]
    assert reserved[0]["queue"] == "voice" and reserved[0]["subqueue"].startswith("voice~")
    await assert_invariants(redis, eng.tenant)


async def test_agent_registered_after_the_subqueue_gets_its_lane(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    r = await eng.create_contact(NewContact(channel="chat", queue="chat", skills={"french": 2}))
    assert r.state is ContactState.QUEUED
    await eng.upsert_agent(agent("fr1", skills={"french": 1}), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).state is ContactState.QUEUED
    await eng.upsert_agent(agent("fr2", skills={"french": 2}), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "fr2"
    # a second contact with the same requirement reuses the sub-queue
    await eng.create_contact(NewContact(channel="chat", queue="chat", skills={"french": 2}))
    assert await redis.hlen(eng.keys.subqueues) == 1
    await assert_invariants(redis, eng.tenant)


async def test_requirement_covered_by_the_queue_needs_no_subqueue(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    await eng.upsert_agent(agent("a1", skills={"billing": 4}), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice", skills={"billing": 2}))
    assert r.agent == "a1"
    assert await redis.hlen(eng.keys.subqueues) == 0


async def test_transfer_carries_the_requirement_to_the_new_queue(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    await eng.upsert_agent(agent("plain", skills={}), AgentStatus.AWAY)
    r = await eng.create_contact(NewContact(channel="chat", queue="chat", skills={"german": 3}))
    await eng.set_agent_status("plain", AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).state is ContactState.QUEUED
    t = await eng.transfer(r.contact_id, queue="chat")
    assert t.state is ContactState.QUEUED and t.agent is None
    await eng.upsert_agent(agent("de", skills={"german": 5}), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "de"
    await assert_invariants(redis, eng.tenant)


TWO_CHAT_QUEUES = """
[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.sales]
channel = "chat"
pools = ["inhouse"]

[queues.care]
channel = "chat"
pools = ["inhouse", "near"]
"""


async def test_transfer_to_another_queue_creates_its_subqueue(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(TWO_CHAT_QUEUES)
    await eng.upsert_agent(agent("plain", skills={}, capacity={"chat": 1}), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="chat", queue="sales", skills={"dutch": 2}))
    assert r.state is ContactState.QUEUED  # "plain" does not speak Dutch
    t = await eng.transfer(r.contact_id, queue="care")
    assert t.state is ContactState.QUEUED and t.agent is None and t.queue == "care"
    await eng.upsert_agent(
        agent("nl", skills={"dutch": 3}, capacity={"chat": 1}), AgentStatus.AVAILABLE
    )
    c = await eng.get_contact(r.contact_id)
    assert c.agent == "nl" and c.queue == "care"
    evs = [
        {k.decode(): v.decode() for k, v in f.items()}
        for _, f in await redis.xrange(eng.keys.events)
    ]
    moved = next(e for e in evs if e["type"] == "contact.transferred")
    assert moved["from_queue"] == "sales" and moved["queue"] == "care"
    await assert_invariants(redis, eng.tenant)


async def test_opening_a_pool_dispatches_subqueue_contacts(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(TWO_CHAT_QUEUES)
    await eng.set_pool_open("near", False)
    await eng.upsert_agent(
        agent("v1", pool="near", skills={"dutch": 3}, capacity={"chat": 1}), AgentStatus.AVAILABLE
    )
    r = await eng.create_contact(NewContact(channel="chat", queue="care", skills={"dutch": 2}))
    assert r.state is ContactState.QUEUED
    assert await eng.set_pool_open("near", True) == 1
    assert (await eng.get_contact(r.contact_id)).agent == "v1"
    await assert_invariants(redis, eng.tenant)


async def test_config_reapply_does_not_undo_a_concurrent_agent_change(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    version = (await redis.hget(eng.keys.agent("a1"), "ver")).decode()
    # another process raises a1's chat capacity after our snapshot ...
    await eng.upsert_agent(agent("a1", capacity={"chat": 3}))
    # ... so a re-lane from the old snapshot is refused, and changes nothing
    outcome, _ = await eng._upsert(agent("a1", capacity={"chat": 1}), AgentStatus.OFFLINE, version)
    assert outcome == "stale"
    assert (await eng.get_agent("a1")).capacity == {"chat": 3}
    await eng.apply_config()
    assert (await eng.get_agent("a1")).capacity == {"chat": 3}
