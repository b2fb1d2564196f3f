"""Routing decisions: strategies, priority and aging, skills, pools, channels, preferences."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.clock import VirtualClock
from router.engine import Engine
from router.errors import QueueFull
from router.model import AgentStatus, ContactState, Customer, NewContact

from ..conftest import EngineFactory
from ..factories import BASE_BODY, agent
from .test_transitions import (
    chat,
    events,
    events_since,
    fails_cleanly,
    n_events,
    ready_agent,
    voice,
)

# The base config without presence timeouts: these tests let minutes pass
# without heartbeats, and presence is tested in test_timers.py.
NO_PRESENCE = BASE_BODY.replace("presence_timeout_s = 60", "presence_timeout_s = 0")

CHAT_ONLY = """
[routing]
presence_timeout_s = 0
exclusive_channels = ["voice"]

[pools.inhouse]
kind = "inhouse"

[queues.chat]
channel = "chat"
pools = ["inhouse"]
strategy = "{strategy}"
skills = {skills}
"""


async def queued(eng: Engine, cid: str) -> bool:
    return (await eng.get_contact(cid)).state is ContactState.QUEUED


async def holder(eng: Engine, cid: str) -> str | None:
    c = await eng.get_contact(cid)
    return c.agent if c.state is ContactState.RESERVED else None


async def serve(eng: Engine, cid: str, aid: str) -> None:
    """Accept and complete at once (no wrap-up): the agent frees up."""
    await eng.accept(cid, aid)
    await eng.complete(cid, aid, skip_wrap_up=True)


# -- strategies ---------------------------------------------------------------------


async def test_longest_idle_picks_agent_idle_longest(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    for aid in ("a1", "a2", "a3"):
        await ready_agent(eng, aid, capacity={"voice": 1})
        clock.advance(1)
    assert (await eng.create_contact(voice(id="c1"))).agent == "a1"
    assert (await eng.create_contact(voice(id="c2"))).agent == "a2"
    clock.advance(10)
    await serve(eng, "c1", "a1")  # a1 idle again since now; a3 since t=2
    assert (await eng.create_contact(voice(id="c3"))).agent == "a3"
    assert (await eng.create_contact(voice(id="c4"))).agent == "a1"
    assert (await eng.create_contact(voice(id="c5"))).state is ContactState.QUEUED


async def _occupied_vs_idle(make_engine: EngineFactory, strategy: str) -> str | None:
    clock = VirtualClock()
    eng = await make_engine(CHAT_ONLY.format(strategy=strategy, skills="{}"), clock)
    await ready_agent(eng, "a1", capacity={"chat": 4})
    clock.advance(1)
    r = await eng.create_contact(chat(id="c1"))
    assert r.agent == "a1"
    await eng.accept("c1", "a1")  # a1: 1/4 busy, idle since t=1
    clock.advance(1)
    await ready_agent(eng, "a2", capacity={"chat": 4})  # a2: 0/4, idle since t=2
    clock.advance(1)
    return (await eng.create_contact(chat(id="c2"))).agent


async def test_least_occupied_prefers_lower_occupancy(make_engine: EngineFactory) -> None:
    assert await _occupied_vs_idle(make_engine, "least_occupied") == "a2"
    # the same situation under longest idle goes to a1: the strategy decided
    assert await _occupied_vs_idle(make_engine, "longest_idle") == "a1"


async def test_highest_proficiency_prefers_best_skilled(make_engine: EngineFactory) -> None:
    async def pick(strategy: str) -> tuple[str | None, dict[str, Any] | None]:
        clock = VirtualClock()
        eng = await make_engine(
            CHAT_ONLY.format(strategy=strategy, skills="{ billing = 1, spanish = 1 }"), clock
        )
        await ready_agent(eng, "low", skills={"billing": 1, "spanish": 1}, capacity={"chat": 1})
        clock.advance(1)
        await ready_agent(eng, "high", skills={"billing": 5, "spanish": 4}, capacity={"chat": 1})
        clock.advance(1)
        await ready_agent(eng, "mid", skills={"billing": 3, "spanish": 3}, capacity={"chat": 1})
        r = await eng.create_contact(chat(id="c1"))
        return r.agent, (await eng.get_contact("c1")).why

    agent_id, why = await pick("highest_proficiency")
    assert agent_id == "high"
    assert why is not None and why["strategy"] == "highest_proficiency"
    # the same agents under longest idle: the first one to become ready
    agent_id, why = await pick("longest_idle")
    assert agent_id == "low"
    assert why is not None and why["strategy"] == "longest_idle"


# -- priority and aging ---------------------------------------------------------------


async def test_priority_with_aging(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)  # chat: aging_s = 60 (default)
    await eng.create_contact(chat(id="p0_early"))  # t=0   score 0
    clock.advance(60)
    await eng.create_contact(chat(id="p0_late"))  # t=60  score 60
    clock.advance(30)
    await eng.create_contact(chat(id="p1", priority=1))  # t=90  score 90-60 = 30
    await ready_agent(eng, "a1", capacity={"chat": 1})
    # p0 that arrived 90 s before p1 still goes first
    assert await holder(eng, "p0_early") == "a1"
    await serve(eng, "p0_early", "a1")
    # p1, which arrived 30 s after p0_late, beats it (1 level = 60 s)
    assert await holder(eng, "p1") == "a1"
    assert await queued(eng, "p0_late")
    await serve(eng, "p1", "a1")
    assert await holder(eng, "p0_late") == "a1"


async def test_priority_beats_30s_earlier_contact(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await eng.create_contact(chat(id="old"))
    clock.advance(30)
    await eng.create_contact(chat(id="urgent", priority=1))
    w = eng.keys.waiting("chat", "chat", 0)
    assert await eng.redis.zrange(w, 0, -1, withscores=True) == [
        (b"urgent", clock.now_ms() - 60_000),
        (b"old", clock.now_ms() - 30_000),
    ]
    await ready_agent(eng, "a1", capacity={"chat": 1})
    assert await holder(eng, "urgent") == "a1" and await queued(eng, "old")


TWO_CHAT_QUEUES = """
[routing]
presence_timeout_s = 0

