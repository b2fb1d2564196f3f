"""Follow-the-sun in virtual time: pool gates follow each pool's hours.

Three outsourced sites in three time zones cover the clock between them; the
gate of each follows its own hours (or its vendor's), so contacts only ever go
to a site within its hours. The checks read the event stream and decide "within
its hours" with router/calendar.py on the config's calendars, not with the
module under test.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from router.calendar import Calendar
from router.clock import VirtualClock
from router.engine import Engine
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from ..invariants import assert_invariants

HOUR = 3_600_000
MINUTE = 60_000

# Vendor sun-bpo runs two sites, each with its own hours (Manila and San José);
# euro-co's Madrid site keeps its vendor's hours. In UTC: Manila 23:00-10:00,
# Madrid 07:00-20:00 (06:00-19:00 once Europe is on summer time), San José
# 14:00-18:00 and 18:30-01:30 (a split shift): 24/7 between them.
FTS_BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { chat = 0 }

[pools.manila]
kind = "outsourced"
vendor = "sun-bpo"
hours = "manila_day"

[pools.sanjose]
kind = "outsourced"
vendor = "sun-bpo"
hours = "sanjose_split"

[pools.madrid]
kind = "outsourced"
vendor = "euro-co"

[vendors.sun-bpo]
location = "offshore"
timezone = "Asia/Manila"
hours = "office"

[vendors.euro-co]
location = "nearshore"
hours = "madrid_day"

[calendars.office]
timezone = "Asia/Manila"
hours = { mon = ["09:00-17:00"], tue = ["09:00-17:00"], wed = ["09:00-17:00"], thu = ["09:00-17:00"], fri = ["09:00-17:00"] }

[calendars.manila_day]
timezone = "Asia/Manila"
hours = { mon = ["07:00-18:00"], tue = ["07:00-18:00"], wed = ["07:00-18:00"], thu = ["07:00-18:00"], fri = ["07:00-18:00"], sat = ["07:00-18:00"], sun = ["07:00-18:00"] }

[calendars.madrid_day]
timezone = "Europe/Madrid"
hours = { mon = ["08:00-21:00"], tue = ["08:00-21:00"], wed = ["08:00-21:00"], thu = ["08:00-21:00"], fri = ["08:00-21:00"], sat = ["08:00-21:00"], sun = ["08:00-21:00"] }

[calendars.sanjose_split]
timezone = "America/Costa_Rica"
hours = { mon = ["08:00-12:00", "12:30-19:30"], tue = ["08:00-12:00", "12:30-19:30"], wed = ["08:00-12:00", "12:30-19:30"], thu = ["08:00-12:00", "12:30-19:30"], fri = ["08:00-12:00", "12:30-19:30"], sat = ["08:00-12:00", "12:30-19:30"], sun = ["08:00-12:00", "12:30-19:30"] }

[queues.chat]
channel = "chat"
pools = ["manila", "sanjose", "madrid"]
offer_timeout_s = 60
"""
# each pool's hours as the test reads them (independently of router/pool_hours.py)
FTS_HOURS = {"manila": "manila_day", "sanjose": "sanjose_split", "madrid": "madrid_day"}


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


