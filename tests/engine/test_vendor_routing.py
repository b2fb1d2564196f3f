"""Routing honours a vendor's `max_concurrent` cap, over all its pools, atomically.

The cap is checked in the same script as the offer (find_agent, find_contact,
the supervisor's offer), against a per-vendor counter the transitions keep.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from router.clock import RealClock, VirtualClock
from router.config import load_config
from router.engine import Engine
from router.errors import InvalidState, NoCapacity
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory, drop_tenant, new_tenant_id
from ..factories import agent
from ..invariants import HELD, assert_invariants

ROOT = Path(__file__).resolve().parents[2]

# Vendor "bpo" runs two pools (site1, site2) and may hold 2 contacts at once.
BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
exclusive_channels = ["voice"]
wrap_up_s = { voice = 0, chat = 0 }

[pools.inhouse]
kind = "inhouse"

[pools.site1]
kind = "outsourced"
vendor = "bpo"

[pools.site2]
kind = "outsourced"
vendor = "bpo"

[vendors.bpo]
location = "offshore"
max_concurrent = 2

[queues.chat]
channel = "chat"
pools = ["site1", "site2"]
offer_timeout_s = 30

[queues.mail]
channel = "email"
pools = ["site2"]
offer_timeout_s = 30

[queues.mixed]
channel = "voice"
pools = ["site1", "inhouse"]
offer_timeout_s = 30
"""


async def _held_by_vendor(eng: Engine, contacts: list[str]) -> list[str]:
    return [c for c in contacts if (await eng.get_contact(c)).state.value in HELD]


