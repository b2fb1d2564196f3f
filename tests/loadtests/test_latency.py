"""The routing-latency benchmark's machinery (loadtests/latency.py), on a small run.

No performance assertion: these check that the workload is what it claims, that the
analysis reads the event stream right (against a hand computation from XRANGE), and
that the work-conservation check does catch a missed match.
"""

from __future__ import annotations

import math
import os
from typing import Any

from redis.asyncio import Redis

from loadtests import bench
from loadtests.latency import Ev, analyse, build_parser, build_workload, measure
from router.eligibility import agent_lanes
from router.keys import TenantKeys


def test_workload_eligibility_is_the_engines() -> None:
    w = build_workload(200, 20, 100.0, 2.0, warmup_s=0.0, seed=3)
    queues = list(bench.tenant_config("tlat", w.tenant_body()).queues.values())
    assert len(queues) == 20
    for a in w.agents:
        lanes = agent_lanes(queues, a.pool, a.skills, a.capacity)
        assert set(lanes) == {f"{q}:voice" for q in w.eligible[a.id]}, a
    # the arrivals follow the schedule asked for
    assert all(0 < x.at_s < 2.0 for x in w.arrivals)
    assert 150 <= len(w.arrivals) <= 250
    assert math.isclose(w.handle_mean_s, 0.6 * 200 / 100)
    assert len({x.queue for x in w.arrivals}) > 10


def ev(t: str, at: int, contact: str = "", agent: str = "", queue: str = "q1") -> Ev:
    return Ev(t, at, contact, agent, queue, "")


def test_analyse_reads_latencies_and_catches_missed_matches() -> None:
    eligible = {"a1": ("q1",), "a2": ("q2",)}
    events = [
        # c1 arrives and is reserved in the same transition: 0 ms
        ev("contact.received", 100, "c1"),
        ev("contact.queued", 100, "c1"),
        ev("contact.reserved", 100, "c1", "a1"),
        # c2 waits (a1 busy), is reserved when a1 completes c1: 40 ms, 0 from the free
        ev("contact.received", 110, "c2"),
        ev("contact.queued", 110, "c2"),
        ev("contact.completed", 150, "c1", "a1"),
        ev("contact.reserved", 150, "c2", "a1"),
        # c3 waits for q2 although a2 is idle: a missed match at arrival
        ev("contact.received", 160, "c3", queue="q2"),
        ev("contact.queued", 160, "c3", queue="q2"),
        # a1 frees up while c4 waits in q1 and takes nothing: a missed match at the free
        ev("contact.received", 170, "c4"),
        ev("contact.queued", 170, "c4"),
        ev("contact.completed", 180, "c2", "a1"),
        ev("contact.reserved", 200, "c4", "a1"),
        ev("contact.reserved", 205, "c3", "a2", queue="q2"),
    ]
    a = analyse(events, eligible, ["c1", "c2", "c3", "c4"], (100, 200))
    assert a.latencies == {"c1": 0, "c2": 40, "c4": 30, "c3": 45}
    assert a.at_arrival == 1
    assert a.missed_at_arrival == 1
    assert a.missed_at_free == 1
    out = a.to_json(2)
    assert out["routed_later"]["count"] == 3
    # from the freeing event: c2 0 ms (same transition), c4 20 ms after a1 freed at 180,
    # c3 45 ms (a2 never freed: counted from its queued.at)
    assert out["routed_later"]["from_agent_free_ms"]["max"] == 45
    assert out["routed_later"]["from_agent_free_ms"]["p50"] == 20
    # occupancy over [100, 200]: a1 busy 100-180 then 200-200, a2 never
    assert out["occupancy_measured"] == round(80 / 200, 4)
    # only the measured contacts count
    b = analyse(events, eligible, ["c2"], (100, 200))
    assert b.latencies == {"c2": 40} and b.missed_at_arrival == 0


def hand_percentile(values: list[int], p: float) -> int:
    """HdrHistogram's definition: the value of the round(p % x n)-th smallest sample."""
    s = sorted(values)
    return s[max(1, int(p / 100 * len(s) + 0.5)) - 1]


async def test_small_run_matches_the_stream(redis_url: str, redis: Redis) -> None:
    # Overloaded on purpose (40 agents serve about 66 contacts/s of the 100/s): some
    # contacts must wait, so the "reserved later" path is exercised as well as the
    # reservation at arrival.
    argv = [
        "--agents", "40", "--queues", "10", "--rate", "100", "--seconds", "2",
        "--warmup", "0", "--occupancy", "1.5", "--drain", "30",
        "--redis-url", redis_url, "--keep", "--json",
    ]  # fmt: skip
    out: dict[str, Any] = await measure(build_parser().parse_args(argv))
    tenant = f"benchlat{os.getpid()}"
    try:
        raw = await redis.xrange(TenantKeys(tenant).events)
    finally:
        await bench.drop_tenant(redis, tenant)
    for key in (
        "latency_ms", "routed_at_arrival_share", "routed_later", "missed_matches",
        "create_contact_rtt_us", "load", "host_load", "machine", "met",
        "generator_kept_up", "engine_kept_up", "occupancy_measured", "per_contact_us",
    ):  # fmt: skip
        assert key in out, key
    assert out["errors"] == {} and out["drained"] is True
    n = out["contacts"]
    # the run stops once every contact is reserved; most have been completed by then
    assert out["measured_contacts"] == n and out["reserved"] == n
    assert n // 2 < out["completed"] <= n

    # by hand, from the stream: reserved.at - queued.at per contact
    evs = [{k.decode(): v.decode() for k, v in f.items()} for _, f in raw]
    queued: dict[str, tuple[int, int]] = {}
    reserved: dict[str, tuple[int, int, str]] = {}
    for i, e in enumerate(evs):
        if e["type"] == "contact.queued":
            queued[e["contact"]] = (i, int(e["at"]))
        elif e["type"] == "contact.reserved" and e["contact"] not in reserved:
            reserved[e["contact"]] = (i, int(e["at"]), e["agent"])
    assert len(queued) == n and set(reserved) == set(queued)
    lat = [reserved[c][1] - queued[c][1] for c in queued]
    assert out["latency_ms"]["count"] == n
    # HdrHistogram keeps 3 significant digits: exact below 2,048 ms, within 0.1 % above
    for got, want in (
        (out["latency_ms"]["max"], max(lat)),
        (out["latency_ms"]["p50"], hand_percentile(lat, 50)),
        (out["latency_ms"]["p99"], hand_percentile(lat, 99)),
    ):
        assert abs(got - want) <= want / 1000, (got, want)
    at_arrival = [c for c in queued if reserved[c][0] == queued[c][0] + 1]
    assert all(reserved[c][1] == queued[c][1] for c in at_arrival)
    assert out["routed_at_arrival"] == len(at_arrival)
    later = [c for c in queued if c not in at_arrival]
    assert out["routed_later"]["count"] == len(later) > 0
    # every later reservation was made by its agent's completion, in the same script
    for c in later:
        i, at, agent = reserved[c]
        prev = evs[i - 1]
        assert prev["type"] == "contact.completed" and prev["agent"] == agent, prev
        assert int(prev["at"]) == at
    assert out["routed_later"]["from_agent_free_ms"]["max"] == 0
    assert out["missed_matches"] == {"at_arrival": 0, "at_agent_free": 0}
    assert out["load"]["sent"] == n
    assert out["create_contact_rtt_us"]["count"] == n
