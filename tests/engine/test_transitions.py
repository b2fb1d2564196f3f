"""Every transition script: its success path, and each failure path failing cleanly.

"Cleanly" means two things, both checked: the call raises the typed error of
router/errors.py, and the tenant's Redis state is byte-for-byte what it was
before (every key's type, content and TTL flag, and the event stream).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from router.clock import VirtualClock
from router.engine import Engine
from router.errors import (
    AgentNotFound,
    AgentUnavailable,
    ContactNotFound,
    DuplicateContact,
    InvalidState,
    NoCapacity,
    NotEligible,
    OfferExpired,
    PoolNotFound,
    QueueNotFound,
    SwitchboardError,
    ValidationError,
    WrongAgent,
)
from router.model import AgentStatus, ContactState, Customer, NewContact
from router.store.scripts import Scripts

from ..conftest import EngineFactory
from ..factories import agent

# -- helpers shared by the other engine test modules ---------------------------


async def snapshot(eng: Engine) -> dict[bytes, Any]:
    """Every key of the tenant: type, full content and whether it has a TTL.

    Content, not DUMP bytes: a hashtable-encoded hash or set may serialize its
    entries in a different order after mere reads (incremental rehashing).
    """
    r = eng.redis
    out: dict[bytes, Any] = {}
    async for key in r.scan_iter(match=eng.keys.pattern(), count=1000):
        kind = (await r.type(key)).decode()
        content: Any
        if kind == "string":
            content = await r.get(key)
        elif kind == "hash":
            content = await r.hgetall(key)
        elif kind == "set":
            content = sorted(await r.smembers(key))
        elif kind == "zset":
            content = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            content = (await r.xlen(key), await r.xrange(key))
        else:  # pragma: no cover - the engine uses no other type
            content = kind
        out[key] = (kind, content, await r.pttl(key) > 0)
    out[b"<stream length>"] = await r.xlen(eng.keys.events)
    return out


async def events(eng: Engine) -> list[dict[str, str]]:
    """The tenant's event stream, decoded, oldest first."""
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await eng.redis.xrange(eng.keys.events)
    ]


async def events_since(eng: Engine, n: int) -> list[dict[str, str]]:
    return (await events(eng))[n:]


async def n_events(eng: Engine) -> int:
    return int(await eng.redis.xlen(eng.keys.events))


async def fails_cleanly(
    eng: Engine,
    exc: type[SwitchboardError],
    call: Callable[..., Awaitable[Any]],
    *args: Any,
    **kwargs: Any,
) -> SwitchboardError:
    """`call` raises exactly `exc` and leaves every key of the tenant unchanged."""
    before = await snapshot(eng)
    with pytest.raises(SwitchboardError) as info:
        await call(*args, **kwargs)
    assert type(info.value) is exc, f"expected {exc.__name__}, got {info.value!r}"
    after = await snapshot(eng)
    assert after == before, "a failing transition changed the tenant's state"
    return info.value


def voice(**kw: Any) -> NewContact:
    return NewContact(channel="voice", queue="voice", **kw)


def chat(**kw: Any) -> NewContact:
    return NewContact(channel="chat", queue="chat", **kw)


async def ready_agent(eng: Engine, aid: str, pool: str = "inhouse", **kw: Any) -> None:
    await eng.upsert_agent(agent(aid, pool, **kw), AgentStatus.AVAILABLE)


# -- success paths ----------------------------------------------------------------


