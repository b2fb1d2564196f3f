"""Timers in virtual time: offer expiry, misses, overflow stages, wrap-up, presence."""

from __future__ import annotations

import asyncio

from router.clock import VirtualClock
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from .test_routing import NO_PRESENCE
from .test_transitions import chat, events, events_since, n_events, ready_agent, voice


async def test_offer_timeout_requeues_at_same_position(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)  # chat: offer_timeout_s = 30
    t0 = clock.now_ms()
    await ready_agent(eng, "a1", capacity={"chat": 1})
    assert (await eng.create_contact(chat(id="c1"))).agent == "a1"
    clock.advance(29.999)
    assert await eng.run_due_timers() == 0
    assert (await eng.get_contact("c1")).state is ContactState.RESERVED
    clock.advance(0.001)
    n = await n_events(eng)
    assert await eng.run_due_timers() == 1
    c = await eng.get_contact("c1")
    assert c.state is ContactState.QUEUED and c.agent is None and c.offer_deadline_ms is None
    w = eng.keys.waiting("chat", "chat", 0)
    assert await eng.redis.zscore(w, "c1") == t0
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.reservation_expired"]
    ex = evs[0]
    assert ex["contact"] == "c1" and ex["agent"] == "a1" and ex["reason"] == "timeout"
    assert ex["wait_ms"] == "30000" and ex["pool"] == "inhouse"
    # the agent's capacity is free again, and it is ready for others
    a = await eng.get_agent("a1")
    assert a.load == {} and a.contacts == () and a.missed_offers == 1
    assert await eng.redis.zscore(eng.keys.ready("chat", "chat", 0, "inhouse"), "a1") is not None
    # a later contact queues behind c1 but goes to a1, who let c1 expire
    clock.advance(1)
    r = await eng.create_contact(chat(id="c2"))
    assert r.agent == "a1"
    assert await eng.redis.zrange(w, 0, -1, withscores=True) == [(b"c1", t0)]
    # another agent gets c1, still first in line
    await ready_agent(eng, "a2", capacity={"chat": 1})
    assert (await eng.get_contact("c1")).agent == "a2"


async def test_offer_timeout_of_two_waiting_keeps_order(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "a1", capacity={"chat": 1})
    await eng.create_contact(chat(id="c1"))  # reserved for a1
    clock.advance(1)
    await eng.create_contact(chat(id="c2"))  # waits
    clock.advance(29)
    await eng.run_due_timers()
    # a1 skips c1 (it missed it) and takes c2; c1 waits at its old score, ahead
    assert (await eng.get_contact("c2")).agent == "a1"
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED
    evs = await events(eng)
    assert [e["type"] for e in evs][-2:] == ["contact.reservation_expired", "contact.reserved"]


async def test_consecutive_misses_set_agent_away(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)  # max_missed_offers = 3
    await ready_agent(eng, "a1", capacity={"chat": 1})
    for i in range(4):
        await eng.create_contact(chat(id=f"c{i}"))
    for i in range(2):
        assert (await eng.get_contact(f"c{i}")).agent == "a1"
        clock.advance(30)
        await eng.run_due_timers()
        a = await eng.get_agent("a1")
        assert a.status is AgentStatus.AVAILABLE and a.missed_offers == i + 1
    assert (await eng.get_contact("c2")).agent == "a1"
    n = await n_events(eng)
    clock.advance(30)
    await eng.run_due_timers()
    a = await eng.get_agent("a1")
    assert a.status is AgentStatus.AWAY and a.reason == "missed_offers"
    assert a.missed_offers == 3 and a.load == {}
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.reservation_expired", "agent.status_changed"]
    st = evs[1]
    assert (st["agent"], st["status"], st["from"], st["reason"]) == (
        "a1",
        "away",
        "available",
        "missed_offers",
    )
    # away: not offered c3, nor anything else
    for i in range(4):
        assert (await eng.get_contact(f"c{i}")).state is ContactState.QUEUED
    assert await eng.redis.zscore(eng.keys.ready("chat", "chat", 0, "inhouse"), "a1") is None
    # coming back resets the count
    await eng.set_agent_status("a1", "available")
    a = await eng.get_agent("a1")
    assert a.missed_offers == 0 and (await eng.get_contact("c3")).agent == "a1"


