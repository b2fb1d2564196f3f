"""Outsourced pools open as overflow stages by estimated wait, or at once when
in-house is closed or has nobody signed in (docs/vendors.md, "Overflow triggers").

Virtual clock, real Valkey: every step below happens at one instant unless the
test advances the clock, so "at once" means without any stage timer.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import TenantConfig, load_config_text
from router.engine import Engine
from router.errors import ConfigError
from router.keys import TenantKeys
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from ..invariants import Snapshot, assert_invariants, snapshot


def _open_stage(
    tenant: TenantConfig, s: Snapshot, queue: str, ch: str, stage: int, staffed: dict[str, int]
) -> int:
    """The stage a contact at `stage` is routed at, recomputed from the config."""
    stages = tenant.queues[queue.split("~")[0]].stages
    best = stage
    for j in range(1, len(stages)):
        if any(p not in s.closed and staffed.get(p, 0) > 0 for p in stages[j - 1].pools):
            return best
        if stages[j].when_unstaffed:
            best = max(best, j)
    return best


async def assert_open_stages(r: Redis, tenant: TenantConfig) -> None:
    """The staffing counts match the agents signed in, and no contact waits while
    a ready agent of a `when_unstaffed` stage open for it is free to take it."""
    s = await snapshot(r, tenant.id)
    keys = TenantKeys(tenant.id)
    staffed: dict[str, dict[str, int]] = {}
    for aid, lanes in s.lanes.items():
        if s.agents[aid]["status"] == "available":
            for lane in lanes:
                per = staffed.setdefault(lane, {})
                per[s.agents[aid]["pool"]] = per.get(s.agents[aid]["pool"], 0) + 1
    lanes_seen = {lane for ls in s.lanes.values() for lane in ls}
    for lane in lanes_seen:
        q, ch = lane.rsplit(":", 1)
        raw = await r.hgetall(keys.staffed_pools(q, ch))
        got = {k.decode(): int(v) for k, v in raw.items()}
        assert got == staffed.get(lane, {}), f"sp:{lane} = {got}, want {staffed.get(lane)}"
    full = set()
    for f, vid in s.vend.items():
        cap = int(s.vend.get(f"cap:{vid}", 0) or 0)
        if f.startswith("pool:") and cap and s.vload.get(vid, 0) >= cap:
            full.add(f[5:])
    for cid, c in s.contacts.items():
        if c["state"] != "queued" or not c["place"].startswith("w:"):
            continue
        q, ch = c["queue"], c["channel"]
        st = _open_stage(tenant, s, q, ch, int(c["stage"]), staffed.get(f"{q}:{ch}", {}))
        for key, members in s.sets.items():
            if not key.startswith(f"r:{q}:{ch}:"):
                continue
            e, pool = key.split(":")[3:5]
            if int(e) > st or pool in s.closed or pool in full:
                continue
            free = set(members) - s.declined.get(cid, set())
            assert not free, f"{cid} waits (open stage {st}) while {free} are ready ({key})"


# In-house first; the vendor's pool opens after 10 minutes of waiting, or at
# once by estimated wait (over 2 minutes) or when in-house is closed or empty;
# a second vendor only after 20 minutes.
BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
exclusive_channels = ["voice"]
wrap_up_s = { voice = 0 }

[pools.inhouse]
kind = "inhouse"

[pools.bpo]
kind = "outsourced"
vendor = "bpo"

[vendors.bpo]
location = "offshore"

[pools.far]
kind = "outsourced"
vendor = "far"

[vendors.far]
location = "offshore"

[queues.voice]
channel = "voice"
pools = ["inhouse"]
offer_timeout_s = 30

[[queues.voice.overflow]]
after_s = 600
pools = ["bpo"]
estimated_wait_s = 120
when_unstaffed = true

[[queues.voice.overflow]]
after_s = 1200
pools = ["far"]
"""


async def _agent(eng: Engine, aid: str, pool: str, status: AgentStatus) -> None:
    await eng.upsert_agent(agent(aid, pool, capacity={"voice": 1}), status)


async def _call(eng: Engine) -> str:
    return (await eng.create_contact(NewContact(channel="voice", queue="voice"))).contact_id