[pools.inhouse]
kind = "inhouse"

[queues.sales]
channel = "chat"
pools = ["inhouse"]

[queues.support]
channel = "chat"
pools = ["inhouse"]
"""


async def test_freed_agent_takes_best_contact_across_queues(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(TWO_CHAT_QUEUES, clock)
    await ready_agent(eng, "a1", capacity={"chat": 1})
    await eng.create_contact(NewContact("chat", "sales", id="busy"))
    assert await holder(eng, "busy") == "a1"
    await eng.accept("busy", "a1")
    await eng.create_contact(NewContact("chat", "sales", id="x1"))  # t=0  score 0
    clock.advance(10)
    await eng.create_contact(NewContact("chat", "support", id="s1"))  # t=10 score 10
    clock.advance(30)
    await eng.create_contact(NewContact("chat", "support", id="s2", priority=1))  # score -20
    n = await n_events(eng)
    await eng.complete("busy", "a1")
    assert await holder(eng, "s2") == "a1"
    c = await eng.get_contact("s2")
    assert c.why is not None and c.why["strategy"] == "best_waiting_contact"
    assert c.why["chosen"] == "a1"
    heads = {(x["contact"], x["queue"], x["score"]) for x in c.why["candidates"]}
    assert heads == {("x1", "sales", 1_000_000), ("s2", "support", 980_000)}
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.completed", "contact.reserved"]
    await serve(eng, "s2", "a1")
    assert await holder(eng, "x1") == "a1"
    await serve(eng, "x1", "a1")
    assert await holder(eng, "s1") == "a1"


@pytest.mark.parametrize("first", ["sales", "support"])
async def test_equal_scores_across_queues_go_to_the_lower_contact_id(
    make_engine: EngineFactory, first: str
) -> None:
    # Same arrival ms and priority in two queues: the lower id is served first,
    # whichever of the agent's lanes is read first (a replay split into segments
    # relies on the choice not following lane order).
    other = "support" if first == "sales" else "sales"
    clock = VirtualClock()
    eng = await make_engine(TWO_CHAT_QUEUES, clock)
    await ready_agent(eng, "a1", capacity={"chat": 1})
    await eng.create_contact(NewContact("chat", "sales", id="busy"))
    await eng.accept("busy", "a1")
    clock.advance(5)
    await eng.create_contact(NewContact("chat", first, id="k2"))
    await eng.create_contact(NewContact("chat", other, id="k1"))
    await eng.complete("busy", "a1")
    assert await holder(eng, "k1") == "a1"


# -- skills and stages ------------------------------------------------------------------


async def test_agent_below_level_waits_for_min_proficiency_stage(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "junior", skills={"billing": 2}, capacity={"voice": 1})
    await eng.create_contact(voice(id="c1"))
    assert await queued(eng, "c1")
    clock.advance(30)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.state is ContactState.QUEUED and c.stage == 1
    clock.advance(59.999)
    await eng.run_due_timers()
    assert await queued(eng, "c1")
    clock.advance(0.001)  # 90 s: stage 2, billing >= 2 suffices
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "junior" and c.stage == 2
    assert c.why is not None
    assert c.why["candidates"] == [
        {"agent": "junior", "pool": "inhouse", "entry": 2, "score": 1_000_000}
    ]
    # a fully skilled agent that arrives later gets the next contact at once
    await ready_agent(eng, "senior", capacity={"voice": 1})
    assert (await eng.create_contact(voice(id="c2"))).agent == "senior"


# -- pools ---------------------------------------------------------------------------


async def test_closed_pool_is_skipped_and_reopening_dispatches(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "n1", "near", capacity={"chat": 1})
    await ready_agent(eng, "n2", "near", capacity={"chat": 1})
    ready_key = eng.keys.ready("chat", "chat", 0, "near")
    agents_before = {a: await eng.redis.hgetall(eng.keys.agent(a)) for a in ("n1", "n2")}
    members_before = await eng.redis.zrange(ready_key, 0, -1, withscores=True)
    assert len(members_before) == 2
    await eng.set_pool_open("near", False, "after_hours")
    # the agents are not touched: same hashes, same ready set
    for a, h in agents_before.items():
        assert await eng.redis.hgetall(eng.keys.agent(a)) == h
    assert await eng.redis.zrange(ready_key, 0, -1, withscores=True) == members_before
    for i in range(3):
        r = await eng.create_contact(chat(id=f"c{i}"))
        assert r.state is ContactState.QUEUED
        clock.advance(1)
    assert await eng.redis.hget(eng.keys.contact("c0"), "why") is None  # never offered
    # reopening matches the waiting contacts with the ready agents, oldest first
    assert await eng.set_pool_open("near", True) == 2
    assert {await holder(eng, "c0"), await holder(eng, "c1")} == {"n1", "n2"}
    assert await queued(eng, "c2")
    c0 = await eng.get_contact("c0")
    assert c0.pool == "near"


async def test_closed_pool_appears_in_why(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await eng.set_pool_open("near", False)
    await ready_agent(eng, "i1", capacity={"chat": 1})
    await eng.create_contact(chat(id="c1"))
    why = (await eng.get_contact("c1")).why
    assert why is not None and why["chosen"] == "i1" and why["strategy"] == "longest_idle"
    assert {"pool": "near", "closed": True} in why["candidates"]


# -- channels and capacity ----------------------------------------------------------------


async def test_cross_channel_rule(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1", capacity={"voice": 1, "chat": 2})
    await eng.create_contact(voice(id="v1"))
    await eng.accept("v1", "a1")
    # on a voice contact: no chat, though chat capacity is free
    assert (await eng.create_contact(chat(id="ch1"))).state is ContactState.QUEUED
    await ready_agent(eng, "a2", capacity={"voice": 1, "chat": 2})
    # a2 takes the waiting chat at once; with a chat it gets no voice
    assert await holder(eng, "ch1") == "a2"
    assert (await eng.create_contact(voice(id="v2"))).state is ContactState.QUEUED
    # but another chat, yes (capacity 2)
    assert (await eng.create_contact(chat(id="ch2"))).agent == "a2"
    # a1 finishing its voice call takes v2, the only voice contact
    await eng.complete("v1", "a1", skip_wrap_up=True)
    assert await holder(eng, "v2") == "a1"
    assert (await eng.get_agent("a1")).load == {"voice": 1}


async def test_chat_capacity_two(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1", capacity={"chat": 2})
    assert (await eng.create_contact(chat(id="c1"))).agent == "a1"
    assert (await eng.create_contact(chat(id="c2"))).agent == "a1"
    assert (await eng.create_contact(chat(id="c3"))).state is ContactState.QUEUED
    a = await eng.get_agent("a1")
    assert a.load == {"chat": 2} and a.contacts == ("c1", "c2")
    assert await eng.redis.zscore(eng.keys.ready("chat", "chat", 0, "inhouse"), "a1") is None
    await eng.accept("c1", "a1")
    await eng.complete("c1", "a1")
    assert await holder(eng, "c3") == "a1"
    assert (await eng.get_agent("a1")).load == {"chat": 2}


# -- preferred agent ---------------------------------------------------------------------


async def test_preferred_agent_gets_contact_when_free_within_window(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "pref", capacity={"voice": 1})
    await eng.create_contact(voice(id="busy"))
    await eng.accept("busy", "pref")
    await ready_agent(eng, "other", capacity={"voice": 1})
    r = await eng.create_contact(voice(id="c1", preferred_agent="pref"))
    # "other" is ready but the contact waits for "pref"
    assert r.state is ContactState.QUEUED and r.agent is None
    c = await eng.get_contact("c1")
    assert c.preferred_agent == "pref"
    assert await eng.redis.zscore(eng.keys.agent_waiting("pref"), "c1") is not None
    assert await eng.redis.zcard(eng.keys.waiting("voice", "voice", 0)) == 0
    assert (await events(eng))[-1]["preferred_agent"] == "pref"
    clock.advance(14)
    await eng.run_due_timers()
    assert await queued(eng, "c1")
    await eng.complete("busy", "pref", skip_wrap_up=True)
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "pref"
    assert c.why is not None and c.why["reason"] == "named agent"
    # the fallback timer is gone
    assert await eng.redis.zscore(eng.keys.timers, "p|c1") is None


async def test_preferred_agent_falls_back_to_queue_after_window(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "pref", capacity={"voice": 1})
    await eng.create_contact(voice(id="busy"))
    await eng.accept("busy", "pref")
    await ready_agent(eng, "other", capacity={"voice": 1})
    await eng.create_contact(voice(id="c1", preferred_agent="pref"))
    clock.advance(14.999)
    await eng.run_due_timers()
    assert await queued(eng, "c1")
    n = await n_events(eng)
    clock.advance(0.001)
    await eng.run_due_timers()
    assert await holder(eng, "c1") == "other"
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.stage_advanced", "contact.reserved"]
    assert evs[0]["reason"] == "agent_wait_over" and evs[0]["from_agent"] == "pref"
    assert (await eng.get_contact("c1")).preferred_agent is None


async def test_prefer_last_agent_routes_returning_customer(make_engine: EngineFactory) -> None:
    async def returning_customer_goes_to(body: str) -> str | None:
        clock = VirtualClock()
        eng = await make_engine(body, clock)
        await ready_agent(eng, "a1", capacity={"chat": 1})
        clock.advance(1)
        await ready_agent(eng, "a2", capacity={"chat": 1})
        clock.advance(1)
        cust = Customer(id="cust-42", name="Grace")
        assert (await eng.create_contact(chat(id="first", customer=cust))).agent == "a1"
        clock.advance(5)
        await serve(eng, "first", "a1")  # a1 is now the most recently idle
        clock.advance(1)
        again = await eng.create_contact(chat(id="again", customer=cust))
        # another customer still goes by longest idle
        if again.agent == "a1":
            other = await eng.create_contact(chat(id="stranger", customer=Customer(id="x")))
            assert other.agent == "a2"
        return again.agent

    body = NO_PRESENCE.replace("[routing]", "[routing]\nprefer_last_agent = true")
    assert await returning_customer_goes_to(body) == "a1"
    # without the setting, the same history goes to the longest idle agent
    assert await returning_customer_goes_to(NO_PRESENCE) == "a2"


# -- queue size -----------------------------------------------------------------------------

FULL_QUEUES = """
[routing]
presence_timeout_s = 0