async def test_accept_resets_miss_count(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "a1", capacity={"chat": 1})
    for i in range(5):
        await eng.create_contact(chat(id=f"c{i}"))
    for _ in range(2):
        clock.advance(30)
        await eng.run_due_timers()
    assert (await eng.get_agent("a1")).missed_offers == 2
    assert (await eng.get_contact("c2")).agent == "a1"
    await eng.accept("c2", "a1")
    assert (await eng.get_agent("a1")).missed_offers == 0
    await eng.complete("c2", "a1")
    held = (await eng.get_agent("a1")).contacts
    assert len(held) == 1
    # two more misses: 2 < 3, still available
    for _ in range(2):
        clock.advance(30)
        await eng.run_due_timers()
    a = await eng.get_agent("a1")
    assert a.status is AgentStatus.AVAILABLE and a.missed_offers == 2


async def test_overflow_stages_open_at_30_and_90_seconds(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    t0 = clock.now_ms()
    await ready_agent(eng, "n1", "near", capacity={"voice": 1})
    await ready_agent(eng, "o1", "off", skills={"billing": 2}, capacity={"voice": 1})
    await eng.create_contact(voice(id="c1"))
    await eng.create_contact(voice(id="c2"))
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED
    clock.advance(29.999)
    assert await eng.run_due_timers() == 0
    clock.advance(0.001)
    n = await n_events(eng)
    assert await eng.run_due_timers() == 2
    c1 = await eng.get_contact("c1")
    assert c1.stage == 1 and c1.state is ContactState.RESERVED
    assert c1.agent == "n1" and c1.pool == "near"
    c2 = await eng.get_contact("c2")
    assert c2.stage == 1 and c2.state is ContactState.QUEUED
    assert await eng.redis.zscore(eng.keys.waiting("voice", "voice", 1), "c2") == t0
    assert await eng.redis.zcard(eng.keys.waiting("voice", "voice", 0)) == 0
    evs = await events_since(eng, n)
    kinds = [(e["type"], e["contact"]) for e in evs]
    assert kinds == [
        ("contact.stage_advanced", "c1"),
        ("contact.reserved", "c1"),
        ("contact.stage_advanced", "c2"),
    ]
    assert evs[0]["from_stage"] == "0" and evs[0]["stage"] == "1"
    assert evs[0]["reason"] == "overflow_timer"
    assert evs[1]["agent"] == "n1" and evs[1]["wait_ms"] == "30000"
    await eng.accept("c1", "n1")
    assert await eng.redis.zscore(eng.keys.timers, "s|c2") == t0 + 90_000
    # 90 s: stage 2 adds the offshore pool with billing >= 2
    clock.advance(60)
    await eng.run_due_timers()
    c2 = await eng.get_contact("c2")
    assert c2.stage == 2 and c2.state is ContactState.RESERVED
    assert c2.agent == "o1" and c2.pool == "off"
    assert await eng.redis.zscore(eng.keys.timers, "s|c2") is None  # last stage


async def test_wrap_up_timer_completes_contact(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)  # voice wrap-up 10 s
    await ready_agent(eng, "a1", capacity={"voice": 1})
    await eng.create_contact(voice(id="c1"))
    await eng.create_contact(voice(id="c2"))
    await eng.accept("c1", "a1")
    clock.advance(60)
    assert await eng.complete("c1", "a1", "ok") is ContactState.WRAP_UP
    assert (await eng.get_agent("a1")).contacts == ("c1",)
    clock.advance(9.999)
    await eng.run_due_timers()
    assert (await eng.get_contact("c1")).state is ContactState.WRAP_UP
    clock.advance(0.001)
    n = await n_events(eng)
    await eng.run_due_timers()
    c1 = await eng.get_contact("c1")
    assert c1.state is ContactState.COMPLETED and c1.disposition == "ok"
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.completed", "contact.reserved"]
    assert evs[0]["wrap_ms"] == "10000" and evs[0]["talk_ms"] == "60000"
    assert evs[0]["handle_ms"] == "70000" and evs[0]["disposition"] == "ok"
    assert evs[1]["contact"] == "c2" and evs[1]["agent"] == "a1"


async def test_presence_timeout_sets_offline_and_returns_offers(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)  # presence_timeout_s = 60
    await eng.upsert_agent(agent("a1", capacity={"email": 1}))
    await eng.upsert_agent(agent("a2", capacity={"email": 1}))
    await eng.set_agent_status("a1", "available")
    clock.advance(5)
    await eng.set_agent_status("a2", "available")
    clock.advance(5)
    await eng.create_contact(NewContact("email", "email", id="e1"))  # offer timeout 60 s
    assert (await eng.get_contact("e1")).agent == "a1"
    await eng.accept("e1", "a1")
    await eng.create_contact(NewContact("email", "email", id="e2"))
    assert (await eng.get_contact("e2")).agent == "a2"
    # a1 keeps sending heartbeats; a2 sent its last one at t=5
    for _ in range(5):
        clock.advance(20)
        await eng.heartbeat("a1")
        await eng.run_due_timers()
        if clock.now_ms() - 1_000_000 < 65_000:
            assert (await eng.get_agent("a2")).status is AgentStatus.AVAILABLE
    a2 = await eng.get_agent("a2")
    assert a2.status is AgentStatus.OFFLINE and a2.reason == "presence_timeout"
    assert a2.load == {} and a2.contacts == ()
    a1 = await eng.get_agent("a1")
    assert a1.status is AgentStatus.AVAILABLE and a1.contacts == ("e1",)
    e2 = await eng.get_contact("e2")
    assert e2.state is ContactState.QUEUED and e2.agent is None
    evs = await events(eng)
    off = [e for e in evs if e["type"] == "agent.status_changed" and e["status"] == "offline"]
    assert [(e["agent"], e["reason"]) for e in off] == [("a2", "presence_timeout")]
    back = [e for e in evs if e["type"] == "contact.reservation_rejected"]
    assert [(e["contact"], e["agent"], e["reason"]) for e in back] == [
        ("e2", "a2", "agent_offline")
    ]
    # the offline agent's return does not count as a miss against it
    assert a2.missed_offers == 0


async def test_presence_timeout_exact_boundary(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"))
    await eng.set_agent_status("a1", "available")
    assert await eng.redis.zscore(eng.keys.timers, "h|a1") == clock.now_ms() + 60_000
    clock.advance(59.999)
    await eng.run_due_timers()
    assert (await eng.get_agent("a1")).status is AgentStatus.AVAILABLE
    clock.advance(0.001)
    await eng.run_due_timers()
    assert (await eng.get_agent("a1")).status is AgentStatus.OFFLINE


async def test_agent_registered_available_times_out_without_heartbeat(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"), AgentStatus.AVAILABLE)
    clock.advance(60)
    await eng.run_due_timers()
    a = await eng.get_agent("a1")
    assert a.status is AgentStatus.OFFLINE and a.reason == "presence_timeout"


async def test_heartbeats_keep_agent_online(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"))
    await eng.set_agent_status("a1", "available")
    n = await n_events(eng)
    for _ in range(20):  # 20 minutes
        clock.advance(59)
        await eng.heartbeat("a1")
        await eng.run_due_timers()
    assert (await eng.get_agent("a1")).status is AgentStatus.AVAILABLE
    assert await n_events(eng) == n


async def test_stale_timers_are_dropped_without_events(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "a1", capacity={"voice": 1})
    await eng.create_contact(voice(id="c1"))
    await eng.accept("c1", "a1")
    # a leftover offer timer for the accepted contact (e.g. re-added by a slow process)
    await eng.redis.zadd(eng.keys.timers, {"o|c1": clock.now_ms(), "w|c1": clock.now_ms()})
    await eng.redis.zadd(eng.keys.timers, {"p|c1": clock.now_ms(), "h|ghost": clock.now_ms()})
    await eng.redis.zadd(eng.keys.timers, {"o|nope": clock.now_ms(), "s|c1": clock.now_ms()})
    n = await n_events(eng)
    before = await eng.redis.hgetall(eng.keys.contact("c1"))
    assert await eng.run_due_timers() == 6
    # the overflow timers of an answered contact are stale too (30 s and 90 s)
    clock.advance(120)
    await eng.run_due_timers()
    assert await n_events(eng) == n
    assert await eng.redis.hgetall(eng.keys.contact("c1")) == before
    c = await eng.get_contact("c1")
    assert c.state is ContactState.ASSIGNED and c.agent == "a1" and c.stage == 0
    assert await eng.redis.zcard(eng.keys.timers) == 0


async def test_stage_timer_of_reserved_contact_still_advances(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "a1", capacity={"voice": 1})
    await ready_agent(eng, "n1", "near", capacity={"voice": 1})
    await eng.create_contact(voice(id="c1"))
    assert (await eng.get_contact("c1")).agent == "a1"
    clock.advance(14)
    await eng.reject("c1", "a1")  # nobody else at stage 0
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED
    await eng.offer("c1", "a1")  # pushed again by a supervisor at t=14, deadline t=29
    clock.advance(16)  # t=30: the offer expired at 29 and stage 1 opens
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.stage == 1 and c.state is ContactState.RESERVED and c.agent == "n1"


async def test_concurrent_timer_runs_apply_each_timer_once(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    for i in range(40):
        await eng.create_contact(voice(id=f"c{i:02d}"))
    clock.advance(30)
    n = await n_events(eng)
    results = await asyncio.gather(
        eng.run_due_timers(batch=3), eng.run_due_timers(batch=3), eng.run_timers(batch=5)
    )
    applied = results[0] + results[1] + results[2][0]
    assert applied == 40
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.stage_advanced"] * 40
    assert sorted(e["contact"] for e in evs) == [f"c{i:02d}" for i in range(40)]
    for i in range(40):
        assert (await eng.get_contact(f"c{i:02d}")).stage == 1
    assert await eng.redis.zcard(eng.keys.waiting("voice", "voice", 1)) == 40
    assert await eng.redis.zcard(eng.keys.timers) == 40  # each next stage, once
    applied2, nxt = await eng.run_timers()
    assert applied2 == 0 and nxt == 1_000_000 + 90_000


async def test_concurrent_offer_expiry_and_accept(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    for i in range(10):
        await ready_agent(eng, f"a{i}", capacity={"chat": 1})
    for i in range(10):
        await eng.create_contact(chat(id=f"c{i}"))
    clock.advance(30)
    await asyncio.gather(eng.run_due_timers(batch=2), eng.run_due_timers(batch=2))
    evs = await events(eng)
    expired = [e["contact"] for e in evs if e["type"] == "contact.reservation_expired"]
    assert sorted(expired) == [f"c{i}" for i in range(10)]
    for i in range(10):
        a = await eng.get_agent(f"a{i}")
        assert a.missed_offers == 1 and len(a.load) <= 1


async def test_one_timer_run_catches_up_on_stages_that_became_due(
    make_engine: EngineFactory,
) -> None:
    """After a pause (an outage, a jump in virtual time) every overdue stage opens at once."""
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    clock.advance(120)  # past both the 30 s and the 90 s stage
    await eng.run_due_timers()
    assert (await eng.get_contact(r.contact_id)).stage == 2
