"""Routing with vendor contracts: max_per_hour and max_per_day in the vendor's
own hours and days, failing (silent) vendors skipped and failed over, and the
order among vendors by commitment and cost. Virtual time, real Valkey."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.engine import Engine
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from ..invariants import assert_invariants

# 2026-03-02 09:10 UTC, a Monday; Asia/Kolkata is UTC+05:30, so its hours turn
# at :30 UTC and its day at 18:30 UTC.
T0 = int(datetime(2026, 3, 2, 9, 10, tzinfo=UTC).timestamp() * 1000)

CAPPED = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.inhouse]
kind = "inhouse"

[pools.blr]
kind = "outsourced"
vendor = "ind"

[vendors.ind]
location = "offshore"
timezone = "Asia/Kolkata"
{caps}

[queues.chat]
channel = "chat"
pools = ["blr"]
offer_timeout_s = 30
"""


async def _vendor_agents(eng: Engine, pool: str, n: int, prefix: str) -> None:
    for i in range(n):
        await eng.upsert_agent(
            agent(f"{prefix}{i}", pool, capacity={"chat": 1}), AgentStatus.AVAILABLE
        )


async def _chats(eng: Engine, n: int) -> list[str]:
    return [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(n)
    ]


async def _states(eng: Engine, ids: list[str]) -> list[ContactState]:
    return [(await eng.get_contact(c)).state for c in ids]