async def test_create_contact_without_agent_queues_it(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    now = clock.now_ms()
    r = await eng.create_contact(voice(id="c1", priority=2, subject="s" * 500))
    assert (r.contact_id, r.state, r.agent, r.queue, r.duplicate) == (
        "c1",
        ContactState.QUEUED,
        None,
        "voice",
        False,
    )
    c = await eng.get_contact("c1")
    assert c.state is ContactState.QUEUED and c.stage == 0 and c.created_ms == now
    assert c.priority == 2 and len(c.subject) == 300
    # waiting set of stage 0, score = arrival - priority * aging (60 s)
    assert await eng.redis.zscore(eng.keys.waiting("voice", "voice", 0), "c1") == now - 120_000
    # the next overflow stage (30 s) is scheduled
    assert await eng.redis.zscore(eng.keys.timers, "s|c1") == now + 30_000
    evs = await events(eng)
    assert [e["type"] for e in evs] == ["contact.received", "contact.queued"]
    assert evs[0]["contact"] == "c1" and evs[0]["requested_queue"] == "voice"
    assert evs[1]["priority"] == "2" and evs[1]["created"] == str(now)


async def test_create_contact_with_ready_agent_reserves_it(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    r = await eng.create_contact(voice(id="c1"))
    assert r.state is ContactState.RESERVED and r.agent == "a1"
    c = await eng.get_contact("c1")
    assert c.agent == "a1" and c.pool == "inhouse"
    assert c.offer_deadline_ms == clock.now_ms() + 15_000
    a = await eng.get_agent("a1")
    assert a.load == {"voice": 1} and a.contacts == ("c1",)
    # full on voice and blocked on chat by the cross-channel rule: in no ready set
    assert await eng.redis.zscore(eng.keys.ready("voice", "voice", 0, "inhouse"), "a1") is None
    assert await eng.redis.zscore(eng.keys.ready("chat", "chat", 0, "inhouse"), "a1") is None
    assert await eng.redis.zscore(eng.keys.timers, "o|c1") == clock.now_ms() + 15_000
    evs = await events(eng)
    assert [e["type"] for e in evs][-3:] == [
        "contact.received",
        "contact.queued",
        "contact.reserved",
    ]
    res = evs[-1]
    assert res["agent"] == "a1" and res["pool"] == "inhouse"
    assert res["deadline"] == str(clock.now_ms() + 15_000) and res["wait_ms"] == "0"


async def test_accept_assigns_and_clears_offer_timer(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    clock.advance(4)
    await eng.accept("c1", "a1")
    c = await eng.get_contact("c1")
    assert c.state is ContactState.ASSIGNED and c.assigned_ms == clock.now_ms()
    assert await eng.redis.zscore(eng.keys.timers, "o|c1") is None
    ev = (await events(eng))[-1]
    assert ev["type"] == "contact.assigned" and ev["agent"] == "a1"
    assert ev["wait_ms"] == "4000" and ev["ring_ms"] == "4000"
    assert (await eng.get_agent("a1")).load == {"voice": 1}


async def test_reject_requeues_and_reoffers_to_next_agent(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    clock.advance(1)
    await ready_agent(eng, "a2")
    r = await eng.create_contact(voice(id="c1"))
    assert r.agent == "a1"  # idle longest
    score = clock.now_ms()
    clock.advance(2)
    other = await eng.reject("c1", "a1", "busy")
    assert other == "a2"
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "a2"
    a1 = await eng.get_agent("a1")
    assert a1.load == {} and a1.missed_offers == 1 and a1.status is AgentStatus.AVAILABLE
    assert await eng.redis.smembers(eng.keys.declined("c1")) == {b"a1"}
    evs = await events(eng)
    rej = next(e for e in evs if e["type"] == "contact.reservation_rejected")
    assert rej["agent"] == "a1" and rej["reason"] == "busy" and rej["wait_ms"] == "2000"
    assert evs[-1]["type"] == "contact.reserved" and evs[-1]["agent"] == "a2"
    # a2 rejects too: nobody left, it waits with its original score
    assert await eng.reject("c1", "a2") is None
    assert await eng.redis.zscore(eng.keys.waiting("voice", "voice", 0), "c1") == score
    assert (await events(eng))[-1]["reason"] == "declined"


async def test_complete_without_wrap_up_frees_agent_and_expires_record(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    await eng.create_contact(chat(id="c1"))
    await eng.accept("c1", "a1")
    clock.advance(30)
    assert await eng.complete("c1", "a1", "resolved") is ContactState.COMPLETED
    c = await eng.get_contact("c1")
    assert c.state is ContactState.COMPLETED and c.completed_ms == clock.now_ms()
    assert c.disposition == "resolved"
    assert await eng.redis.pttl(eng.keys.contact("c1")) > 0
    a = await eng.get_agent("a1")
    assert a.load == {} and a.contacts == () and a.idle_since_ms == clock.now_ms()
    assert await eng.redis.zscore(eng.keys.ready("voice", "voice", 0, "inhouse"), "a1") is not None
    ev = (await events(eng))[-1]
    assert ev["type"] == "contact.completed" and ev["talk_ms"] == "30000"
    assert ev["wrap_ms"] == "0" and ev["handle_ms"] == "30000"


async def test_complete_skip_wrap_up_and_supervisor_complete(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.accept("c1", "a1")
    # voice has 10 s wrap-up; skip_wrap_up goes straight to completed
    assert await eng.complete("c1", "a1", skip_wrap_up=True) is ContactState.COMPLETED
    await eng.create_contact(voice(id="c2"))
    await eng.accept("c2", "a1")
    # agent '' (None): a supervisor completes on the agent's behalf, into wrap-up
    assert await eng.complete("c2", None, "x") is ContactState.WRAP_UP
    assert await eng.redis.zscore(eng.keys.timers, "w|c2") is not None
    assert await eng.finish_wrap_up("c2") is ContactState.COMPLETED
    assert (await eng.get_contact("c2")).disposition == "x"
    assert await eng.redis.zscore(eng.keys.timers, "w|c2") is None


async def test_abandon_queued_and_reserved(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.create_contact(voice(id="q1"))
    clock.advance(5)
    await eng.abandon("q1")
    c = await eng.get_contact("q1")
    assert c.state is ContactState.ABANDONED
    assert await eng.redis.zcard(eng.keys.waiting("voice", "voice", 0)) == 0
    assert await eng.redis.zscore(eng.keys.timers, "s|q1") is None
    ev = (await events(eng))[-1]
    assert ev["type"] == "contact.abandoned" and ev["reason"] == "customer_left"
    assert ev["wait_ms"] == "5000" and ev["from_state"] == "queued"

    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="r1"))
    await eng.create_contact(voice(id="r2"))  # waits behind r1
    await eng.abandon("r1", "hung_up")
    ev = next(e for e in await events(eng) if e.get("contact") == "r1" and "from_state" in e)
    assert ev["from_state"] == "reserved" and ev["agent"] == "a1" and ev["reason"] == "hung_up"
    # the freed agent is offered the next contact at once
    assert (await eng.get_contact("r2")).agent == "a1"
    assert (await eng.get_agent("a1")).contacts == ("r2",)


async def test_manual_offer_reserves_for_named_agent(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.reject("c1", "a1")  # a1 is now skipped by routing for c1
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED
    deadline = await eng.offer("c1", "a1")  # a supervisor pushes it anyway
    assert deadline == clock.now_ms() + 15_000
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "a1"
    assert c.why is not None and c.why["strategy"] == "manual" and c.why["chosen"] == "a1"
    assert (await events(eng))[-1]["type"] == "contact.reserved"


async def test_agent_upsert_creates_and_updates_lanes(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    st = await eng.upsert_agent(agent("a1", skills={"billing": 1}), AgentStatus.AVAILABLE)
    assert st is AgentStatus.AVAILABLE
    lanes = await eng.redis.hgetall(eng.keys.agent_lanes("a1"))
    # billing 1 < 3 and < 2: never eligible for voice; chat and email at stage 0
    assert lanes == {b"chat:chat": b"0:0", b"email:email": b"0:0"}
    evs = await events(eng)
    assert [e["type"] for e in evs] == ["agent.capacity_changed", "agent.status_changed"]
    assert evs[0]["capacity"] == "voice=1,chat=2,email=3" and evs[1]["status"] == "available"
    # update: more skill, no chat; status argument is ignored for an existing agent
    st = await eng.upsert_agent(
        agent("a1", skills={"billing": 2}, capacity={"voice": 1}), AgentStatus.OFFLINE
    )
    assert st is AgentStatus.AVAILABLE
    lanes = await eng.redis.hgetall(eng.keys.agent_lanes("a1"))
    assert lanes == {b"voice:voice": b"2:2"}
    a = await eng.get_agent("a1")
    assert a.capacity == {"voice": 1} and a.skills == {"billing": 2}
    assert await eng.redis.zscore(eng.keys.ready("chat", "chat", 0, "inhouse"), "a1") is None
    assert await eng.redis.zscore(eng.keys.ready("voice", "voice", 2, "inhouse"), "a1") is not None
    assert (await events(eng))[-1]["type"] == "agent.capacity_changed"
    assert await eng.agent_ids() == ["a1"]


async def test_agent_status_away_returns_offers_and_available_takes_work(
    make_engine: EngineFactory,
) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    assert await eng.set_agent_status("a1", AgentStatus.AWAY, "lunch") is True
    c = await eng.get_contact("c1")
    assert c.state is ContactState.QUEUED and c.agent is None
    a = await eng.get_agent("a1")
    assert a.status is AgentStatus.AWAY and a.reason == "lunch" and a.load == {}
    evs = await events(eng)
    assert evs[-2]["type"] == "agent.status_changed" and evs[-2]["from"] == "available"
    assert evs[-1]["type"] == "contact.reservation_rejected"
    assert evs[-1]["reason"] == "agent_away" and evs[-1]["agent"] == "a1"
    # not a miss: the agent is not skipped later and its miss count stays 0
    assert a.missed_offers == 0
    assert not await eng.redis.exists(eng.keys.declined("c1"))
    n = await n_events(eng)
    assert await eng.set_agent_status("a1", "away", "lunch") is False
    assert await n_events(eng) == n  # no change, no event
    assert await eng.set_agent_status("a1", "available") is True
    assert (await eng.get_contact("c1")).agent == "a1"


async def test_heartbeat_pushes_presence_deadline_without_event(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"))
    await eng.set_agent_status("a1", "available")
    clock.advance(20)
    n = await n_events(eng)
    assert await eng.heartbeat("a1") is AgentStatus.AVAILABLE
    assert await n_events(eng) == n
    assert await eng.redis.zscore(eng.keys.timers, "h|a1") == clock.now_ms() + 60_000
    assert (await eng.get_agent("a1")).last_seen_ms == clock.now_ms()


async def test_pool_gate_close_and_open_events(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    assert await eng.set_pool_open("near", False, "contract_cap") == 0
    assert not await eng.pool_is_open("near")
    n = await n_events(eng)
    await eng.set_pool_open("near", False)  # already closed: no event
    assert await n_events(eng) == n
    await eng.set_pool_open("near", True, "admin")
    assert await eng.pool_is_open("near")
    evs = await events(eng)
    gates = [(e["pool"], e["open"], e["reason"]) for e in evs if e["type"] == "pool.gate_changed"]
    assert gates == [("near", "0", "contract_cap"), ("near", "1", "admin")]


async def test_dispatch_matches_best_contacts_with_ready_agents(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.set_pool_open("inhouse", False)
    await ready_agent(eng, "a1", capacity={"email": 1})
    await ready_agent(eng, "a2", capacity={"email": 1})
    for i in range(3):
        await eng.create_contact(NewContact(channel="email", queue="email", id=f"e{i}"))
        clock.advance(1)
    # open the gate behind the engine's back; dispatch is the catch-up
    await eng.redis.srem(eng.keys.pools_closed, "inhouse")
    assert await eng.dispatch(["email:email"]) == 2
    states = {c: (await eng.get_contact(c)).state for c in ("e0", "e1", "e2")}
    assert states == {
        "e0": ContactState.RESERVED,
        "e1": ContactState.RESERVED,
        "e2": ContactState.QUEUED,
    }
    assert await eng.dispatch(["email:email"]) == 0


# -- failure paths: typed error, nothing changed -------------------------------------


async def test_accept_after_deadline_before_timer_is_offer_expired(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    clock.advance(15)  # deadline reached; the timer has not run
    await fails_cleanly(eng, OfferExpired, eng.accept, "c1", "a1")
    # the timer then requeues it
    assert await eng.run_due_timers() >= 1
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED


async def test_accept_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await ready_agent(eng, "a2")
    await eng.create_contact(voice(id="c1"))  # reserved for a1
    await eng.create_contact(voice(id="c2"))  # reserved for a2
    await eng.create_contact(voice(id="c3"))  # queued
    holder = (await eng.get_contact("c1")).agent
    other = "a2" if holder == "a1" else "a1"
    await fails_cleanly(eng, WrongAgent, eng.accept, "c1", other)
    await fails_cleanly(eng, InvalidState, eng.accept, "c3", "a1")
    await fails_cleanly(eng, ContactNotFound, eng.accept, "nope", "a1")
    await eng.accept("c1", holder)
    await fails_cleanly(eng, InvalidState, eng.accept, "c1", holder)  # already assigned


async def test_complete_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))  # reserved
    await eng.create_contact(voice(id="c2"))  # queued
    await fails_cleanly(eng, InvalidState, eng.complete, "c1", "a1")
    await fails_cleanly(eng, InvalidState, eng.complete, "c2", "a1")
    await eng.accept("c1", "a1")
    await fails_cleanly(eng, WrongAgent, eng.complete, "c1", "a2")
    await fails_cleanly(eng, ContactNotFound, eng.complete, "ghost", "a1")
    await eng.complete("c1", "a1", skip_wrap_up=True)
    # c2 went to a1 when it freed up; c1 is finished
    await fails_cleanly(eng, InvalidState, eng.complete, "c1", "a1")


async def test_reject_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await eng.create_contact(voice(id="q1"))  # queued: nobody ready
    await fails_cleanly(eng, InvalidState, eng.reject, "q1", "a1")
    await ready_agent(eng, "a1")  # takes q1
    await ready_agent(eng, "a2")
    await fails_cleanly(eng, WrongAgent, eng.reject, "q1", "a2")
    await eng.accept("q1", "a1")
    await fails_cleanly(eng, InvalidState, eng.reject, "q1", "a1")  # assigned
    await fails_cleanly(eng, ContactNotFound, eng.reject, "ghost", "a1")


async def test_offer_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "busy")
    await eng.create_contact(voice(id="c0"))
    await eng.accept("c0", "busy")
    # an agent on a chat: the cross-channel rule keeps voice from it
    await ready_agent(eng, "chatter", capacity={"voice": 1, "chat": 2})
    await eng.create_contact(chat(id="ch1"))
    assert (await eng.get_contact("ch1")).agent == "chatter"
    await eng.create_contact(voice(id="c1"))  # queued: nobody is free for voice
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED
    await fails_cleanly(eng, NoCapacity, eng.offer, "c1", "busy")
    await fails_cleanly(eng, NoCapacity, eng.offer, "c1", "chatter")
    await eng.upsert_agent(agent("away1"), AgentStatus.AWAY)
    await fails_cleanly(eng, AgentUnavailable, eng.offer, "c1", "away1")
    await eng.upsert_agent(agent("off1"), AgentStatus.OFFLINE)
    await fails_cleanly(eng, AgentUnavailable, eng.offer, "c1", "off1")
    # a nearshore agent only enters the voice queue at stage 1 (30 s)
    await eng.set_pool_open("near", False)
    await ready_agent(eng, "n1", "near", capacity={"voice": 1})
    await fails_cleanly(eng, AgentUnavailable, eng.offer, "c1", "n1")  # pool closed
    await eng.set_pool_open("near", True)
    await fails_cleanly(eng, NotEligible, eng.offer, "c1", "n1")
    # an in-house agent without the billing skill never serves voice
    await ready_agent(eng, "noskill", skills={}, capacity={"voice": 1})
    await fails_cleanly(eng, NotEligible, eng.offer, "c1", "noskill")
    await fails_cleanly(eng, InvalidState, eng.offer, "c0", "noskill")  # assigned
    await fails_cleanly(eng, AgentNotFound, eng.offer, "c1", "ghost")
    await fails_cleanly(eng, ContactNotFound, eng.offer, "ghost", "busy")


async def test_abandon_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(chat(id="c1"))
    await eng.accept("c1", "a1")
    await fails_cleanly(eng, InvalidState, eng.abandon, "c1")  # answered
    await eng.complete("c1", "a1")
    await fails_cleanly(eng, InvalidState, eng.abandon, "c1")  # completed
    await eng.create_contact(chat(id="c2"))
    await eng.abandon("c2")
    await fails_cleanly(eng, InvalidState, eng.abandon, "c2")  # abandoned twice
    await fails_cleanly(eng, ContactNotFound, eng.abandon, "ghost")


async def test_transfer_failures(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.accept("c1", "a1")
    await fails_cleanly(eng, ValidationError, eng.transfer, "c1", queue="voice", agent="a1")
    await fails_cleanly(eng, ValidationError, eng.transfer, "c1")
    await fails_cleanly(eng, ValidationError, eng.transfer, "c1", agent="a1")  # already there
    await fails_cleanly(eng, ValidationError, eng.transfer, "c1", queue="chat")  # no voice
    await fails_cleanly(eng, QueueNotFound, eng.transfer, "c1", queue="nope")
    await fails_cleanly(eng, AgentNotFound, eng.transfer, "c1", agent="ghost")
    await fails_cleanly(eng, WrongAgent, eng.transfer, "c1", queue="voice", by_agent="a2")
    await fails_cleanly(eng, ContactNotFound, eng.transfer, "ghost", queue="voice")
    await eng.complete("c1", "a1")  # wrap-up
    await fails_cleanly(eng, InvalidState, eng.transfer, "c1", queue="voice")


async def test_unknown_agent_pool_queue(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await fails_cleanly(eng, AgentNotFound, eng.set_agent_status, "ghost", "available")
    await fails_cleanly(eng, AgentNotFound, eng.heartbeat, "ghost")
    await fails_cleanly(eng, AgentNotFound, eng.get_agent, "ghost")
    await fails_cleanly(eng, ContactNotFound, eng.get_contact, "ghost")
    await fails_cleanly(eng, QueueNotFound, eng.create_contact, NewContact("voice", "nope"))
    await fails_cleanly(eng, PoolNotFound, eng.set_pool_open, "nope", False)
    await fails_cleanly(eng, PoolNotFound, eng.upsert_agent, agent("a1", "nope"))
    # a channel the queue does not take
    await fails_cleanly(eng, ValidationError, eng.create_contact, NewContact("chat", "voice"))
    await fails_cleanly(eng, ValidationError, eng.create_contact, voice(priority=5000))
    await fails_cleanly(eng, ValidationError, eng.create_contact, voice(skills={"x": 9}))
    await fails_cleanly(eng, ValidationError, eng.upsert_agent, agent("a1", capacity={"fax": 1}))
    await fails_cleanly(eng, ValidationError, eng.upsert_agent, agent("a1", skills={"x": 0}))


async def test_agent_status_unknown_status_is_validation_error(
    make_engine: EngineFactory,
) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await fails_cleanly(eng, ValidationError, eng.set_agent_status, "a1", "busy")
    # the script refuses it too, when called directly
    await fails_cleanly(
        eng,
        ValidationError,
        eng.scripts.run,
        "agent_status",
        [eng.keys.anchor],
        [eng.clock.now_ms(), "a1", "busy", ""],
    )


async def test_duplicate_contact_id(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await eng.create_contact(voice(id="c1"))
    await fails_cleanly(eng, DuplicateContact, eng.create_contact, chat(id="c1"))


async def test_idempotency_key_returns_first_contact_and_adds_nothing(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await ready_agent(eng, "a1")
    first = await eng.create_contact(voice(idempotency_key="req-1"))
    assert first.state is ContactState.RESERVED and not first.duplicate
    await eng.accept(first.contact_id, "a1")
    clock.advance(1)
    before = await snapshot(eng)
    again = await eng.create_contact(voice(idempotency_key="req-1", priority=3))
    assert again.duplicate is True
    assert again.contact_id == first.contact_id
    assert again.state is ContactState.ASSIGNED and again.agent == "a1" and again.queue == "voice"
    # even with an explicit id that does not exist yet: the key wins, nothing is written
    third = await eng.create_contact(chat(id="other", idempotency_key="req-1"))
    assert third.duplicate and third.contact_id == first.contact_id
    assert await snapshot(eng) == before
    assert not await eng.redis.exists(eng.keys.contact("other"))
    # a different key is a different contact
    fresh = await eng.create_contact(voice(idempotency_key="req-2"))
    assert not fresh.duplicate and fresh.contact_id != first.contact_id


@pytest.mark.parametrize("bad", ["a{b}", "a:b", "a b", "", "-x", "x" * 65, "tab\t", "é"])
async def test_invalid_ids_rejected_before_redis(make_engine: EngineFactory, bad: str) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    before = await snapshot(eng)
    # An engine whose Redis cannot be reached: touching Redis would raise
    # ConnectionError, so ValidationError proves the id was refused first.
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    offline = Engine(dead, eng.tenant, VirtualClock(), Scripts(dead))
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: offline.create_contact(voice(id=bad or "a}b")),  # "" means: generate one
        lambda: offline.create_contact(voice(preferred_agent=bad or "x y")),
        lambda: offline.create_contact(voice(skills={bad or "a b": 3})),
        lambda: offline.upsert_agent(agent(bad)),
        lambda: offline.upsert_agent(agent("a2", skills={bad or ":": 3})),
        lambda: offline.accept(bad, "a1"),
        lambda: offline.accept("c1", bad),
        lambda: offline.reject(bad, "a1"),
        lambda: offline.reject("c1", bad),
        lambda: offline.complete(bad, "a1"),
        lambda: offline.complete("c1", bad or "a b"),
        lambda: offline.abandon(bad),
        lambda: offline.transfer(bad, queue="voice"),
        lambda: offline.transfer("c1", queue=bad or "a:b"),
        lambda: offline.transfer("c1", agent=bad or "a{b}"),
        lambda: offline.transfer("c1", queue="voice", by_agent=bad or "a b"),
        lambda: offline.offer(bad, "a1"),
        lambda: offline.offer("c1", bad),
        lambda: offline.set_agent_status(bad, "available"),
        lambda: offline.heartbeat(bad),
        lambda: offline.get_contact(bad),
        lambda: offline.get_agent(bad),
    ]
    try:
        for i, call in enumerate(calls):
            with pytest.raises(ValidationError):
                try:
                    await call()
                except ValidationError:
                    raise
                except Exception as exc:  # pragma: no cover - the failure message
                    raise AssertionError(f"call #{i} with {bad!r}: {exc!r}") from exc
    finally:
        await dead.aclose()
    assert await snapshot(eng) == before


async def test_why_is_json_on_contact_and_event(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    c = await eng.get_contact("c1")
    ev = (await events(eng))[-1]
    assert c.why == json.loads(ev["why"])


async def test_customer_data_round_trips(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    cust = Customer(id="cust-1", name="Ada", email="ada@example.com")
    await eng.create_contact(
        voice(id="c1", customer=cust, preview="p" * 2000, attributes={"k": [1, 2]})
    )
    c = await eng.get_contact("c1")
    assert c.customer == cust and len(c.preview) == 1000 and c.attributes == {"k": [1, 2]}


async def test_idempotency_key_of_expired_contact(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    first = await eng.create_contact(chat(idempotency_key="req-9"))
    await eng.abandon(first.contact_id)
    # the finished record expired (retention) while the key is still remembered
    await eng.redis.delete(eng.keys.contact(first.contact_id))
    before = await snapshot(eng)
    again = await eng.create_contact(chat(idempotency_key="req-9"))
    assert again.duplicate and again.contact_id == first.contact_id
    assert again.state is ContactState.COMPLETED and again.agent is None
    assert await snapshot(eng) == before


async def test_abandon_while_waiting_for_preferred_agent(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c0"))
    await eng.accept("c0", "a1")
    await eng.create_contact(voice(id="c1", preferred_agent="a1"))
    assert await eng.redis.zscore(eng.keys.timers, "p|c1") is not None
    await eng.abandon("c1")
    assert await eng.redis.zcard(eng.keys.agent_waiting("a1")) == 0
    assert await eng.redis.zscore(eng.keys.timers, "p|c1") is None
    assert await eng.redis.zscore(eng.keys.timers, "s|c1") is None
    # a1 freeing up is not offered the abandoned contact
    await eng.complete("c0", "a1", skip_wrap_up=True)
    assert (await eng.get_agent("a1")).contacts == ()
