"""Capacity changes while an agent holds work."""

from __future__ import annotations

from redis.asyncio import Redis

from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from ..invariants import assert_invariants


async def test_capacity_cut_returns_pending_offers_and_keeps_accepted_work(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    await eng.upsert_agent(agent("a1", capacity={"chat": 3}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("a2", capacity={"chat": 3}), AgentStatus.AWAY)
    ids = [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(3)
    ]
    await eng.accept(ids[0], "a1")
    # a1 now holds one accepted chat and two offers; cut chat capacity to 1
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}))
    states = [(await eng.get_contact(c)).state for c in ids]
    assert states == [ContactState.ASSIGNED, ContactState.QUEUED, ContactState.QUEUED]
    a1 = await eng.get_agent("a1")
    assert a1.load == {"chat": 1} and a1.capacity == {"chat": 1}
    # the returned contacts go to the next agent that can take them
    await eng.set_agent_status("a2", AgentStatus.AVAILABLE)
    assert {(await eng.get_contact(c)).agent for c in ids[1:]} == {"a2"}
    evs = [
        {k.decode(): v.decode() for k, v in f.items()}
        for _, f in await redis.xrange(eng.keys.events)
    ]
    returned = [e for e in evs if e["type"] == "contact.reservation_rejected"]
    assert {e["contact"] for e in returned} == set(ids[1:])
    assert {e["reason"] for e in returned} == {"capacity_reduced"}
    await assert_invariants(redis, eng.tenant)


async def test_transfer_then_reoffer_to_the_same_agent_counts_its_load_once(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """Found by the state machine: one script touching the same agent through two
    paths must not charge its load from a stale count."""
    eng = await make_engine()
    await eng.upsert_agent(
        agent("a3", skills={"billing": 5, "spanish": 4}, capacity={"chat": 1, "voice": 1}),
        AgentStatus.AVAILABLE,
    )
    chat = await eng.create_contact(NewContact(channel="chat", queue="chat", id="k1"))
    assert chat.agent == "a3"
    # a Spanish call that prefers a3 waits for it (a3 is on a chat, voice is exclusive)
    call = await eng.create_contact(
        NewContact(
            channel="voice", queue="voice", id="k2", preferred_agent="a3", skills={"spanish": 2}
        )
    )
    assert call.state is ContactState.QUEUED
    # moving the chat frees a3 and re-offers the chat to it; the waiting call must not
    # also be offered on top of it
    await eng.transfer("k1", queue="chat")
    a3 = await eng.get_agent("a3")
    assert sum(a3.load.values()) == len(a3.contacts) == 1
    await assert_invariants(redis, eng.tenant)
