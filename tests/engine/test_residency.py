"""Data residency: a contact tagged with a region is only ever offered to pools
allowed for that region (docs/vendors.md, "Data residency").

An outsourced pool serves its vendor's `region` only (a vendor without one serves
no tagged contact); an in-house pool serves every region unless it lists
`regions`. Queues enforce it through the contact's sub-queue (the region is part
of its requirement); the named-agent paths (preferred, sticky, transfer to an
agent) check it on their own. A property test drives random traffic in virtual
time and checks every `contact.reserved` against the config of its moment.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.config.model import TenantConfig
from router.engine import Engine
from router.errors import NotEligible, SwitchboardError, ValidationError
from router.model import AgentSpec, AgentStatus, ContactState, Customer, NewContact

from ..conftest import EngineFactory, drop_tenant
from ..factories import agent, tenant_toml
from ..invariants import assert_invariants

# home serves eu only, anywhere every region, apac is a vendor pool of region
# apac, nowhere a vendor pool without a region. Stage 1 (after 5 s) adds `late`.
BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { chat = 0 }
prefer_last_agent = true
preferred_agent_s = 15
transfer_wait_s = 20

[pools.home]
regions = ["eu"]

[pools.anywhere]

[pools.late]

[pools.apac]
kind = "outsourced"
vendor = "far"

[pools.nowhere]
kind = "outsourced"
vendor = "blank"

[vendors.far]
location = "offshore"
region = "apac"

[vendors.blank]
location = "nearshore"

[queues.q]
channel = "chat"
offer_timeout_s = 30

[[queues.q.stages]]
pools = ["nowhere", "apac", "home"]

[[queues.q.stages]]
after_s = 5
pools = ["late"]

[queues.vendors_only]
channel = "chat"
pools = ["nowhere", "apac"]
"""

CHAT = {"chat": 1}


def _events(raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in raw]


async def _reserved(redis: Redis, eng: Engine) -> list[tuple[str, str]]:
    evs = _events(await redis.xrange(eng.keys.events))
    return [(e["contact"], e["pool"]) for e in evs if e["type"] == "contact.reserved"]


