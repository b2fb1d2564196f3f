"""Edge cases of routing with vendor contracts: timeouts of the only vendor a
contact's region allows, both period caps reached at once, reloads (ranks,
escalation targets, a pool leaving a failing vendor), staffing counts written
by an older version, and many contacts a vendor timed out on. Virtual time,
real Valkey."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.engine import Engine
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent, tenant_toml
from ..invariants import assert_invariants
from .test_residency import BODY as REGION_BODY

T0 = int(datetime(2026, 3, 2, 9, 10, tzinfo=UTC).timestamp() * 1000)
CHAT = {"chat": 1}


async def _ready(eng: Engine, aid: str, pool: str) -> None:
    await eng.upsert_agent(agent(aid, pool, skills={}, capacity=CHAT), AgentStatus.AVAILABLE)


async def _reload(eng: Engine, body: str) -> None:
    text = tenant_toml(eng.tenant.id, body)
    await eng.reconfigure(load_config_text(text, "<test>").tenants[eng.tenant.id])


REGION = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.home]
regions = ["us"]

[pools.eupool]
kind = "outsourced"
vendor = "euv"

[vendors.euv]
location = "nearshore"
region = "eu"

[queues.q]
channel = "chat"
offer_timeout_s = 30
pools = ["home", "eupool"]
"""


async def test_a_timeout_never_strands_a_contact_only_one_vendor_may_serve(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """`home` serves only `us`: for an `eu` contact the vendor is the only way."""
    clock = VirtualClock(T0)
    eng = await make_engine(REGION, clock)
    await _ready(eng, "e1", "eupool")
    await _ready(eng, "h1", "home")
    r = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    assert (await eng.get_contact(r.contact_id)).agent == "e1"
    await _ready(eng, "e2", "eupool")
    clock.advance(31)
    await eng.run_due_timers()  # e1 let it time out: it goes to e2, not nowhere
    c = await eng.get_contact(r.contact_id)
    assert c.state is ContactState.RESERVED and c.agent == "e2"
    await assert_invariants(redis, eng.tenant)


BOTH_CAPS = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.blr]
kind = "outsourced"
vendor = "ind"

[vendors.ind]
location = "offshore"
timezone = "Asia/Kolkata"
max_per_hour = 2
max_per_day = 2

[queues.chat]
channel = "chat"
pools = ["blr"]
offer_timeout_s = 30
"""


async def test_both_period_caps_reached_by_one_offer_reopen_at_the_vendors_midnight(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(BOTH_CAPS, clock)
    for i in range(6):
        await _ready(eng, f"b{i}", "blr")
    ids = [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(4)
    ]
    for cid in ids:
        c = await eng.get_contact(cid)
        if c.state is ContactState.RESERVED and c.agent:
            await eng.accept(cid, c.agent)
            await eng.complete(cid, c.agent, "ok", skip_wrap_up=True)
    clock.set_ms(T0 + 21 * 60 * 1000)  # a new hour there, but the day is used up
    await eng.run_due_timers()
    assert [(await eng.get_contact(c)).state for c in ids[2:]] == [ContactState.QUEUED] * 2
    clock.set_ms(T0 + (9 * 3600 + 21 * 60) * 1000)  # past midnight in Bangalore
    await eng.run_due_timers()
    assert [(await eng.get_contact(c)).state for c in ids[2:]] == [ContactState.RESERVED] * 2
    await assert_invariants(redis, eng.tenant)


async def test_a_lowered_cap_still_reopens_on_time(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    body = BOTH_CAPS.replace("max_per_day = 2\n", "")
    eng = await make_engine(body.replace("max_per_hour = 2", "max_per_hour = 3"), clock)
    for i in range(6):
        await _ready(eng, f"b{i}", "blr")
    for _ in range(2):
        assert (await eng.create_contact(NewContact(channel="chat", queue="chat"))).agent
    await _reload(eng, body.replace("max_per_hour = 2", "max_per_hour = 1"))  # 2 > 1 now
    late = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(late)).state is ContactState.QUEUED
    clock.set_ms(T0 + 20 * 60 * 1000)  # the vendor's next hour
    await eng.run_due_timers()
    assert (await eng.get_contact(late)).state is ContactState.RESERVED
    await assert_invariants(redis, eng.tenant)


PRICED = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.a]
kind = "outsourced"
vendor = "alpha"

[pools.b]
kind = "outsourced"
vendor = "beta"

[vendors.alpha]
location = "offshore"
price_per_contact = 1.0

[vendors.beta]
location = "offshore"
price_per_contact = {beta}

[queues.chat]
channel = "chat"
pools = ["a", "b"]
"""