async def _events(redis: Redis, eng: Engine, etype: str, contact: str) -> list[dict[str, str]]:
    out = []
    for _, fields in await redis.xrange(eng.keys.events):
        ev = {k.decode(): v.decode() for k, v in fields.items()}
        if ev["type"] == etype and ev.get("contact") == contact:
            out.append(ev)
    return out


async def _stage_timer(redis: Redis, eng: Engine, contact: str) -> float | None:
    score: float | None = await redis.zscore(eng.keys.timers, f"s|{contact}")
    return score


async def _handled_300s(eng: Engine, clock: VirtualClock, aid: str) -> None:
    """One in-house call of 300 s: the queue's handle time per slot becomes 300 s."""
    cid = await _call(eng)
    got = await eng.get_contact(cid)
    assert got.agent == aid
    await eng.accept(cid, aid)
    clock.advance(300)
    await eng.complete(cid, aid, "ok", skip_wrap_up=True)


async def test_long_estimated_wait_enters_the_vendor_stage_at_once(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _handled_300s(eng, clock, "h1")
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    first = await _call(eng)
    assert (await eng.get_contact(first)).agent == "h1"
    # h1 busy: 1 ahead x 300 s / 2 agents signed in = 150 s > 120 s
    t0 = clock.now_ms()
    second = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    got = await eng.get_contact(second.contact_id)
    assert got.state is ContactState.RESERVED and got.agent == "b1" and got.stage == 1
    [adv] = await _events(redis, eng, "contact.stage_advanced", second.contact_id)
    assert adv["reason"] == "estimated_wait"
    assert (adv["from_stage"], adv["stage"], adv["estimated_wait_ms"]) == ("0", "1", "150000")
    # its next stage still opens 20 minutes after its arrival
    assert await _stage_timer(redis, eng, second.contact_id) == t0 + 1_200_000
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # everyone busy: the next one waits at the vendor stage, with the same timer
    third = await _call(eng)
    got = await eng.get_contact(third)
    assert got.state is ContactState.QUEUED and got.stage == 1
    assert await _stage_timer(redis, eng, third) == t0 + 1_200_000
    assert len(await _events(redis, eng, "contact.stage_advanced", third)) == 1
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_short_estimated_wait_stays_in_house(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY.replace("estimated_wait_s = 120", "estimated_wait_s = 200"), clock)
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _handled_300s(eng, clock, "h1")
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    await eng.accept(await _call(eng), "h1")
    t0 = clock.now_ms()
    waiting = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    # 150 s <= 200 s: it waits for in-house, although b1 is ready
    assert waiting.state is ContactState.QUEUED and waiting.estimated_wait_s == 150.0
    got = await eng.get_contact(waiting.contact_id)
    assert got.stage == 0
    assert await _events(redis, eng, "contact.stage_advanced", waiting.contact_id) == []
    assert await _stage_timer(redis, eng, waiting.contact_id) == t0 + 600_000
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # the wait-time trigger still works: after 10 minutes it goes to the vendor
    clock.advance(600)
    await eng.run_due_timers()
    got = await eng.get_contact(waiting.contact_id)
    assert got.agent == "b1" and got.stage == 1
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_in_house_closed_sends_new_contacts_to_the_vendor_at_once(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(BODY, VirtualClock())
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    await _agent(eng, "b2", "bpo", AgentStatus.AVAILABLE)
    await _agent(eng, "f1", "far", AgentStatus.AVAILABLE)
    await eng.set_pool_open("inhouse", False, "maintenance")
    first = await _call(eng)
    got = await eng.get_contact(first)
    # offered to the vendor at its stage-0 place: the stage opened for it, it did
    # not move (no stage event), and the second vendor (no trigger) stays shut
    assert got.state is ContactState.RESERVED and got.pool == "bpo" and got.stage == 0
    assert await _events(redis, eng, "contact.stage_advanced", first) == []
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    second = await _call(eng)
    assert (await eng.get_contact(second)).pool == "bpo"
    third = await _call(eng)
    got = await eng.get_contact(third)
    assert got.state is ContactState.QUEUED  # f1 is ready, but `far` is not open yet
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # in-house reopens: new contacts go in-house first again
    await eng.set_pool_open("inhouse", True, "maintenance_over")
    got = await eng.get_contact(third)
    assert got.agent == "h1"  # the opening dispatched the waiting one to in-house
    for cid in (first, second):
        holder = (await eng.get_contact(cid)).agent
        assert holder is not None
        await eng.accept(cid, holder)
        await eng.complete(cid, holder, "ok", skip_wrap_up=True)
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # h1 is busy and the vendor's agents are ready, but in-house is open and
    # staffed: the new contact waits for in-house
    fourth = await _call(eng)
    got = await eng.get_contact(fourth)
    assert got.state is ContactState.QUEUED and got.stage == 0
    await eng.run_due_timers()
    assert (await eng.get_contact(fourth)).state is ContactState.QUEUED
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_in_house_open_but_nobody_signed_in(make_engine: EngineFactory, redis: Redis) -> None:
    eng = await make_engine(BODY, VirtualClock())
    await _agent(eng, "h1", "inhouse", AgentStatus.OFFLINE)
    await _agent(eng, "h2", "inhouse", AgentStatus.AWAY)
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    first = await _call(eng)
    got = await eng.get_contact(first)
    assert got.state is ContactState.RESERVED and got.agent == "b1" and got.stage == 0
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # h1 signs in: the next contact is in-house's, and the one after waits for it
    await eng.set_agent_status("h1", AgentStatus.AVAILABLE)
    second = await _call(eng)
    assert (await eng.get_contact(second)).agent == "h1"
    await eng.accept(first, "b1")
    await eng.complete(first, "b1", "ok", skip_wrap_up=True)
    third = await _call(eng)
    assert (await eng.get_contact(third)).state is ContactState.QUEUED
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_last_in_house_agent_signing_out_hands_waiting_contacts_to_the_vendor(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "h2", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    await _agent(eng, "b2", "bpo", AgentStatus.AVAILABLE)
    busy = [await _call(eng) for _ in range(2)]
    for cid in busy:
        holder = (await eng.get_contact(cid)).agent
        assert holder in ("h1", "h2")
        await eng.accept(cid, holder)
    waiting = []
    for _ in range(3):
        clock.advance(0.001)  # in line by arrival (same-ms contacts line up by id)
        waiting.append(await _call(eng))
    assert all(c.state is ContactState.QUEUED for c in [await eng.get_contact(c) for c in waiting])
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # one of two signs out: in-house is still staffed, nothing moves
    await eng.set_agent_status("h1", AgentStatus.OFFLINE)
    await eng.run_due_timers()
    assert all(c.state is ContactState.QUEUED for c in [await eng.get_contact(c) for c in waiting])
    # the last one signs out: the vendor's ready agents get the first two at once
    await eng.set_agent_status("h2", AgentStatus.AWAY)
    await eng.run_due_timers()  # due now: the clock did not move
    got = [await eng.get_contact(c) for c in waiting]
    assert [g.agent for g in got[:2]] == ["b1", "b2"] and got[2].state is ContactState.QUEUED
    assert all(g.stage == 0 for g in got)
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
    # a freed vendor agent reads the stage-0 line too
    await eng.accept(waiting[0], "b1")
    await eng.complete(waiting[0], "b1", "ok", skip_wrap_up=True)
    assert (await eng.get_contact(waiting[2])).agent == "b1"
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_gate_closing_hands_waiting_contacts_to_the_vendor(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(BODY, VirtualClock())
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "b1", "bpo", AgentStatus.AVAILABLE)
    held = await _call(eng)
    await eng.accept(held, "h1")
    waiting = await _call(eng)
    assert (await eng.get_contact(waiting)).state is ContactState.QUEUED
    await eng.set_pool_open("inhouse", False, "fire_drill")
    await eng.run_due_timers()
    got = await eng.get_contact(waiting)
    assert got.agent == "b1" and got.stage == 0
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)


async def test_staffing_count_follows_sign_ins_and_lane_changes(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(BODY, VirtualClock())
    key = eng.keys.staffed_pools("voice", "voice")
    await _agent(eng, "h1", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "h2", "inhouse", AgentStatus.AVAILABLE)
    await _agent(eng, "b1", "bpo", AgentStatus.OFFLINE)
    assert await redis.hgetall(key) == {b"inhouse": b"2"}
    await eng.set_agent_status("b1", AgentStatus.AVAILABLE)
    await eng.set_agent_status("h1", AgentStatus.AWAY)
    await eng.set_agent_status("h1", AgentStatus.OFFLINE)  # not a change of staffing
    assert await redis.hgetall(key) == {b"inhouse": b"1", b"bpo": b"1"}
    # h2 moves to the vendor's pool; a reload re-lanes everyone
    await eng.upsert_agent(agent("h2", "bpo", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    await eng.apply_config()
    assert await redis.hgetall(key) == {b"bpo": b"2"}
    assert await redis.scard(eng.keys.staffed("voice", "voice")) == 2


def _toml(stages: str) -> str:
    return f"""
[tenant]
id = "t1"

[pools.inhouse]
kind = "inhouse"

[pools.bpo]
kind = "outsourced"
vendor = "bpo"

[vendors.bpo]
location = "offshore"

[pools.far]
kind = "outsourced"
vendor = "far"

[vendors.far]
location = "offshore"

[queues.voice]
channel = "voice"
{stages}
"""


@pytest.mark.parametrize(
    ("stages", "error"),
    [
        (
            'pools = ["inhouse"]\n[[queues.voice.overflow]]\nafter_s = 60\npools = ["bpo"]\n'
            "estimated_wait_s = 0",
            "queues.voice.overflow[0].estimated_wait_s: must be > 0",
        ),
        (
            'pools = ["inhouse"]\n[[queues.voice.overflow]]\nafter_s = 60\npools = ["bpo"]\n'
            'when_unstaffed = "yes"',
            "queues.voice.overflow[0].when_unstaffed: expected boolean, got string",
        ),
        (
            '[[queues.voice.stages]]\npools = ["inhouse"]\nwhen_unstaffed = true\n'
            '[[queues.voice.stages]]\nafter_s = 60\npools = ["bpo"]',
            "queues.voice.stages[0].when_unstaffed: only an overflow stage may have it",
        ),
        (
            'pools = ["inhouse"]\n[[queues.voice.overflow]]\nafter_s = 60\npools = ["bpo"]\n'
            'estimated_wait_s = 300\n[[queues.voice.overflow]]\nafter_s = 90\npools = ["far"]\n'
            "estimated_wait_s = 200",
            "queues.voice.overflow[1].estimated_wait_s: must be greater than an earlier "
            "stage's estimated_wait_s (300)",
        ),
    ],
)
def test_trigger_config_errors_name_the_key(stages: str, error: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text(_toml(stages), source="t.toml")
    assert error in str(err.value)


def test_triggers_load_into_the_stages() -> None:
    cfg = load_config_text(
        _toml(
            'pools = ["inhouse"]\n[[queues.voice.overflow]]\nafter_s = 60\npools = ["bpo"]\n'
            "estimated_wait_s = 90\nwhen_unstaffed = true\n[[queues.voice.overflow]]\n"
            'after_s = 120\npools = ["far"]'
        ),
        source="t.toml",
    )
    stages = next(iter(cfg.tenants.values())).queues["voice"].stages
    assert [(s.estimated_wait_s, s.when_unstaffed) for s in stages] == [
        (None, False),
        (90.0, True),
        (None, False),
    ]


async def test_sub_queues_follow_the_same_triggers(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """A contact with its own skill requirement waits in a sub-queue: the same
    stages, its own staffing counts."""
    eng = await make_engine(BODY, VirtualClock())
    spanish = {"spanish": 3}
    await eng.upsert_agent(agent("h1", "inhouse", spanish, {"voice": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("b1", "bpo", spanish, {"voice": 1}), AgentStatus.AVAILABLE)
    first = await eng.create_contact(NewContact(channel="voice", queue="voice", skills=spanish))
    assert first.agent == "h1"
    await eng.accept(first.contact_id, "h1")
    waiting = await eng.create_contact(NewContact(channel="voice", queue="voice", skills=spanish))
    assert waiting.state is ContactState.QUEUED
    assert "~" in (await redis.hget(eng.keys.contact(waiting.contact_id), "queue") or b"").decode()
    await eng.set_pool_open("inhouse", False, "maintenance")
    await eng.run_due_timers()
    got = await eng.get_contact(waiting.contact_id)
    assert got.agent == "b1" and got.stage == 0
    await assert_invariants(redis, eng.tenant)
    await assert_open_stages(redis, eng.tenant)