async def _staff(eng: Engine, clock: VirtualClock, *pairs: tuple[str, str]) -> None:
    """Agents signed in in this order: the first one is idle longest."""
    for aid, pool in pairs:
        await eng.upsert_agent(agent(aid, pool, skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
        clock.advance(1)


async def test_a_tagged_contact_goes_only_to_pools_allowed_for_its_region(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    # n1 is idle longest: without the rule it would take every contact
    await _staff(eng, clock, ("n1", "nowhere"), ("p1", "apac"), ("h1", "home"))
    eu = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    assert eu.agent == "h1"
    apac = await eng.create_contact(NewContact(channel="chat", queue="q", region="apac"))
    assert apac.agent == "p1"
    eu2 = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    assert eu2.state is ContactState.QUEUED and eu2.queue == "q"
    plain = await eng.create_contact(NewContact(channel="chat", queue="q"))
    assert plain.agent == "n1"
    c = await eng.get_contact(eu2.contact_id)
    # stored and shown; the pseudo-requirement stays out of the skills
    assert c.region == "eu" and c.skills == {} and c.queue == "q"
    # `late` opens at stage 1 and serves every region
    await eng.upsert_agent(agent("l1", "late", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(eu2.contact_id)).state is ContactState.QUEUED
    clock.advance(5)
    await eng.run_due_timers()
    assert (await eng.get_contact(eu2.contact_id)).agent == "l1"
    assert await _reserved(redis, eng) == [
        (eu.contact_id, "home"),
        (apac.contact_id, "apac"),
        (plain.contact_id, "nowhere"),
        (eu2.contact_id, "late"),
    ]
    await assert_invariants(redis, eng.tenant)


async def test_a_region_no_pool_may_serve_is_refused_and_nothing_is_written(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(BODY)
    before = await redis.xlen(eng.keys.events)
    with pytest.raises(ValidationError) as info:
        await eng.create_contact(NewContact(channel="chat", queue="vendors_only", region="eu"))
    assert "region 'eu'" in info.value.message and "queue 'vendors_only'" in info.value.message
    assert info.value.details["field"] == "region"
    for bad in ("EU", "e u", "x" * 33, "-eu"):
        with pytest.raises(ValidationError):
            await eng.create_contact(NewContact(channel="chat", queue="q", region=bad))
    assert await redis.xlen(eng.keys.events) == before
    # the vendor pool with a region serves it
    ok = await eng.create_contact(NewContact(channel="chat", queue="vendors_only", region="apac"))
    assert ok.state is ContactState.QUEUED


async def test_a_preferred_or_last_agent_of_a_pool_not_allowed_is_skipped(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    await _staff(eng, clock, ("n1", "nowhere"), ("h1", "home"))
    # preferred agent n1 cannot take an eu contact: h1 takes it at once
    r = await eng.create_contact(
        NewContact(channel="chat", queue="q", region="eu", preferred_agent="n1")
    )
    assert r.agent == "h1"
    # customer x was last served by n1 (sticky); its eu contact does not wait for n1
    first = await eng.create_contact(
        NewContact(channel="chat", queue="q", customer=Customer(id="x"))
    )
    assert first.agent == "n1"
    await eng.accept(first.contact_id, "n1")
    await eng.complete(first.contact_id, "n1", skip_wrap_up=True)
    await eng.accept(r.contact_id, "h1")
    await eng.complete(r.contact_id, "h1", skip_wrap_up=True)
    await eng.set_agent_status("h1", AgentStatus.AWAY)
    second = await eng.create_contact(
        NewContact(channel="chat", queue="q", region="eu", customer=Customer(id="x"))
    )
    c = await eng.get_contact(second.contact_id)
    assert c.state is ContactState.QUEUED and c.preferred_agent is None and c.agent is None
    # while an untagged contact of the same customer does wait for n1 (busy now)
    busy = await eng.create_contact(NewContact(channel="chat", queue="q"))
    assert busy.agent == "n1"
    third = await eng.create_contact(
        NewContact(channel="chat", queue="q", customer=Customer(id="x"))
    )
    assert (await eng.get_contact(third.contact_id)).preferred_agent == "n1"
    await eng.reject(busy.contact_id, "n1")  # n1 frees up: its named contact first
    assert (await eng.get_contact(third.contact_id)).agent == "n1"
    assert (await eng.get_contact(second.contact_id)).agent is None
    await assert_invariants(redis, eng.tenant)


async def test_transfers_keep_the_region(make_engine: EngineFactory, redis: Redis) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    await _staff(eng, clock, ("h1", "home"), ("n1", "nowhere"))
    r = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    assert r.agent == "h1"
    await eng.accept(r.contact_id, "h1")
    with pytest.raises(NotEligible) as info:
        await eng.transfer(r.contact_id, agent="n1")
    assert "pool nowhere" in info.value.message and "'eu'" in info.value.message
    with pytest.raises(ValidationError) as info2:
        await eng.transfer(r.contact_id, queue="vendors_only")
    assert "region 'eu'" in info2.value.message
    c = await eng.get_contact(r.contact_id)
    assert c.state is ContactState.ASSIGNED and c.agent == "h1"
    # back to its queue: n1 is ready, but the contact keeps waiting for an eu pool
    await eng.set_agent_status("h1", AgentStatus.AWAY)
    out = await eng.transfer(r.contact_id, queue="q")
    assert out.agent is None and out.state is ContactState.QUEUED
    await eng.upsert_agent(agent("h2", "home", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "h2"
    await assert_invariants(redis, eng.tenant)


async def test_a_named_agent_whose_pool_lost_the_region_is_not_offered(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """A contact waiting for a named agent (aw:) when a reload takes the region away
    from the agent's pool: neither the agent freeing up nor a stage timer offers it."""
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    await _staff(eng, clock, ("h1", "home"), ("h2", "home"))
    busy = await eng.create_contact(NewContact(channel="chat", queue="q"))
    assert busy.agent == "h1"
    await eng.accept(busy.contact_id, "h1")
    r = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    assert r.agent == "h2"
    await eng.accept(r.contact_id, "h2")
    await eng.transfer(r.contact_id, agent="h1")  # h1 is busy: r waits for it
    assert (await eng.get_contact(r.contact_id)).preferred_agent == "h1"
    text = tenant_toml(eng.tenant.id, BODY.replace('regions = ["eu"]', 'regions = ["us"]'))
    await eng.reconfigure(load_config_text(text, "<test>").tenants[eng.tenant.id])
    await eng.complete(busy.contact_id, "h1", skip_wrap_up=True)  # h1 frees up
    c = await eng.get_contact(r.contact_id)
    assert c.state is ContactState.QUEUED and c.agent is None
    clock.advance(5)  # the stage timer re-routes it
    await eng.run_due_timers()
    assert (await eng.get_contact(r.contact_id)).agent is None
    await eng.upsert_agent(agent("l1", "late", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    clock.advance(15)  # the transfer wait ends: back to its queue, where l1 serves eu
    await eng.run_due_timers()
    assert (await eng.get_contact(r.contact_id)).agent == "l1"
    assert [p for cid, p in await _reserved(redis, eng) if cid == r.contact_id] == [
        "home",
        "late",
    ]
    await assert_invariants(redis, eng.tenant)


ESCALATING = (
    BODY
    + """
[queues.q.sla]
threshold_s = 20

[[queues.q.sla.escalation]]
on = "breach"
action = "move_queue"
queue = "urgent"

[queues.urgent]
channel = "chat"
pools = ["nowhere", "home"]
"""
)


async def test_an_escalation_move_keeps_the_region(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(ESCALATING, clock)
    r = await eng.create_contact(NewContact(channel="chat", queue="q", region="eu"))
    await eng.upsert_agent(agent("n1", "nowhere", skills={}, capacity=CHAT), AgentStatus.AWAY)
    clock.advance(20)  # breach: moved to `urgent`, where n1 may not take it
    await eng.run_due_timers()
    await eng.set_agent_status("n1", AgentStatus.AVAILABLE)
    c = await eng.get_contact(r.contact_id)
    assert c.queue == "urgent" and c.state is ContactState.QUEUED and c.agent is None
    await eng.upsert_agent(agent("h1", "home", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "h1"
    await assert_invariants(redis, eng.tenant)


async def test_a_reload_that_removes_the_queue_keeps_the_region(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    body = BODY + '[queues.old]\nchannel = "chat"\npools = ["home"]\n'
    eng = await make_engine(body, clock)
    r = await eng.create_contact(NewContact(channel="chat", queue="old", region="eu"))
    await eng.upsert_agent(agent("n1", "nowhere", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    # `old` goes; its contact goes to the fallback `q`, into the sub-queue of its
    # region: n1 (a pool without a region) is ready there but never offered it
    text = tenant_toml(
        eng.tenant.id, BODY.replace("[routing]\n", '[routing]\nfallback_queue = "q"\n')
    )
    await eng.reconfigure(load_config_text(text, "<test>").tenants[eng.tenant.id])
    c = await eng.get_contact(r.contact_id)
    assert c.queue == "q" and c.state is ContactState.QUEUED and c.agent is None
    await eng.upsert_agent(agent("h1", "home", skills={}, capacity=CHAT), AgentStatus.AVAILABLE)
    assert (await eng.get_contact(r.contact_id)).agent == "h1"
    await assert_invariants(redis, eng.tenant)


# -- property ------------------------------------------------------------------------

REGIONS = ["eu", "us", "apac"]
FIXED_AGENTS = ["a_h0", "a_h1", "a_v0", "a_v1"]
POOLS = ["h0", "h1", "v0", "v1"]

PROP_BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = {{ chat = 0 }}
prefer_last_agent = true
preferred_agent_s = 15
transfer_wait_s = 20

[pools.h0]
{h0}

[pools.h1]
{h1}

[pools.v0]
kind = "outsourced"
vendor = "va"

[pools.v1]
kind = "outsourced"
vendor = "vb"

[vendors.va]
location = "offshore"
{va}

[vendors.vb]
location = "nearshore"
{vb}

[queues.q1]
channel = "chat"
offer_timeout_s = 10

[[queues.q1.stages]]
pools = ["v0"]

[[queues.q1.stages]]
after_s = 10
pools = ["h0"]

[[queues.q1.stages]]
after_s = 20
pools = ["h1", "v1"]

[queues.q2]
channel = "chat"
offer_timeout_s = 10

[[queues.q2.stages]]
pools = ["v1"]

[[queues.q2.stages]]
after_s = 15
pools = ["h1"]
"""


def _regions_line(regions: list[str] | None) -> str:
    return "" if regions is None else "regions = [" + ", ".join(f'"{r}"' for r in regions) + "]"


def _prop_config(
    tid: str,
    h0: list[str] | None,
    h1: list[str] | None,
    va: str | None,
    vb: str | None,
) -> TenantConfig:
    body = PROP_BODY.format(
        h0=_regions_line(h0),
        h1=_regions_line(h1),
        va=f'region = "{va}"' if va else "",
        vb=f'region = "{vb}"' if vb else "",
    )
    return load_config_text(tenant_toml(tid, body), "<test>").tenants[tid]


def _allowed(t: TenantConfig, pool: str, region: str | None) -> bool:
    """The residency rule, written out independently of router/eligibility.py."""
    if region is None:
        return True
    p = t.pools[pool]
    if p.vendor is not None:
        return t.vendors[p.vendor].region == region
    return p.regions is None or region in p.regions


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    ms, _, seq = (raw.decode() if isinstance(raw, bytes) else raw).partition("-")
    return int(ms), int(seq)


inhouse_regions = st.one_of(st.none(), st.lists(st.sampled_from(REGIONS), unique=True, max_size=2))
vendor_region = st.sampled_from([None, *REGIONS])
contact_region = st.sampled_from([None, *REGIONS])
idx = st.integers(0, 40)
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            st.sampled_from(["q1", "q2"]),
            contact_region,
            st.sampled_from([None, *FIXED_AGENTS]),
            st.sampled_from([None, "c1", "c2"]),
        ),
        st.tuples(st.just("advance"), st.integers(1, 25)),
        st.tuples(st.just("accept"), idx),
        st.tuples(st.just("complete"), idx),
        st.tuples(st.just("reject"), idx),
        st.tuples(
            st.just("status"), st.sampled_from(FIXED_AGENTS), st.sampled_from(["available", "away"])
        ),
        st.tuples(st.just("transfer_q"), idx, st.sampled_from(["q1", "q2"])),
        st.tuples(st.just("transfer_a"), idx, st.sampled_from(FIXED_AGENTS)),
        st.tuples(st.just("reload"), inhouse_regions, inhouse_regions),
    ),
    min_size=5,
    max_size=30,
)


@dataclass
class _Run:
    eng: Engine
    clock: VirtualClock
    redis: Redis
    va: str | None
    vb: str | None
    regions: dict[str, str | None] = field(default_factory=dict)
    # (last event id before the config took effect, config)
    epochs: list[tuple[tuple[int, int], TenantConfig]] = field(default_factory=list)

    async def last_id(self) -> tuple[int, int]:
        last = await self.redis.xrevrange(self.eng.keys.events, count=1)
        return _stream_id(last[0][0]) if last else (0, 0)

    async def reload(self, h0: list[str] | None, h1: list[str] | None) -> None:
        t = _prop_config(self.eng.tenant.id, h0, h1, self.va, self.vb)
        self.epochs.append((await self.last_id(), t))
        await self.eng.reconfigure(t)

    def contact(self, i: int) -> str | None:
        ids = list(self.regions)
        return ids[i % len(ids)] if ids else None


async def _step(run: _Run, op: tuple[object, ...]) -> None:
    eng = run.eng
    kind = op[0]
    if kind == "create":
        _, queue, region, pref, cust = op
        assert isinstance(queue, str)
        t = eng.tenant
        servable = region is None or any(
            _allowed(t, p, region)  # type: ignore[arg-type]
            for p in t.queues[queue].pools_at(len(t.queues[queue].stages) - 1)
        )
        new = NewContact(
            channel="chat",
            queue=queue,
            region=region,  # type: ignore[arg-type]
            preferred_agent=pref,  # type: ignore[arg-type]
            customer=Customer(id=cust),  # type: ignore[arg-type]
        )
        try:
            r = await eng.create_contact(new)
        except ValidationError:
            assert not servable, f"{region} refused in {queue} though a pool serves it"
            return
        assert servable, f"{region} accepted in {queue} though no pool serves it"
        run.regions[r.contact_id] = region  # type: ignore[assignment]
    elif kind == "advance":
        run.clock.advance(op[1])  # type: ignore[arg-type]
        await eng.run_due_timers()
    elif kind == "status":
        await eng.set_agent_status(op[1], op[2])  # type: ignore[arg-type]
    elif kind == "reload":
        await run.reload(op[1], op[2])  # type: ignore[arg-type]
    else:
        cid = run.contact(op[1])  # type: ignore[arg-type]
        if cid is None:
            return
        c = await eng.get_contact(cid)
        try:
            if kind == "accept" and c.state is ContactState.RESERVED and c.agent:
                await eng.accept(cid, c.agent)
            elif kind == "reject" and c.state is ContactState.RESERVED and c.agent:
                await eng.reject(cid, c.agent)
            elif kind == "complete" and c.state is ContactState.ASSIGNED:
                await eng.complete(cid, c.agent, skip_wrap_up=True)
            elif kind == "transfer_q" and c.state is not ContactState.COMPLETED:
                await eng.transfer(cid, queue=op[2])  # type: ignore[arg-type]
            elif kind == "transfer_a" and c.state is not ContactState.COMPLETED:
                await eng.transfer(cid, agent=op[2])  # type: ignore[arg-type]
        except NotEligible:
            pool = (await eng.get_agent(op[2])).pool  # type: ignore[arg-type]
            assert not _allowed(eng.tenant, pool, c.region)
        except SwitchboardError:
            pass  # a refused transition changes nothing; the invariants check it


async def _drain(run: _Run) -> None:
    """Every pool serving every region, everyone available, one fresh agent per pool
    (one that no contact has excluded by a missed offer): all contacts complete.
    Time moves in steps shorter than the offer timeout, so no offer lapses."""
    await run.reload(None, None)
    eng = run.eng
    for aid in FIXED_AGENTS:
        await eng.set_agent_status(aid, AgentStatus.AVAILABLE)
    for pool in POOLS:
        await eng.upsert_agent(AgentSpec(f"d_{pool}", pool, capacity={"chat": 1}))
        await eng.set_agent_status(f"d_{pool}", AgentStatus.AVAILABLE)
    for _ in range(100):
        changed = True
        while changed:
            changed = False
            for cid in run.regions:
                c = await eng.get_contact(cid)
                if c.state is ContactState.RESERVED and c.agent:
                    await eng.accept(cid, c.agent)
                    changed = True
                elif c.state is ContactState.ASSIGNED:
                    await eng.complete(cid, c.agent, skip_wrap_up=True)
                    changed = True
        states = [(await eng.get_contact(cid)).state for cid in run.regions]
        if all(state is ContactState.COMPLETED for state in states):
            return
        run.clock.advance(5)
        await eng.run_due_timers()


async def _scenario(
    redis_url: str,
    h0: list[str] | None,
    h1: list[str] | None,
    va: str | None,
    vb: str | None,
    extra: list[str],
    available: list[bool],
    steps: list[tuple[object, ...]],
) -> None:
    redis = Redis.from_url(redis_url)
    tid = "r" + uuid.uuid4().hex[:12]
    clock = VirtualClock()
    try:
        t = _prop_config(tid, h0, h1, va, vb)
        eng = Engine(redis, t, clock)
        await eng.apply_config()
        run = _Run(eng, clock, redis, va, vb, epochs=[((0, 0), t)])
        agents = [*zip(FIXED_AGENTS, POOLS, strict=True)]
        agents += [(f"x{i}", pool) for i, pool in enumerate(extra)]
        for (aid, pool), on in zip(agents, available + [True] * len(agents), strict=False):
            status = AgentStatus.AVAILABLE if on else AgentStatus.AWAY
            await eng.upsert_agent(AgentSpec(aid, pool, capacity={"chat": 1}), status)
            clock.advance(1)
        for op in steps:
            await _step(run, op)
            await assert_invariants(redis, eng.tenant)
        await _drain(run)
        await assert_invariants(redis, eng.tenant)
        # every reservation went to a pool allowed for the contact's region, under
        # the config in force when it was made
        evs = await redis.xrange(eng.keys.events)
        checked = 0
        for raw_id, f in evs:
            e = {k.decode(): v.decode() for k, v in f.items()}
            if e["type"] != "contact.reserved":
                continue
            at = _stream_id(raw_id)
            config = [c for start, c in run.epochs if start < at][-1]
            region = run.regions.get(e["contact"])
            assert _allowed(config, e["pool"], region), (
                f"{e['contact']} (region {region}) reserved for pool {e['pool']}"
            )
            checked += 1
        # nothing is lost: every accepted contact was served in the end
        for cid in run.regions:
            c = await eng.get_contact(cid)
            assert c.state is ContactState.COMPLETED, f"{cid} ({run.regions[cid]}) is {c.state}"
        assert checked >= len(run.regions)
    finally:
        await drop_tenant(redis, tid)
        await redis.aclose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    h0=inhouse_regions,
    h1=inhouse_regions,
    va=vendor_region,
    vb=vendor_region,
    extra=st.lists(st.sampled_from(POOLS), max_size=3),
    available=st.lists(st.booleans(), min_size=4, max_size=7),
    steps=ops,
)
def test_residency_holds_under_random_traffic(
    redis_url: str,
    h0: list[str] | None,
    h1: list[str] | None,
    va: str | None,
    vb: str | None,
    extra: list[str],
    available: list[bool],
    steps: list[tuple[object, ...]],
) -> None:
    asyncio.run(_scenario(redis_url, h0, h1, va, vb, extra, available, steps))