[pools.inhouse]
kind = "inhouse"

[queues.small]
channel = "chat"
pools = ["inhouse"]
max_size = 2
when_full = "reject"

[queues.big]
channel = "chat"
pools = ["inhouse"]
max_size = 1
when_full = "overflow"
overflow_queue = "spill"

[queues.spill]
channel = "chat"
pools = ["inhouse"]
"""


async def test_queue_full_reject_and_overflow(make_engine: EngineFactory) -> None:
    eng = await make_engine(FULL_QUEUES)
    await eng.create_contact(NewContact("chat", "small", id="s1"))
    await eng.create_contact(NewContact("chat", "small", id="s2"))
    await fails_cleanly(eng, QueueFull, eng.create_contact, NewContact("chat", "small", id="s3"))
    assert (await eng.create_contact(NewContact("chat", "big", id="b1"))).queue == "big"
    r = await eng.create_contact(NewContact("chat", "big", id="b2"))
    assert r.queue == "spill" and r.state is ContactState.QUEUED
    assert (await eng.get_contact("b2")).queue == "spill"
    assert await eng.redis.zscore(eng.keys.waiting("spill", "chat", 0), "b2") is not None
    received = [e for e in await events(eng) if e["type"] == "contact.received"]
    assert (received[-1]["contact"], received[-1]["queue"], received[-1]["requested_queue"]) == (
        "b2",
        "spill",
        "big",
    )
    # once a contact leaves, the small queue admits again
    await eng.abandon("s1")
    assert (await eng.create_contact(NewContact("chat", "small", id="s3"))).queue == "small"


# -- transfers -------------------------------------------------------------------------------

TWO_VOICE_QUEUES = """
[routing]
presence_timeout_s = 0
transfer_wait_s = 20
wrap_up_s = { voice = 0 }

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
channel = "voice"
pools = ["inhouse"]
aging_s = 60