async def test_cap_binds_the_vendor_over_all_its_pools(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(BODY, VirtualClock())
    for aid, pool in (("s1a", "site1"), ("s1b", "site1"), ("s2a", "site2"), ("s2b", "site2")):
        await eng.upsert_agent(agent(aid, pool, capacity={"chat": 1}), AgentStatus.AVAILABLE)
    ids = [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(5)
    ]
    # four ready agents in two pools, but the vendor may hold only 2
    held = await _held_by_vendor(eng, ids)
    assert held == ids[:2]
    assert int(await redis.hget(eng.keys.vendor_load, "bpo") or 0) == 2
    snap = await assert_invariants(redis, eng.tenant)
    reserved = [e for e in snap.events if e["type"] == "contact.reserved"]
    assert len(reserved) == 2
    # a rejected offer frees the slot; the contact goes to another agent of the vendor
    first = await eng.get_contact(ids[0])
    assert first.agent is not None
    await eng.reject(ids[0], first.agent, "busy")
    assert len(await _held_by_vendor(eng, ids)) == 2
    # completing one lets the freed agent take the next waiting contact
    second = await eng.get_contact(ids[1])
    assert second.agent is not None
    await eng.accept(ids[1], second.agent)
    await eng.complete(ids[1], second.agent, "ok", skip_wrap_up=True)
    held = await _held_by_vendor(eng, ids)
    assert len(held) == 2 and ids[1] not in held
    assert int(await redis.hget(eng.keys.vendor_load, "bpo") or 0) == 2
    await assert_invariants(redis, eng.tenant)


async def test_freed_room_reaches_another_pool_of_the_vendor(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """The agent that frees the slot cannot take the waiting contact (another
    channel); the `v|` timer gives it to the vendor's other ready agent."""
    body = BODY.replace("max_concurrent = 2", "max_concurrent = 1")
    clock = VirtualClock()
    eng = await make_engine(body, clock)
    await eng.upsert_agent(agent("chat1", "site1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("mail2", "site2", capacity={"email": 1}), AgentStatus.AVAILABLE)
    chat = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    mail = (await eng.create_contact(NewContact(channel="email", queue="mail"))).contact_id
    assert (await eng.get_contact(chat)).agent == "chat1"
    assert (await eng.get_contact(mail)).state == ContactState.QUEUED  # vendor at its cap
    await assert_invariants(redis, eng.tenant)
    await eng.accept(chat, "chat1")
    await eng.complete(chat, "chat1", "ok", skip_wrap_up=True)
    assert (await eng.get_contact(mail)).state == ContactState.QUEUED
    await eng.run_due_timers()
    got = await eng.get_contact(mail)
    assert got.state == ContactState.RESERVED and got.agent == "mail2"
    await assert_invariants(redis, eng.tenant)


async def test_a_capped_vendor_does_not_hold_back_in_house(
    make_engine: EngineFactory, redis: Redis
) -> None:
    body = BODY.replace("max_concurrent = 2", "max_concurrent = 1")
    eng = await make_engine(body, VirtualClock())
    await eng.upsert_agent(agent("v1", "site1", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("v2", "site1", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("h1", "inhouse", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    ids = [
        (await eng.create_contact(NewContact(channel="voice", queue="mixed"))).contact_id
        for _ in range(3)
    ]
    agents = [(await eng.get_contact(c)).agent for c in ids]
    # in-house first, one to the vendor (its cap), the third waits although v2 is ready
    assert agents[0] == "h1" and agents[1] in ("v1", "v2") and agents[2] is None
    await assert_invariants(redis, eng.tenant)
    # in-house frees up: it takes the third, and says why the vendor was skipped
    await eng.accept(ids[0], "h1")
    await eng.complete(ids[0], "h1", "ok", skip_wrap_up=True)
    got = await eng.get_contact(ids[2])
    assert got.agent == "h1"
    snap = await assert_invariants(redis, eng.tenant)
    why = json.loads(snap.contacts[ids[2]].get("why", "{}"))
    assert why["chosen"] == "h1"


async def test_supervisor_offer_is_refused_at_the_cap(
    make_engine: EngineFactory, redis: Redis
) -> None:
    body = BODY.replace("max_concurrent = 2", "max_concurrent = 1")
    eng = await make_engine(body, VirtualClock())
    await eng.upsert_agent(agent("s1", "site1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    first = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(first)).agent == "s1"
    await eng.upsert_agent(agent("s2", "site2", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    second = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    with pytest.raises(NoCapacity, match="vendor bpo of pool site2 holds its max_concurrent"):
        await eng.offer(second, "s2")
    assert (await eng.get_contact(second)).state == ContactState.QUEUED
    # an abandoned offer frees the slot (the counter follows every way out)
    await eng.abandon(first)
    assert int(await redis.hget(eng.keys.vendor_load, "bpo") or 0) == 1
    assert (await eng.get_contact(second)).state == ContactState.RESERVED
    await assert_invariants(redis, eng.tenant)


async def test_expired_offers_and_transfers_keep_the_count(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(BODY, clock)
    for aid, pool in (("s1a", "site1"), ("s2a", "site2"), ("s2b", "site2")):
        await eng.upsert_agent(agent(aid, pool, capacity={"chat": 1}), AgentStatus.AVAILABLE)
    ids = [
        (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
        for _ in range(3)
    ]
    assert len(await _held_by_vendor(eng, ids)) == 2
    clock.advance(31)
    await eng.run_due_timers()  # both offers expire, and go to the other agents
    await assert_invariants(redis, eng.tenant)
    held = await _held_by_vendor(eng, ids)
    assert len(held) == 2
    c = await eng.get_contact(held[0])
    assert c.agent is not None
    await eng.accept(held[0], c.agent)
    await eng.transfer(held[0], queue="chat")
    await assert_invariants(redis, eng.tenant)
    assert len(await _held_by_vendor(eng, ids)) == 2


# -- many processes ----------------------------------------------------------

PROC_CONFIG = """
[tenant]
id = "{tid}"

[routing]
max_missed_offers = 0
presence_timeout_s = 0
exclusive_channels = ["voice"]
wrap_up_s = {{ voice = 0.05, chat = 0 }}

[pools.inhouse]
kind = "inhouse"

[pools.site1]
kind = "outsourced"
vendor = "bpo"

[pools.site2]
kind = "outsourced"
vendor = "bpo"

[vendors.bpo]
location = "offshore"
{caps}

[queues.voice]
channel = "voice"
pools = ["inhouse"]
offer_timeout_s = 1

[[queues.voice.overflow]]
after_s = 0.05
pools = ["site1", "site2"]

[queues.chat]
channel = "chat"
pools = ["site1", "site2", "inhouse"]
offer_timeout_s = 1
"""


def _spawn(url: str, cfg: Path, wid: int, nw: int, n: int, stop: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.procs.worker", url, str(cfg), str(wid), str(nw), str(n)]
    return subprocess.Popen(
        [*args, "11", str(stop)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# events after which a contact is no longer held by any agent
RELEASING = {
    "contact.reservation_rejected",
    "contact.reservation_expired",
    "contact.completed",
    "contact.abandoned",
    "contact.transferred",
}


def _peak_per_vendor(events: list[dict[str, str]], pools: set[str]) -> int:
    """Replay the stream (the order the scripts ran in): the most contacts the
    vendor's pools held at once."""
    holder: dict[str, bool] = {}
    now = peak = 0
    for e in events:
        cid = e.get("contact")
        if cid is None:
            continue
        if e["type"] == "contact.reserved":
            if e.get("pool") in pools:
                holder[cid] = True
                now += 1
                peak = max(peak, now)
        elif e["type"] in RELEASING and holder.pop(cid, False):
            now -= 1
    assert now == 0, f"{now} contacts still held by the vendor"
    return peak


async def _proc_tenant(redis: Redis, tmp_path: Path, caps: str) -> tuple[Engine, Path]:
    """A tenant of PROC_CONFIG with vendor `caps`, written where the worker processes
    read it: 16 vendor agents over two sites (32 chats at once) and 8 in-house."""
    tid = new_tenant_id()
    path = tmp_path / "tenant.toml"
    path.write_text(PROC_CONFIG.format(tid=tid, caps=caps))
    engine = Engine(redis, load_config(path).tenants[tid], RealClock())
    await engine.apply_config()
    for i in range(24):
        pool = "inhouse" if i % 3 == 2 else ("site1" if i % 3 == 0 else "site2")
        spec = agent(f"a{i}", pool, capacity={"voice": 1, "chat": 2})
        await engine.upsert_agent(spec, AgentStatus.AVAILABLE)
    return engine, path


@pytest.mark.slow
async def test_cap_holds_under_four_processes(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    cap = 5
    engine, path = await _proc_tenant(redis, tmp_path, f"max_concurrent = {cap}")
    tid, tenant = engine.tenant.id, engine.tenant
    stop = tmp_path / "stop"
    n_workers, per_worker = 4, 150
    procs = [_spawn(redis_url, path, w, n_workers, per_worker, stop) for w in range(n_workers)]

    async def under_cap() -> None:
        load = int(await redis.hget(engine.keys.vendor_load, "bpo") or 0)
        assert load <= cap, f"vendor holds {load} > {cap}"

    try:
        await _wait_finished(engine, n_workers * per_worker, under_cap)
    finally:
        stop.touch()
        outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    snap = await assert_invariants(redis, tenant)
    peak = _peak_per_vendor(snap.events, {"site1", "site2"})
    # the cap was reached (so it bound), and never passed
    assert peak == cap
    assert int(await redis.hget(engine.keys.vendor_load, "bpo") or 0) == 0
    await drop_tenant(redis, tid)


async def test_freed_room_reaches_a_sub_queue_created_after_the_config(
    make_engine: EngineFactory, redis: Redis
) -> None:
    body = BODY.replace("max_concurrent = 2", "max_concurrent = 1")
    eng = await make_engine(body, VirtualClock())
    s1 = agent("s1", "site1", skills={"billing": 3}, capacity={"chat": 1})
    await eng.upsert_agent(s1, AgentStatus.AVAILABLE)
    first = (await eng.create_contact(NewContact(channel="chat", queue="chat"))).contact_id
    assert (await eng.get_contact(first)).agent == "s1"
    s2 = agent("s2", "site2", skills={"french": 4}, capacity={"chat": 1})
    await eng.upsert_agent(s2, AgentStatus.AVAILABLE)
    # a per-contact skill: a sub-queue the last config apply did not know
    french = NewContact(channel="chat", queue="chat", skills={"french": 2})
    second = (await eng.create_contact(french)).contact_id
    assert (await eng.get_contact(second)).state is ContactState.QUEUED  # at the cap
    await eng.accept(first, "s1")
    await eng.complete(first, "s1", "ok", skip_wrap_up=True)
    await eng.run_due_timers()  # the vendor's `v|` timer dispatches its lanes
    got = await eng.get_contact(second)
    assert got.state is ContactState.RESERVED and got.agent == "s2"
    await assert_invariants(redis, eng.tenant)


async def test_an_agent_holding_contacts_cannot_move_to_another_vendor(
    make_engine: EngineFactory, redis: Redis
) -> None:
    body = BODY.replace("max_concurrent = 2", "max_concurrent = 1")
    eng = await make_engine(body, VirtualClock())
    caps = {"voice": 1, "chat": 1}
    await eng.upsert_agent(agent("h", "inhouse", capacity=caps), AgentStatus.AVAILABLE)
    held = (await eng.create_contact(NewContact(channel="voice", queue="mixed"))).contact_id
    assert (await eng.get_contact(held)).agent == "h"
    await eng.accept(held, "h")
    # into the vendor's pool with an in-house contact: its cap would not see it
    with pytest.raises(InvalidState, match="holds 1 contacts"):
        await eng.upsert_agent(agent("h", "site1", capacity=caps), AgentStatus.AVAILABLE)
    assert (await eng.get_agent("h")).pool == "inhouse"
    await assert_invariants(redis, eng.tenant)
    await eng.complete(held, "h", "ok", skip_wrap_up=True)
    await eng.upsert_agent(agent("h", "site1", capacity=caps), AgentStatus.AVAILABLE)
    assert (await eng.get_agent("h")).pool == "site1"
    await assert_invariants(redis, eng.tenant)


@pytest.mark.slow
async def test_hourly_cap_holds_under_four_processes(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    per_hour = 40
    engine, path = await _proc_tenant(redis, tmp_path, f"max_per_hour = {per_hour}")
    tid, tenant = engine.tenant.id, engine.tenant
    stop = tmp_path / "stop"
    n_workers, per_worker = 4, 100
    start = engine.clock.now_ms()
    procs = [_spawn(redis_url, path, w, n_workers, per_worker, stop) for w in range(n_workers)]
    try:
        await _wait_finished(engine, n_workers * per_worker)
    finally:
        stop.touch()
        outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    snap = await assert_invariants(redis, tenant)  # no hour bucket above the cap
    # from the stream: offers to the vendor, less those it handed back, per hour
    kept: dict[int, int] = {}
    offered_at: dict[str, int] = {}
    for e in snap.events:
        cid = e.get("contact")
        if e["type"] == "contact.reserved" and e.get("pool") in ("site1", "site2"):
            offered_at[str(cid)] = int(e["at"]) // 3_600_000
            kept[offered_at[str(cid)]] = kept.get(offered_at[str(cid)], 0) + 1
        elif e["type"] in ("contact.reservation_rejected", "contact.reservation_expired"):
            hour = offered_at.pop(str(cid), None)
            if hour is not None:
                kept[hour] -= 1
    assert max(kept.values()) == per_hour, kept  # the cap bound, and was never passed
    hours = range(start // 3_600_000, engine.clock.now_ms() // 3_600_000 + 1)
    assert set(kept) <= set(hours)
    await drop_tenant(redis, tid)


async def _wait_finished(
    engine: Engine, expected: int, check: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Run the timers until every contact is finished; `check` on every round."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await engine.run_due_timers()
        if check is not None:
            await check()
        states = [
            await engine.redis.hget(k, "state")
            async for k in engine.redis.scan_iter(match=engine.keys.contact("*"), count=1000)
        ]
        if len(states) >= expected and all(s in (b"completed", b"abandoned") for s in states):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("contacts were not all finished in time")
