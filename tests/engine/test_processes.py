"""Many engine processes on one Redis, and one of them killed mid-traffic.

Real processes (tests/procs/worker.py), real time, real Valkey. Afterwards the
whole tenant must satisfy the invariants and every contact must be accounted for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from router.clock import RealClock
from router.config import load_config
from router.engine import Engine
from router.model import AgentSpec, AgentStatus

from ..conftest import drop_tenant, new_tenant_id
from ..invariants import assert_invariants

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[tenant]
id = "{tid}"

[routing]
max_missed_offers = 2
presence_timeout_s = 0
exclusive_channels = ["voice"]
wrap_up_s = {{ voice = 0.2, chat = 0 }}

[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.voice]
channel = "voice"
pools = ["inhouse"]
offer_timeout_s = 1

[[queues.voice.overflow]]
after_s = 0.5
pools = ["near"]

[queues.chat]
channel = "chat"
pools = ["inhouse", "near"]
offer_timeout_s = 1
"""


async def _setup(redis: Redis, tmp_path: Path, n_agents: int) -> tuple[Engine, Path]:
    tid = new_tenant_id()
    path = tmp_path / "tenant.toml"
    path.write_text(CONFIG.format(tid=tid))
    tenant = load_config(path).tenants[tid]
    engine = Engine(redis, tenant, RealClock())
    await engine.apply_config()
    for i in range(n_agents):
        pool = "inhouse" if i % 3 else "near"
        await engine.upsert_agent(
            AgentSpec(f"a{i}", pool, capacity={"voice": 1, "chat": 2}), AgentStatus.AVAILABLE
        )
    return engine, path


def _spawn(url: str, cfg: Path, wid: int, nw: int, n: int, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.procs.worker",
            url,
            str(cfg),
            str(wid),
            str(nw),
            str(n),
            "7",
            str(stop),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def _all_finished(engine: Engine) -> tuple[int, int]:
    """(finished, total) over every contact record of the tenant."""
    total = done = 0
    async for key in engine.redis.scan_iter(match=engine.keys.contact("*"), count=1000):
        total += 1
        if await engine.redis.hget(key, "state") in (b"completed", b"abandoned"):
            done += 1
    return done, total


async def _finish_held(engine: Engine, agents: list[str]) -> None:
    """Complete what these agents had already accepted (their desktop reconnects)."""
    for aid in agents:
        for raw in await engine.redis.smembers(engine.keys.agent_contacts(aid)):
            state = await engine.redis.hget(engine.keys.contact(raw.decode()), "state")
            if state in (b"assigned", b"wrap_up"):
                await engine.complete(raw.decode(), aid, skip_wrap_up=True)


async def _wait_all_finished(
    engine: Engine, expected: int, timeout: float, orphans: list[str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await engine.run_due_timers()
        if orphans:
            await _finish_held(engine, orphans)
        done, total = await _all_finished(engine)
        # A killed process may have created a contact without living to report
        # it, so Redis may hold more than was reported; all must be finished.
        if total >= expected and done == total:
            return
        await asyncio.sleep(0.2)
    done, total = await _all_finished(engine)
    raise AssertionError(f"only {done} of {total} contacts finished ({expected} reported)")


def _created(out: str) -> list[str]:
    return [json.loads(line)["created"] for line in out.splitlines() if '"created"' in line]


async def test_four_processes_keep_the_invariants(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    engine, cfg = await _setup(redis, tmp_path, n_agents=40)
    stop = tmp_path / "stop"
    n_workers, per_worker = 4, 400
    procs = [_spawn(redis_url, cfg, w, n_workers, per_worker, stop) for w in range(n_workers)]
    try:
        await _wait_all_finished(engine, n_workers * per_worker, timeout=150)
    finally:
        stop.touch()
        outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    created = [c for out, _ in outs for c in _created(out)]
    assert len(created) == len(set(created)) == n_workers * per_worker
    snap = await assert_invariants(redis, engine.tenant)
    assert set(created) == set(snap.contacts)
    types = [e["type"] for e in snap.events]
    assert types.count("contact.received") == len(created)
    assert types.count("contact.completed") + types.count("contact.abandoned") == len(created)
    await drop_tenant(redis, engine.tenant.id)


async def test_sigkill_mid_traffic_loses_nothing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    engine, cfg = await _setup(redis, tmp_path, n_agents=24)
    stop = tmp_path / "stop"
    n_workers, per_worker = 3, 200
    procs = [_spawn(redis_url, cfg, w, n_workers, per_worker, stop) for w in range(n_workers)]
    victim = procs[0]
    try:
        victim_agents = [f"a{i}" for i in range(0, 24, n_workers)]

        async def reserved_for_victim() -> set[str]:
            out = set()
            for aid in victim_agents:
                for cid in await redis.smembers(engine.keys.agent_contacts(aid)):
                    if await redis.hget(engine.keys.contact(cid.decode()), "state") == b"reserved":
                        out.add(cid.decode())
            return out

        # Mid-traffic: freeze the victim, and kill it only once offers to its
        # agents are outstanding while it is frozen (it cannot accept them in
        # between); otherwise let it run a little and look again.
        deadline = time.monotonic() + 30
        while True:
            victim.send_signal(signal.SIGSTOP)
            held_by_victim = await reserved_for_victim()
            if held_by_victim or time.monotonic() > deadline:
                break
            victim.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        # the victim created part of its share; survivors create theirs in full
        victim_out = victim.stdout.read() if victim.stdout else ""
        expected = len(_created(victim_out)) + (n_workers - 1) * per_worker
        # Offers to the dead process's agents must expire and be routed again on
        # their own; contacts those agents had already accepted stay theirs, and
        # are finished here as if the agents reconnected elsewhere.
        await _wait_all_finished(engine, expected, timeout=150, orphans=victim_agents)
    finally:
        stop.touch()
        outs = [p.communicate(timeout=60) for p in procs[1:]]
    for p, (_, err) in zip(procs[1:], outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    snap = await assert_invariants(redis, engine.tenant)
    reported = set(_created(victim_out)) | {c for out, _ in outs for c in _created(out)}
    assert reported <= set(snap.contacts), "a contact acknowledged to its caller was lost"
    # every offer the dead process's agents held expired and was routed again
    assert held_by_victim, "the kill came before any offer was outstanding"
    for cid in held_by_victim:
        evs = [e["type"] for e in snap.events if e.get("contact") == cid]
        # it expired and was routed again, unless its caller hung up first
        assert "contact.reservation_expired" in evs or evs[-1] == "contact.abandoned", (cid, evs)
        assert snap.contacts[cid]["state"] in ("completed", "abandoned")
    await drop_tenant(redis, engine.tenant.id)