[[queues.sales.overflow]]
after_s = 30
pools = ["near"]

[queues.support]
channel = "voice"
pools = ["near"]
aging_s = 100

[[queues.support.overflow]]
after_s = 30
pools = ["inhouse"]
"""


async def test_transfer_to_queue_keeps_created_and_restarts_stages(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(TWO_VOICE_QUEUES, clock)
    t0 = clock.now_ms()
    await ready_agent(eng, "a1", capacity={"voice": 1})  # inhouse: sales at 0, support at 1
    await eng.create_contact(NewContact("voice", "sales", id="c1", priority=1))
    await eng.accept("c1", "a1")
    clock.advance(40)
    n = await n_events(eng)
    r = await eng.transfer("c1", queue="support", by_agent="a1")
    assert (r.state, r.agent, r.queue) == (ContactState.QUEUED, None, "support")
    c = await eng.get_contact("c1")
    assert c.created_ms == t0 and c.stage == 0 and c.queue == "support"
    assert c.assigned_ms is None
    # score keeps the arrival time, with the new queue's aging
    assert await eng.redis.zscore(eng.keys.waiting("support", "voice", 0), "c1") == t0 - 100_000
    assert await eng.redis.zscore(eng.keys.timers, "s|c1") == clock.now_ms() + 30_000
    a1 = await eng.get_agent("a1")
    assert a1.load == {} and a1.contacts == ()
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.transferred"]
    tr = evs[0]
    assert (tr["from_queue"], tr["queue"], tr["from_agent"], tr["from_state"]) == (
        "sales",
        "support",
        "a1",
        "assigned",
    )
    assert tr["wait_ms"] == "40000" and tr["created"] == str(t0)
    # stage 1 of support (inhouse) opens 30 s after the transfer, and a1 gets it
    clock.advance(29.999)
    await eng.run_due_timers()
    assert await queued(eng, "c1")
    clock.advance(0.001)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.stage == 1 and c.state is ContactState.RESERVED and c.agent == "a1"


async def test_transfer_to_busy_agent_waits_then_falls_back(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(TWO_VOICE_QUEUES, clock)
    await ready_agent(eng, "a1", capacity={"voice": 1})
    clock.advance(1)
    await ready_agent(eng, "a2", capacity={"voice": 1})
    await eng.create_contact(NewContact("voice", "sales", id="c1"))
    await eng.create_contact(NewContact("voice", "sales", id="c2"))
    await eng.accept("c1", "a1")
    await eng.accept("c2", "a2")
    r = await eng.transfer("c1", agent="a2", by_agent="a1")
    assert (r.state, r.agent, r.queue) == (ContactState.QUEUED, None, "sales")
    assert await eng.redis.zscore(eng.keys.agent_waiting("a2"), "c1") is not None
    # a1 is free but c1 waits for a2 only
    assert (await eng.get_agent("a1")).load == {}
    ev = (await events(eng))[-1]
    assert ev["type"] == "contact.transferred" and ev["to_agent"] == "a2"
    clock.advance(19.999)
    await eng.run_due_timers()
    assert await queued(eng, "c1")
    clock.advance(0.001)
    n = await n_events(eng)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "a1" and c.queue == "sales"
    evs = await events_since(eng, n)
    assert [e["type"] for e in evs] == ["contact.stage_advanced", "contact.reserved"]
    assert evs[0]["reason"] == "agent_wait_over" and evs[0]["from_agent"] == "a2"


async def test_transfer_to_busy_agent_taken_when_it_frees(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(TWO_VOICE_QUEUES, clock)
    await ready_agent(eng, "a1", capacity={"voice": 1})
    await ready_agent(eng, "a2", capacity={"voice": 1})
    await eng.create_contact(NewContact("voice", "sales", id="c1"))
    await eng.create_contact(NewContact("voice", "sales", id="c2"))
    first = await holder(eng, "c1")
    second = "a2" if first == "a1" else "a1"
    await eng.accept("c1", first)
    await eng.accept("c2", second)
    await eng.transfer("c1", agent=second)
    clock.advance(10)
    await eng.complete("c2", second)
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == second
    assert await eng.redis.zscore(eng.keys.timers, "p|c1") is None


async def test_transfer_fallback_keeps_overflowing(make_engine: EngineFactory) -> None:
    """After an agent transfer falls back, the queue's overflow stages still open."""
    clock = VirtualClock()
    eng = await make_engine(TWO_VOICE_QUEUES, clock)
    await ready_agent(eng, "a1", capacity={"voice": 1})
    await ready_agent(eng, "a2", capacity={"voice": 1})
    await eng.create_contact(NewContact("voice", "sales", id="c1"))
    await eng.create_contact(NewContact("voice", "sales", id="c2"))
    first = await holder(eng, "c1")
    second = "a2" if first == "a1" else "a1"
    await eng.accept("c1", first)
    await eng.accept("c2", second)
    clock.advance(10)
    await eng.transfer("c1", agent=second, by_agent=first)
    await eng.set_agent_status(first, "away")
    await ready_agent(eng, "n1", "near", capacity={"voice": 1})  # sales from stage 1
    clock.advance(20)  # t=30: fallback to sales; 30 s in sales: stage 1 is due too
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert c.state is ContactState.RESERVED and c.agent == "n1" and c.stage == 1