async def test_ranks_follow_a_reload(make_engine: EngineFactory, redis: Redis) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(PRICED.format(beta="5.0"), clock)
    ranks = ["rank:a", "rank:b"]
    assert await redis.hmget(eng.keys.vendor_config, ranks) == [b"1", b"2"]
    await _reload(eng, PRICED.format(beta="0.5"))
    assert await redis.hmget(eng.keys.vendor_config, ranks) == [b"2", b"1"]
    clock.advance(61)
    await eng.run_due_timers()  # the minute's refresh uses the new contracts too
    assert await redis.hmget(eng.keys.vendor_config, ranks) == [b"2", b"1"]


ESCALATING = """
[queues.q.sla]
threshold_s = 20

[[queues.q.sla.escalation]]
on = "breach"
action = "move_queue"
queue = "urgent"
"""
URGENT = """
[queues.urgent]
channel = "chat"
pools = ["nowhere", "home"]
"""


async def test_an_escalation_added_by_a_reload_keeps_the_region(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(REGION_BODY + "\n[queues.q.sla]\nthreshold_s = 20\n" + URGENT, clock)
    r = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    await _reload(eng, REGION_BODY + ESCALATING + URGENT)
    await _ready(eng, "n1", "nowhere")  # a vendor pool without a region
    await _ready(eng, "h1", "home")  # in-house, allowed for eu
    clock.advance(21)
    await eng.run_due_timers()
    c = await eng.get_contact(r.contact_id)
    assert c.queue == "urgent" and c.pool == "home" and c.agent == "h1"
    await assert_invariants(redis, eng.tenant)


FAILING = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.ghost]
kind = "outsourced"
vendor = "ghostco"

[pools.inhouse]

[vendors.ghostco]
location = "offshore"
fail_after_timeouts = 1
fail_pause_s = 600

[vendors.goodco]
location = "offshore"

[queues.chat]
channel = "chat"
pools = ["ghost", "inhouse"]
offer_timeout_s = 20
"""


async def test_a_pool_that_leaves_a_failing_vendor_opens(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(FAILING, clock)
    await _ready(eng, "g0", "ghost")
    await eng.create_contact(NewContact(channel="chat", queue="chat"))
    clock.advance(21)
    await eng.run_due_timers()
    assert await redis.smembers(eng.keys.pool_causes("ghost")) == {b"failing"}
    await _reload(eng, FAILING.replace('vendor = "ghostco"', 'vendor = "goodco"'))
    assert not await redis.smembers(eng.keys.pool_causes("ghost"))
    assert await eng.pool_is_open("ghost")
    await assert_invariants(redis, eng.tenant)


STAFFED = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.inhouse]

[queues.chat]
channel = "chat"
pools = ["inhouse"]
"""


async def test_staffing_counts_are_rebuilt_on_apply(make_engine: EngineFactory) -> None:
    eng = await make_engine(STAFFED, VirtualClock(T0))
    for i in range(3):
        await _ready(eng, f"h{i}", "inhouse")
    key = eng.keys.staffed_pools("chat", "chat")
    assert await eng.redis.hgetall(key) == {b"inhouse": b"3"}
    await eng.redis.delete(key)  # as an older version left it: no counts
    await eng.apply_config()
    assert await eng.redis.hgetall(key) == {b"inhouse": b"3"}


SILENT = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0

[pools.inhouse]

[pools.ghost]
kind = "outsourced"
vendor = "ghost-co"

[vendors.ghost-co]
location = "offshore"
fail_after_timeouts = {after}
fail_pause_s = 60

[queues.chat]
channel = "chat"
pools = ["inhouse", "ghost"]
offer_timeout_s = 20
"""


async def test_many_timeouts_do_not_blind_the_vendors_other_agents(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock(T0)
    eng = await make_engine(SILENT.format(after=16), clock)
    await _ready(eng, "g0", "ghost")  # never answers
    ids = [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(40)
    ]
    for _ in range(45):
        clock.advance(21)
        await eng.run_due_timers()
    await eng.set_agent_status("g0", "offline")
    clock.advance(60)  # the failing pause is over: a fresh start
    await eng.run_due_timers()
    new = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    await _ready(eng, "g1", "ghost")  # a working agent of the same vendor
    await eng.run_due_timers()
    assert (await eng.get_agent("g1")).load.get("chat", 0) == 1
    held = [c for c in [*ids, new] if (await eng.get_contact(c)).agent == "g1"]
    assert len(held) == 1
    await assert_invariants(redis, eng.tenant)