async def test_max_per_hour_counts_in_the_vendors_own_hour(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(CAPPED.format(caps="max_per_hour = 2"), clock)
    await _vendor_agents(eng, "blr", 6, "b")
    ids = await _chats(eng, 4)
    assert await _states(eng, ids) == [ContactState.RESERVED] * 2 + [ContactState.QUEUED] * 2
    await assert_invariants(redis, eng.tenant)
    # a rejected offer is handed back: it no longer counts, so the next one goes
    first = await eng.get_contact(ids[0])
    assert first.agent is not None
    await eng.reject(ids[0], first.agent, "busy")
    assert (await eng.get_contact(ids[0])).state is ContactState.RESERVED  # another agent
    held = [c for c, s in zip(ids, await _states(eng, ids), strict=True) if s.value == "reserved"]
    assert len(held) == 2
    await assert_invariants(redis, eng.tenant)
    # 09:29:59 UTC is still 14:59:59 in Bangalore: nothing more
    clock.set_ms(T0 + (19 * 60 + 59) * 1000)
    await eng.run_due_timers()
    assert sum(s is ContactState.RESERVED for s in await _states(eng, ids)) == 2
    # 09:30 UTC: 15:00 there, a new hour: the waiting ones are offered at once
    clock.set_ms(T0 + 20 * 60 * 1000)
    await eng.run_due_timers()
    assert sum(s is ContactState.RESERVED for s in await _states(eng, ids)) == 4
    await assert_invariants(redis, eng.tenant)


async def test_max_per_day_turns_at_the_vendors_midnight(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(CAPPED.format(caps="max_per_day = 3"), clock)
    await _vendor_agents(eng, "blr", 5, "b")
    ids = await _chats(eng, 5)
    assert [s.value for s in await _states(eng, ids)].count("reserved") == 3
    for cid in ids[:3]:
        c = await eng.get_contact(cid)
        assert c.agent is not None
        await eng.accept(cid, c.agent)
        await eng.complete(cid, c.agent, "ok", skip_wrap_up=True)
    # completed ones still count for the day: the other two wait
    assert await _states(eng, ids[3:]) == [ContactState.QUEUED] * 2
    day = (T0 + 19_800_000) // 86_400_000  # its local date, in days since 1970
    assert int(await redis.get(eng.keys.vendor_day("ind", day)) or 0) == 3
    clock.set_ms(T0 + (9 * 3600 + 19 * 60) * 1000)  # 18:29 UTC: 23:59 there
    await eng.run_due_timers()
    assert await _states(eng, ids[3:]) == [ContactState.QUEUED] * 2
    clock.set_ms(T0 + (9 * 3600 + 20 * 60) * 1000)  # 18:30 UTC: midnight there
    await eng.run_due_timers()
    assert await _states(eng, ids[3:]) == [ContactState.RESERVED] * 2
    assert int(await redis.get(eng.keys.vendor_day("ind", day + 1)) or 0) == 2
    await assert_invariants(redis, eng.tenant)


# -- a vendor goes silent --------------------------------------------------------------

SILENT = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
cost_currency = "EUR"

[pools.inhouse]
kind = "inhouse"

[pools.ghost]
kind = "outsourced"
vendor = "ghost-co"

[pools.good]
kind = "outsourced"
vendor = "good-co"

[vendors.ghost-co]
location = "offshore"
price_per_contact = 1.0
fail_after_timeouts = 3
fail_pause_s = 600

[vendors.good-co]
location = "nearshore"
price_per_contact = 3.0

[queues.chat]
channel = "chat"
pools = ["ghost"]
offer_timeout_s = 20

[[queues.chat.overflow]]
after_s = 60
pools = ["good"]
"""


async def _events(eng: Engine) -> list[dict[str, str]]:
    raw = await eng.redis.xrange(eng.keys.events)
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in raw]


async def test_a_silent_vendor_is_failed_over_and_paused(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(SILENT, clock)
    await _vendor_agents(eng, "ghost", 5, "g")  # signed in, never answer
    await _vendor_agents(eng, "good", 5, "o")
    ids = await _chats(eng, 2)
    for step in range(40):  # 200 s, a new contact every 5 s
        clock.advance(5)
        if step < 8:
            ids += await _chats(eng, 1)
        await eng.run_due_timers()
        # the good vendor's agents answer whatever they are offered
        for cid in ids:
            c = await eng.get_contact(cid)
            if c.state is ContactState.RESERVED and c.pool == "good" and c.agent:
                await eng.accept(cid, c.agent)
                await eng.complete(cid, c.agent, "ok", skip_wrap_up=True)
    await assert_invariants(redis, eng.tenant)
    evs = await _events(eng)
    offered_to_ghost: dict[str, int] = {}
    answered: dict[str, int] = {}
    created: dict[str, int] = {}
    for e in evs:
        cid, at = e.get("contact", ""), int(e["at"])
        if e["type"] == "contact.received":
            created[cid] = at
        if e["type"] == "contact.reserved" and e["pool"] == "ghost":
            assert cid not in offered_to_ghost, f"{cid} offered to the silent vendor twice"
            offered_to_ghost[cid] = at
        if e["type"] == "contact.assigned":
            answered[cid] = at
    assert set(answered) == set(ids), "every contact is answered by the good vendor"
    for cid, at in offered_to_ghost.items():
        # it moves on within the offer timeout plus one stage (60 s)
        assert answered[cid] - at <= (20 + 60) * 1000, cid
    # three timeouts in a row: the silent vendor's pool closes as failing
    gates = [e for e in evs if e["type"] == "pool.gate_changed"]
    assert [(g["pool"], g["open"], g["cause"]) for g in gates][:1] == [("ghost", "0", "failing")]
    closed_at = int(gates[0]["at"])
    assert len([t for t in offered_to_ghost.values() if t <= closed_at]) >= 3
    # and nothing is offered to it while it is closed
    assert all(t <= closed_at for t in offered_to_ghost.values())
    assert not await eng.pool_is_open("ghost")
    # after the pause it is tried again
    clock.advance(600)
    await eng.run_due_timers()
    assert await eng.pool_is_open("ghost")
    gates = [e for e in await _events(eng) if e["type"] == "pool.gate_changed"]
    assert (gates[-1]["open"], gates[-1]["reason"]) == ("1", "vendor_recovered")


async def test_an_answer_resets_the_run_of_timeouts(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(SILENT, clock)
    await _vendor_agents(eng, "ghost", 3, "g")
    for _ in range(3):
        await _chats(eng, 1)
        clock.advance(21)
        await eng.run_due_timers()  # its offer times out
        (cid2,) = await _chats(eng, 1)
        c = await eng.get_contact(cid2)
        assert c.state is ContactState.RESERVED and c.agent is not None
        await eng.accept(cid2, c.agent)  # an answer: the run starts over
        await eng.complete(cid2, c.agent, "ok", skip_wrap_up=True)
    assert await eng.pool_is_open("ghost")
    await assert_invariants(redis, eng.tenant)


# -- order among vendors ---------------------------------------------------------------

ORDER = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
cost_currency = "EUR"
exchange_rates = {{ USD = 0.5 }}
expected_handle_s = 240

[pools.inhouse]
kind = "inhouse"

[pools.a]
kind = "outsourced"
vendor = "alpha"

[pools.b]
kind = "outsourced"
vendor = "beta"

[vendors.alpha]
location = "nearshore"
{alpha}

[vendors.beta]
location = "offshore"
price_per_contact = 6.0
currency = "USD"
{beta}

[queues.chat]
channel = "chat"
pools = ["inhouse", "a", "b"]
offer_timeout_s = 30
"""


async def _first_choice(
    make_engine: EngineFactory, alpha: str = "price_per_minute = 0.9", beta: str = ""
) -> str:
    eng = await make_engine(ORDER.format(alpha=alpha, beta=beta), VirtualClock(T0))
    await _vendor_agents(eng, "b", 1, "b")  # the longest idle
    await _vendor_agents(eng, "a", 1, "a")
    (cid,) = await _chats(eng, 1)
    c = await eng.get_contact(cid)
    assert c.agent is not None
    return c.agent


async def test_the_cheapest_vendor_is_preferred(make_engine: EngineFactory) -> None:
    # alpha: 0.9 EUR x 4 min = 3.60 EUR; beta: 6 USD x 0.5 = 3.00 EUR
    assert await _first_choice(make_engine) == "b0"
    # alpha at 0.7 EUR/min is 2.80 EUR: now the cheaper one
    assert await _first_choice(make_engine, alpha="price_per_minute = 0.7") == "a0"


async def test_a_vendor_behind_its_commitment_comes_first(make_engine: EngineFactory) -> None:
    # alpha costs more, but is 0 contacts into a committed 100 a day at 09:10 UTC
    alpha = "price_per_minute = 0.9\nmin_per_day = 100"
    assert await _first_choice(make_engine, alpha=alpha) == "a0"


async def test_in_house_comes_before_any_vendor(make_engine: EngineFactory) -> None:
    eng = await make_engine(ORDER.format(alpha="", beta=""), VirtualClock(T0))
    await _vendor_agents(eng, "b", 1, "b")
    await eng.upsert_agent(agent("h0", "inhouse", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    (cid,) = await _chats(eng, 1)
    assert (await eng.get_contact(cid)).agent == "h0"