# -- why ---------------------------------------------------------------------------------------


async def test_why_names_strategy_candidates_and_choice(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(NO_PRESENCE, clock)
    await ready_agent(eng, "n1", "near", capacity={"chat": 1})
    clock.advance(1)
    await ready_agent(eng, "a1", capacity={"chat": 1})
    clock.advance(1)
    await eng.create_contact(chat(id="c1"))
    c = await eng.get_contact("c1")
    assert c.why is not None
    # in-house first: the vendor's agent idled longer, but its pool ranks after
    assert c.why["strategy"] == "longest_idle" and c.why["chosen"] == "a1"
    assert c.why["at"] == clock.now_ms()
    assert sorted(c.why["candidates"], key=lambda x: x["pool"]) == [
        {"agent": "a1", "pool": "inhouse", "entry": 0, "score": 1_001_000},
        {"agent": "n1", "pool": "near", "entry": 0, "score": 1_000_000, "rank": 1},
    ]
    ev = (await events(eng))[-1]
    assert ev["type"] == "contact.reserved" and ev["agent"] == "a1"
    assert json.loads(ev["why"]) == c.why


async def test_preferred_agent_who_is_away_is_not_waited_for(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await eng.upsert_agent(agent("pref"), AgentStatus.AWAY)
    await eng.upsert_agent(agent("other"), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice", preferred_agent="pref"))
    assert r.agent == "other"