class Stream:
    """Reads the tenant's event stream from where it left off."""

    def __init__(self, redis: Redis, engine: Engine) -> None:
        self.redis = redis
        self.key = engine.keys.events
        self.last = "0-0"
        self.all: list[dict[str, str]] = []

    async def new(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for _, entries in await self.redis.xread({self.key: self.last}) or []:
            for eid, fields in entries:
                self.last = _s(eid)
                out.append({_s(k): _s(v) for k, v in fields.items()})
        self.all.extend(out)
        return out


async def _next_timer(redis: Redis, engine: Engine) -> int | None:
    head = await redis.zrange(engine.keys.timers, 0, 0, withscores=True)
    return int(head[0][1]) if head else None


async def _simulate(
    eng: Engine,
    redis: Redis,
    clock: VirtualClock,
    arrivals: list[int],
    handle_ms: int,
) -> Stream:
    """Discrete-event run: contacts arrive at `arrivals`; the agent offered one accepts
    at once and completes it `handle_ms` later. Time steps to the next arrival,
    completion, engine timer or pool hours boundary; every step ticks the timers
    first, as the timer loop does."""
    stream = Stream(redis, eng)
    done: list[tuple[int, str, str]] = []
    todo = list(arrivals)
    todo.reverse()
    await eng.run_due_timers()  # the start: every gate takes its hours
    steps = 0
    while todo or done:
        steps += 1
        assert steps < 20 * len(arrivals), "the simulation does not move on"
        candidates = [t for t in (todo[-1] if todo else None, done[0][0] if done else None) if t]
        for extra in (await _next_timer(redis, eng), eng.pool_hours.next_boundary()):
            if extra is not None:
                candidates.append(extra)
        clock.set_ms(max(clock.now_ms(), min(candidates)))
        now = clock.now_ms()
        await eng.run_due_timers()
        while done and done[0][0] <= now:
            _, cid, aid = heapq.heappop(done)
            await eng.complete(cid, aid, "ok", skip_wrap_up=True)
        while todo and todo[-1] <= now:
            todo.pop()
            await eng.create_contact(NewContact(channel="chat", queue="chat"))
        # offers made by any of the above: accepted at once
        while offers := [e for e in await stream.new() if e["type"] == "contact.reserved"]:
            for e in offers:
                await eng.accept(e["contact"], e["agent"])
                heapq.heappush(done, (now + handle_ms, e["contact"], e["agent"]))
    return stream


async def test_three_sites_follow_the_sun_for_48_hours(
    make_engine: EngineFactory, redis: Redis
) -> None:
    # 48 h across the night Europe moves to summer time (2026-03-29 01:00 UTC)
    start = _ms("2026-03-28T00:00:00+00:00")
    clock = VirtualClock(start)
    eng = await make_engine(FTS_BODY, clock)
    for pool in FTS_HOURS:
        for i in range(2):
            spec = agent(f"{pool}{i}", pool, capacity={"chat": 1})
            await eng.upsert_agent(spec, AgentStatus.AVAILABLE)
    arrivals = [start + i * 5 * MINUTE for i in range(48 * 12)]
    stream = await _simulate(eng, redis, clock, arrivals, handle_ms=7 * MINUTE)

    cals = {pool: Calendar(eng.tenant.calendars[c]) for pool, c in FTS_HOURS.items()}
    events = stream.all
    created = [e["contact"] for e in events if e["type"] == "contact.received"]
    assert len(created) == len(arrivals)
    reserved = [e for e in events if e["type"] == "contact.reserved"]
    # every offer went to a site within its hours at that instant
    outside = [(e["pool"], e["at"]) for e in reserved if not cals[e["pool"]].is_open(int(e["at"]))]
    assert outside == []
    # 24/7 between them: every contact answered at once, each once
    assigned = {e["contact"]: e for e in events if e["type"] == "contact.assigned"}
    assert set(assigned) == set(created)
    assert len(reserved) == len(created)
    assert max(int(e["wait_ms"]) for e in reserved) == 0
    completed = {e["contact"] for e in events if e["type"] == "contact.completed"}
    assert completed == set(created)
    # each site took its share
    taken = {pool: sum(e["pool"] == pool for e in reserved) for pool in FTS_HOURS}
    assert all(n > 50 for n in taken.values()), taken

    # each hours gate moved exactly at its calendar's boundaries
    gates = [e for e in events if e["type"] == "pool.gate_changed"]
    assert gates and all(e["cause"] == "hours" for e in gates)
    for e in gates:
        at, cal, is_open = int(e["at"]), cals[e["pool"]], e["open"] == "1"
        assert cal.is_open(at) is is_open, e
        assert at == start or cal.is_open(at - 1) is not is_open, e  # start: the first pass
        assert e["reason"] == ("opened_by_hours" if is_open else "closed_by_hours")
    madrid_opens = [int(e["at"]) for e in gates if e["pool"] == "madrid" and e["open"] == "1"]
    # 08:00 in Madrid: 07:00 UTC in winter, 06:00 UTC in summer
    assert madrid_opens == [_ms("2026-03-28T07:00:00+00:00"), _ms("2026-03-29T06:00:00+00:00")]
    sanjose = [(int(e["at"]), e["open"]) for e in gates if e["pool"] == "sanjose"]
    assert (_ms("2026-03-28T18:00:00+00:00"), "0") in sanjose  # the split shift's break
    assert (_ms("2026-03-28T18:30:00+00:00"), "1") in sanjose
    await assert_invariants(redis, eng.tenant)


# Site a works 08:00-17:00 UTC; site b (same vendor, no hours) is the next stage.
FAILOVER_BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { chat = 0 }

[pools.a]
kind = "outsourced"
vendor = "bpo"
hours = "a_day"

[pools.b]
kind = "outsourced"
vendor = "bpo"

[vendors.bpo]
location = "offshore"

[calendars.a_day]
hours = { mon = ["08:00-17:00"], tue = ["08:00-17:00"], wed = ["08:00-17:00"], thu = ["08:00-17:00"], fri = ["08:00-17:00"], sat = ["08:00-17:00"], sun = ["08:00-17:00"] }

[queues.chat]
channel = "chat"
pools = ["a"]
offer_timeout_s = 300

[[queues.chat.overflow]]
after_s = 120
pools = ["b"]
"""


async def test_a_closing_site_keeps_its_offers_and_its_waiting_contacts_fail_over(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(_ms("2026-03-02T16:58:00+00:00"))
    eng = await make_engine(FAILOVER_BODY, clock)
    await eng.upsert_agent(agent("a1", "a", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("b1", "b", capacity={"chat": 2}), AgentStatus.AVAILABLE)
    await eng.run_due_timers()
    assert await eng.pool_is_open("a")

    async def at(text: str) -> None:
        clock.set_ms(_ms(f"2026-03-02T{text}+00:00"))
        await eng.run_due_timers()

    await at("16:59:00")
    c1 = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(c1)).agent == "a1"  # offered, not yet accepted
    await at("16:59:30")
    c2 = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(c2)).state == ContactState.QUEUED  # a1 is held
    await at("17:00:00")  # site a closes
    assert not await eng.pool_is_open("a")
    await at("17:00:10")
    await eng.accept(c1, "a1")  # the outstanding offer runs its course
    await at("17:00:20")
    await eng.complete(c1, "a1", "ok", skip_wrap_up=True)
    assert (await eng.get_contact(c2)).state == ContactState.QUEUED  # a1 is closed
    await at("17:00:30")
    c3 = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(c3)).state == ContactState.QUEUED
    await at("17:01:30")  # c2's next stage opens: site b
    got = await eng.get_contact(c2)
    assert (got.state, got.agent) == (ContactState.RESERVED, "b1")
    await at("17:02:30")
    got = await eng.get_contact(c3)
    assert (got.state, got.agent) == (ContactState.RESERVED, "b1")
    await assert_invariants(redis, eng.tenant)

    # the next morning site a opens again and takes new contacts at once
    await eng.accept(c2, "b1")
    await eng.accept(c3, "b1")
    clock.set_ms(_ms("2026-03-03T08:00:00+00:00"))
    await eng.run_due_timers()
    assert await eng.pool_is_open("a")
    c4 = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(c4)).agent == "a1"
    stream = Stream(redis, eng)
    events = await stream.new()
    gates = [
        (e["pool"], e["open"], e["reason"]) for e in events if e["type"] == "pool.gate_changed"
    ]
    assert gates == [("a", "0", "closed_by_hours"), ("a", "1", "opened_by_hours")]
    b_offers = [
        (e["contact"], int(e["wait_ms"]))
        for e in events
        if e["type"] == "contact.reserved" and e["pool"] == "b"
    ]
    assert b_offers == [(c2, 120_000), (c3, 120_000)]
    await assert_invariants(redis, eng.tenant)


async def test_a_vendor_pause_and_the_hours_compose(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """Each cause holds on its own: a resume outside the hours keeps the site
    closed, and the hours opening a paused site keep it closed too."""
    clock = VirtualClock(_ms("2026-03-02T10:00:00+00:00"))
    eng = await make_engine(FAILOVER_BODY, clock)
    await eng.upsert_agent(agent("a1", "a", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.run_due_timers()
    assert await eng.pool_is_open("a")

    async def gate(is_open: bool) -> None:  # what POST /v1/vendors/bpo/pause|resume does
        reason = "vendor_resumed" if is_open else "vendor_paused"
        await eng.set_pool_open("a", is_open, reason, cause="paused")

    async def causes() -> set[str]:
        return {_s(c) for c in await redis.smembers(eng.keys.pool_causes("a"))}

    await gate(False)
    clock.set_ms(_ms("2026-03-02T18:00:00+00:00"))  # outside the hours
    await eng.run_due_timers()
    assert await causes() == {"paused", "hours"}
    await gate(True)  # resumed outside the hours: still closed
    assert not await eng.pool_is_open("a") and await causes() == {"hours"}
    c1 = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(c1)).state == ContactState.QUEUED

    await gate(False)  # paused again overnight
    clock.set_ms(_ms("2026-03-03T08:00:00+00:00"))
    await eng.run_due_timers()  # the hours open, the pause holds
    assert not await eng.pool_is_open("a") and await causes() == {"paused"}
    assert (await eng.get_contact(c1)).state == ContactState.QUEUED
    await gate(True)  # resumed in hours: open, and the contact that waited is offered
    assert await eng.pool_is_open("a")
    assert (await eng.get_contact(c1)).agent == "a1"

    events = await Stream(redis, eng).new()
    gates = [(e["open"], e["cause"]) for e in events if e["type"] == "pool.gate_changed"]
    # only real changes: closed by the pause, opened by the last resume
    assert gates == [("0", "paused"), ("1", "paused")]
    await assert_invariants(redis, eng.tenant)


async def test_sync_touches_redis_only_at_boundaries(make_engine: EngineFactory) -> None:
    clock = VirtualClock(_ms("2026-03-02T10:00:00+00:00"))
    eng = await make_engine(FAILOVER_BODY, clock)
    assert eng.pool_hours.next_boundary() == clock.now_ms()  # the start pass is due
    await eng.run_due_timers()
    close = _ms("2026-03-02T17:00:00+00:00")
    assert eng.pool_hours.next_boundary() == close
    calls = 0
    real = eng.set_pool_open

    async def counting(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    eng.set_pool_open = counting  # type: ignore[method-assign]
    for _ in range(100):
        clock.advance(60)
        await eng.run_due_timers()
    assert calls == 0 and await eng.pool_is_open("a")  # 11:40: nothing crossed
    clock.set_ms(close)
    await eng.run_due_timers()
    await eng.run_due_timers()
    assert calls == 1 and not await eng.pool_is_open("a")
    assert eng.pool_hours.next_boundary() == _ms("2026-03-03T08:00:00+00:00")
    # another process at the same boundary finds the gate already moved: no script
    other = Engine(eng.redis, eng.tenant, clock, eng.scripts)
    other.set_pool_open = counting  # type: ignore[method-assign]
    await other.run_due_timers()
    assert calls == 1 and not await eng.pool_is_open("a")
