"""Parallel virtual replay: the split points, and reports equal to the sequential run."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from loadtests.replay import START_MS, WALL_FIELDS, load_tenant, replay_virtual, tenant_text
from loadtests.report import build_report
from loadtests.segments import merge_results, replay_segments, split_points
from loadtests.trace import Roster, RosterAgent, TraceContact

DAY = 10_000.0  # a "day" of the test traces, in trace seconds


def _roster(always_on: bool = False) -> Roster:
    """Two agents on shift for the first 4,000 s of each of three days."""
    shifts = tuple((k * DAY, k * DAY + 4000.0) for k in range(3))
    agents = [
        RosterAgent("ana", "inhouse", {"spanish": 4}, {"voice": 1, "chat": 2}, shifts),
        RosterAgent("ben", "partner", {}, {"voice": 1}, shifts),
    ]
    if always_on:
        agents.append(RosterAgent("cy", "inhouse", {}, {"voice": 1}, None))
    return Roster(tuple(agents))


def _trace(late_caller: bool = False, patience: float | None = None) -> list[TraceContact]:
    """Busy days (waits, abandons, a skill) with quiet nights between them."""
    out: list[TraceContact] = []
    for day in range(3):
        for i in range(60):
            at = day * DAY + i * 55.0
            skills = {"spanish": 4} if i % 7 == 0 else {}
            patience_s = 90.0 if i % 3 == 0 else None
            channel = "chat" if i % 5 == 0 else "voice"
            queue = "sales" if channel == "chat" else "support"
            handle = 60.0 + (i * 37) % 140
            out.append(TraceContact(at, f"d{day}-{i}", channel, queue, handle, patience_s, skills))
    if late_caller:
        # calls in the night, with nobody on shift: it waits for the next morning,
        # across the boundary
        out.append(TraceContact(DAY - 500.0, "night", "voice", "support", 30.0, patience))
        out.sort(key=lambda c: c.at)
    return out


def _comparable(rep: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rep.items() if k not in WALL_FIELDS}


def test_split_points() -> None:
    assert split_points(_trace(), _roster()) == [DAY, 2 * DAY]
    # an agent always on shift: the engine is never idle, nothing to split at
    assert split_points(_trace(), _roster(always_on=True)) == []
    # boundaries only inside the trace
    assert split_points(_trace()[:60], _roster()) == []


async def _both(redis: Redis, redis_url: str, trace: list[TraceContact]) -> tuple[Any, ...]:
    roster = _roster()
    tid = f"sg-{uuid.uuid4().hex[:8]}"
    tenant = load_tenant(None, trace, roster, tenant=tid)
    seq = (await replay_virtual(redis, tenant, trace, roster)).report()
    text, source = tenant_text(None, trace, roster, tenant=tid)
    results, _, merged = replay_segments(
        trace,
        roster,
        redis_url=redis_url,
        config_text=text,
        config_source=source,
        sl_threshold_s=20.0,
        seed=0,
        workers=2,
    )
    m = merge_results(results)
    par = build_report(
        mode="virtual",
        tenant=tid,
        seed=0,
        outcomes=m["outcomes"],
        queue_counts=m["queue_counts"],
        pool_counts=m["pool_counts"],
        agents=roster.agents,
        rejected=m["rejected"],
        sl_threshold_s=20.0,
        grace_ms=0,
        start_ms=START_MS,
        end_ms=m["end_ms"],
        wall_s=1.0,
    )
    par["sim_contacts_per_s"] = par["throughput_per_s"]
    return seq, par, results, merged


async def test_segments_give_the_sequential_report(redis: Redis, redis_url: str) -> None:
    seq, par, results, merged = await _both(redis, redis_url, _trace())
    assert len(results) == 3 and merged == 0
    assert seq["offered"] == 180 and seq["abandoned"] > 0 and seq["asa_s"] > 0
    assert _comparable(par) == _comparable(seq)
    by_agent = {cid: o.agent for r in results for cid, o in r.outcomes.items()}
    assert by_agent["d1-7"] == "ana"  # the skill still binds in a later segment


async def test_a_segment_that_runs_past_its_boundary_is_merged(
    redis: Redis, redis_url: str
) -> None:
    # patient enough to wait until the morning shift: day 0 and day 1 run again as one
    seq, par, results, merged = await _both(redis, redis_url, _trace(True, patience=600.0))
    assert merged == 1 and len(results) == 2
    night = next(r.outcomes["night"] for r in results if "night" in r.outcomes)
    assert night.answered_ms == START_MS + round(DAY * 1000)  # the next morning
    assert _comparable(par) == _comparable(seq)


async def test_a_contact_nobody_takes_merges_the_rest_at_once(redis: Redis, redis_url: str) -> None:
    trace = _trace()
    trace.insert(60, TraceContact(DAY - 600.0, "nobody", "voice", "support", 30.0, None, {"x": 5}))
    seq, par, results, merged = await _both(redis, redis_url, trace)
    assert merged == 2 and len(results) == 1  # one rerun, not one per boundary
    assert seq["still_waiting"] == 1
    assert _comparable(par) == _comparable(seq)


async def test_an_abandon_on_the_boundary_ms_is_rerun(redis: Redis, redis_url: str) -> None:
    # patience ends at the very ms the morning shift starts: in one run the shift
    # start comes first and the agent answers; the segment alone would abandon
    seq, par, _, merged = await _both(redis, redis_url, _trace(True, patience=500.0))
    assert merged == 1
    assert _comparable(par) == _comparable(seq)
