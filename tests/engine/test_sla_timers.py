"""SLA timers in virtual time: warning and breach on time, exactly once with several
processes, none once met, business-time due dates, reopen, per-priority targets."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.engine import Engine
from router.model import AgentStatus, ContactState
from router.store.scripts import Scripts
from router.timers import TimerLoop

from ..conftest import EngineFactory
from ..factories import agent
from .sla_common import MONDAY_10, SLA_BODY, SLA_EVENTS, H, chat, email, typed

ROOT = Path(__file__).resolve().parents[2]


async def test_warning_then_breach_fire_on_time_once(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    t0 = clock.now_ms()
    await eng.create_contact(chat(id="c1"))
    clock.advance(9.999)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS) == []
    clock.advance(0.001)  # warn_at 0.5 of 20 s
    await eng.run_due_timers()
    (w,) = await typed(eng, *SLA_EVENTS)
    assert (w["type"], w["contact"], w["queue"], w["channel"], w["sla"]) == (
        "sla.warning",
        "c1",
        "chat",
        "chat",
        "answer",
    )
    assert (w["due"], w["target_ms"], w["wait_ms"], w["at"]) == (
        str(t0 + 20_000),
        "20000",
        "10000",
        str(t0 + 10_000),
    )
    clock.advance(9.999)
    await eng.run_due_timers()
    assert len(await typed(eng, *SLA_EVENTS)) == 1
    clock.advance(0.001)
    await eng.run_due_timers()
    clock.advance(3600)
    await eng.run_due_timers()
    evs = await typed(eng, *SLA_EVENTS)
    assert [e["type"] for e in evs] == ["sla.warning", "sla.breached"]
    assert evs[1]["at"] == str(t0 + 20_000) and evs[1]["wait_ms"] == "20000"
    c = await eng.get_contact("c1")
    assert c.sla_clocks == {"a": (t0 + 20_000, 20_000, t0 + 10_000)}


async def test_untimed_queue_starts_no_clock(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.create_contact(chat(id="c1", queue="plain"))
    assert await eng.redis.zcard(eng.keys.timers) == 0
    clock.advance(3600)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS) == []
    assert (await eng.get_contact("c1")).sla_clocks == {}


async def test_priority_override_shortens_the_target(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    t0 = clock.now_ms()
    await eng.create_contact(chat(id="vip", priority=7))
    await eng.create_contact(chat(id="std", priority=4))
    assert (await eng.get_contact("vip")).sla_clocks["a"] == (t0 + 10_000, 10_000, t0 + 5000)
    assert (await eng.get_contact("std")).sla_clocks["a"] == (t0 + 20_000, 20_000, t0 + 10_000)


async def test_answer_stops_the_answer_clock(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    r = await eng.create_contact(chat(id="c1"))
    assert r.agent == "a1"
    clock.advance(5)
    await eng.accept("c1", "a1")
    assert await eng.redis.zscore(eng.keys.timers, "aw|c1") is None
    clock.advance(60)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS) == []


async def test_reserved_but_unanswered_still_breaches(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(chat(id="c1"))
    clock.advance(21)
    await eng.run_due_timers()
    assert [e["type"] for e in await typed(eng, *SLA_EVENTS)] == ["sla.warning", "sla.breached"]


async def test_first_response_clock_runs_past_accept_until_respond(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    t0 = clock.now_ms()
    await eng.upsert_agent(agent("a1", capacity={"email": 2}), AgentStatus.AVAILABLE)
    await eng.create_contact(email(id="e1"))
    await eng.create_contact(email(id="e2"))
    await eng.accept("e1", "a1")
    await eng.accept("e2", "a1")
    clock.advance(60)
    assert await eng.respond("e1", "a1") == (True, t0 + 60_000, "a1")
    assert await eng.respond("e1") == (False, t0 + 60_000, "a1")  # once
    clock.advance(3600)  # e2 had no response: warning and breach; e1 none
    await eng.run_due_timers()
    evs = await typed(eng, *SLA_EVENTS, "contact.responded")
    assert [(e["type"], e["contact"], e.get("sla")) for e in evs] == [
        ("contact.responded", "e1", None),
        ("sla.warning", "e2", "first_response"),
        ("sla.breached", "e2", "first_response"),
    ]
    assert evs[0]["response_ms"] == "60000" and evs[0]["agent"] == "a1"
    assert evs[0]["pool"] == "inhouse"
    # resolution (7200 s): e1 completes in time, e2 does not
    await eng.complete("e1", "a1")
    clock.advance(3600)
    await eng.run_due_timers()
    res = [e for e in await typed(eng, *SLA_EVENTS) if e["sla"] == "resolution"]
    assert [(e["type"], e["contact"]) for e in res] == [
        ("sla.warning", "e2"),
        ("sla.breached", "e2"),
    ]
    c = await eng.get_contact("e1")
    assert c.first_response_ms == t0 + 60_000 and c.state is ContactState.COMPLETED


async def test_abandon_makes_timers_moot(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.create_contact(email(id="e1"))
    await eng.abandon("e1")
    members = [m.decode() for m in await eng.redis.zrange(eng.keys.timers, 0, -1)]
    assert not [m for m in members if m.endswith("|e1")]
    clock.advance(10_000)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS) == []


async def test_business_time_due_dates(make_engine: EngineFactory) -> None:
    # Friday 27 November 2026, 16:30 UTC: 30 min left that day, then the weekend
    clock = VirtualClock(MONDAY_10 + 4 * 24 * H + 6 * H + 30 * 60_000)
    eng = await make_engine(SLA_BODY, clock)
    await eng.create_contact(email(id="e1", queue="email_biz"))
    monday = MONDAY_10 + 7 * 24 * H - H  # Monday 30 November, 09:00
    due, allowed, warn = (await eng.get_contact("e1")).sla_clocks["f"]
    assert (due, allowed, warn) == (monday + 30 * 60_000, 3_600_000, monday + 18 * 60_000)
    clock.set_ms(monday + 18 * 60_000 - 1)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS) == []
    clock.advance(0.001)
    await eng.run_due_timers()
    assert [e["type"] for e in await typed(eng, *SLA_EVENTS)] == ["sla.warning"]


async def test_business_time_skips_lunch_and_holiday(make_engine: EngineFactory) -> None:
    # Wednesday 25 November 16:45: 15 min that day, Thursday is a holiday, Friday 09:00+
    clock = VirtualClock(MONDAY_10 + 2 * 24 * H + 6 * H + 45 * 60_000)
    eng = await make_engine(SLA_BODY, clock)
    await eng.create_contact(email(id="e1", queue="email_biz"))
    friday_9 = MONDAY_10 + 4 * 24 * H - H
    assert (await eng.get_contact("e1")).sla_clocks["f"][0] == friday_9 + 45 * 60_000


async def test_reopen_starts_a_new_first_response_clock(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.upsert_agent(agent("a1", capacity={"email": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(email(id="e1"))
    await eng.accept("e1", "a1")
    await eng.respond("e1", "a1")
    await eng.complete("e1", "a1")
    clock.advance(100)
    t1 = clock.now_ms()
    outcome, _ = await eng.message("e1", "message", '{"kind": "message"}', 3_600_000, 10)
    assert outcome == "reopened"
    c = await eng.get_contact("e1")
    assert c.first_response_ms is None
    assert c.sla_clocks["f"][0] == t1 + 3_600_000 and c.sla_clocks["r"][0] == t1 + 7_200_000
    clock.advance(6000)  # past the resolution warning (0.8 x 7200 s), not its breach
    await eng.run_due_timers()
    evs = await typed(eng, *SLA_EVENTS)
    assert [(e["type"], e["sla"]) for e in evs] == [
        ("sla.warning", "first_response"),
        ("sla.breached", "first_response"),
        ("sla.warning", "resolution"),
    ]


async def test_exactly_once_with_concurrent_processes(
    make_engine: EngineFactory, redis_url: str
) -> None:
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    n = 60
    for i in range(n):
        await eng.create_contact(chat(id=f"c{i}", priority=i % 10))
        clock.advance(0.1)
    # four "processes": own connections, own scripts, own engines and timer loops
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        engines = [Engine(r, eng.tenant, clock, Scripts(r)) for r in clients]
        loops = [TimerLoop([e], clock, batch=7) for e in engines]
        for _ in range(30):
            clock.advance(1)
            await asyncio.gather(*(loop.run_once() for loop in loops for _ in range(3)))
    finally:
        for r in clients:
            await r.aclose()
    evs = await typed(eng, *SLA_EVENTS)
    for kind in SLA_EVENTS:
        ids = [e["contact"] for e in evs if e["type"] == kind]
        assert sorted(ids) == sorted(f"c{i}" for i in range(n)), kind
    # each fired at its due time (to the 1 s step of the loop), never before
    for e in evs:
        due = int(e["due"])
        if e["type"] == "sla.breached":
            assert due <= int(e["at"]) < due + 1000


async def test_timers_survive_a_restart(make_engine: EngineFactory, redis_url: str) -> None:
    """A new engine (a restarted process) fires the clocks an old one started."""
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    await eng.create_contact(chat(id="c1"))
    r = Redis.from_url(redis_url)
    try:
        await r.script_flush()  # even the server's script cache is gone
        fresh = Engine(r, eng.tenant, clock, Scripts(r))
        clock.advance(30)
        await fresh.run_due_timers()
    finally:
        await r.aclose()
    assert [e["type"] for e in await typed(eng, *SLA_EVENTS)] == ["sla.warning", "sla.breached"]


async def test_exactly_once_with_os_processes(make_engine: EngineFactory, redis_url: str) -> None:
    """Three real processes run the timer loop for one tenant at the same time,
    over the same schedule: each clock of each contact warns once and breaches once."""
    clock = VirtualClock()
    eng = await make_engine(SLA_BODY, clock)
    t0 = clock.now_ms()
    for i in range(120):
        await eng.create_contact(chat(id=f"c{i}", priority=i % 10))
        clock.advance(0.05)
    for i in range(30):
        await eng.create_contact(email(id=f"e{i}"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.engine.sla_timer_proc",
            redis_url,
            eng.tenant.id,
            str(t0),
            "3",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        async with asyncio.timeout(60):
            for p in procs:
                assert p.stdout is not None
                assert await p.stdout.readline() == b"ready\n"
            for p in procs:  # all at once
                assert p.stdin is not None
                p.stdin.write(b"go\n")
                await p.stdin.drain()
            outs = [await p.communicate() for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0]
    applied = [int(out.split()[1]) for out, _ in outs]
    evs = await typed(eng, *SLA_EVENTS)
    fired = Counter((e["contact"], e["sla"], e["type"]) for e in evs)
    expected = {(f"c{i}", "answer") for i in range(120)}
    expected |= {(f"e{i}", kind) for i in range(30) for kind in ("first_response", "resolution")}
    assert set(fired) == {(c, k, t) for c, k in expected for t in SLA_EVENTS}
    assert set(fired.values()) == {1}, [k for k, n in fired.items() if n > 1]
    assert sum(applied) >= len(evs)  # the processes did the work, and shared it
    assert await eng.redis.zcard(eng.keys.timers) == 0
