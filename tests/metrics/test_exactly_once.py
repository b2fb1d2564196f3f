"""Exactly once: a consumer killed mid-stream, and consumers racing, never count
an event twice or miss one. The expected counts are computed here, in Python,
from XRANGE of the stream, independently of the consumer script."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.engine import Engine
from router.metrics.consumer import GROUP, apply_batch, drain

from ..conftest import EngineFactory
from .conftest import METRICS_BODY, T0

ROOT = Path(__file__).resolve().parents[2]
THRESHOLD_MS = {"sales": 20_000, "support": 30_000}
GRACE_MS = 5_000
SPAN_MS = 2 * 3_600_000


async def _fill(engine: Engine, n: int, seed: int) -> None:
    """n synthetic events of the kinds the metrics count, `at` spread over 2 hours."""
    rng = random.Random(seed)
    pipe = engine.redis.pipeline(transaction=False)
    for i in range(n):
        kind = rng.choice(
            [
                "contact.received",
                "contact.assigned",
                "contact.abandoned",
                "contact.completed",
                "sla.breached",
                "contact.queued",
            ]
        )
        fields = {
            "v": "1",
            "type": kind,
            "at": T0 + rng.randrange(SPAN_MS),
            "contact": f"x{i}",
            "queue": rng.choice(["sales", "support"]),
            "channel": "voice",
            "agent": "a1",
            "pool": rng.choice(["inhouse", "near", ""]),
            "wait_ms": rng.randrange(60_000),
            "handle_ms": rng.randrange(600_000),
            "sla": "answer",
        }
        pipe.xadd(engine.keys.events, fields)  # type: ignore[arg-type]
        if len(pipe) >= 2000:
            await pipe.execute()
    await pipe.execute()


def _bump(out: Counter[str], owner: str, counts: dict[str, int]) -> None:
    for name, n in counts.items():
        out[f"{owner}:{name}"] += n


async def _expected(engine: Engine) -> tuple[Counter[str], dict[int, Counter[str]]]:
    """Totals and per-15-minute counters, straight from the stream."""
    total: Counter[str] = Counter()
    quarters: dict[int, Counter[str]] = {}
    for _, raw in await engine.redis.xrange(engine.keys.events):
        e = {k.decode(): v.decode() for k, v in raw.items()}
        at, q, pool = int(e["at"]), f"q:{e['queue']}", e["pool"]
        wait = int(e["wait_ms"])
        c: Counter[str] = Counter()
        if e["type"] == "contact.received":
            _bump(c, q, {"off": 1})
        elif e["type"] == "contact.assigned":
            within = int(wait <= THRESHOLD_MS[e["queue"]])
            _bump(c, q, {"ans": 1, "ans_t": within, "wait": wait})
            if pool:
                _bump(c, f"p:{pool}", {"ans": 1, "ans_t": within, "wait": wait})
        elif e["type"] == "contact.abandoned":
            _bump(c, q, {"abn": 1, "abn_g": int(wait <= GRACE_MS), "abn.0": 1})
        elif e["type"] == "contact.completed" and pool:
            h = int(e["handle_ms"])
            _bump(c, q, {"hnd": 1, "hms": h})
            _bump(c, f"p:{pool}", {"hnd": 1, "hms": h})
        elif e["type"] == "sla.breached":
            _bump(c, q, {"brch": 1, "brch.0": 1})  # no stage in these events: stage 0
        total.update(c)
        quarters.setdefault(at - at % 900_000, Counter()).update(c)
    return (
        Counter({k: v for k, v in total.items() if v}),
        {s: Counter({k: v for k, v in q.items() if v}) for s, q in quarters.items()},
    )


async def _actual(
    engine: Engine, starts: list[int]
) -> tuple[Counter[str], dict[int, Counter[str]]]:
    def counts(h: dict[bytes, bytes]) -> Counter[str]:
        return Counter({k.decode(): int(v) for k, v in h.items() if int(v)})

    total = counts(await engine.redis.hgetall(engine.keys.metrics_totals))
    quarters = {
        s: counts(await engine.redis.hgetall(engine.keys.metrics_bucket("15m", s))) for s in starts
    }
    return total, quarters


async def _assert_exact(engine: Engine) -> None:
    want_total, want_q = await _expected(engine)
    got_total, got_q = await _actual(engine, sorted(want_q))
    assert got_total == want_total
    assert got_q == want_q
    groups = {g["name"].decode(): g for g in await engine.redis.xinfo_groups(engine.keys.events)}
    assert groups[GROUP]["pending"] == 0 and groups[GROUP]["lag"] == 0


async def test_a_consumer_killed_mid_stream_leaves_no_double_count(
    make_engine: EngineFactory, redis: Redis, redis_url: str
) -> None:
    clock = VirtualClock(T0 + SPAN_MS)
    engine = await make_engine(METRICS_BODY, clock)
    n = 12_000
    await _fill(engine, n, seed=1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.metrics.consumer_proc",
        redis_url,
        engine.tenant.id,
        str(clock.now_ms()),
        "100",
        "0.002",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            for _ in range(20):  # let it apply a few batches, then kill it mid-stream
                assert await proc.stdout.readline() == b"batch\n"
        os.kill(proc.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    read = {g["name"].decode(): g for g in await redis.xinfo_groups(engine.keys.events)}
    done = int(read[GROUP]["entries-read"])
    assert 2_000 <= done < n, "the consumer was not killed mid-stream"
    assert read[GROUP]["pending"] == 0  # nothing half-applied, nothing to claim
    # another consumer finishes the job; nothing is counted twice
    assert await drain(engine, consumer="second") == n - done
    await _assert_exact(engine)


async def test_concurrent_consumers_count_each_event_once(
    make_engine: EngineFactory, redis_url: str
) -> None:
    clock = VirtualClock(T0 + SPAN_MS)
    engine = await make_engine(METRICS_BODY, clock)
    await _fill(engine, 8_000, seed=2)
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    applied = Counter[str]()

    async def consume(i: int) -> None:
        while n := await apply_batch(
            clients[i], engine.tenant, clock.now_ms(), consumer=f"c{i}", batch=97
        ):
            applied[f"c{i}"] += n

    try:
        await asyncio.gather(*(consume(i) for i in range(4)))
    finally:
        for c in clients:
            await c.aclose()
    assert sum(applied.values()) == 8_000
    assert len(applied) == 4, applied  # every consumer took part
    await _assert_exact(engine)


async def test_pending_entries_left_by_another_reader_are_claimed_once(
    make_engine: EngineFactory,
) -> None:
    """Entries read in the group without the script (older code, a manual read) sit
    pending: the consumer's claim pass applies them once, and acknowledges them."""
    clock = VirtualClock(T0 + SPAN_MS)
    engine = await make_engine(METRICS_BODY, clock)
    await _fill(engine, 500, seed=3)
    await apply_batch(engine.redis, engine.tenant, clock.now_ms(), consumer="a", batch=100)
    await engine.redis.xreadgroup(GROUP, "old", {engine.keys.events: ">"}, count=150)
    assert await drain(engine, consumer="b") == 400
    await _assert_exact(engine)


async def test_the_claim_pass_reads_past_entries_deleted_while_pending(
    make_engine: EngineFactory,
) -> None:
    """XAUTOCLAIM's COUNT includes the ids of entries deleted from the stream: a call
    can claim no live entry while more are pending. The claim pass goes on until
    XAUTOCLAIM's cursor says nothing is left."""
    clock = VirtualClock(T0 + SPAN_MS)
    engine = await make_engine(METRICS_BODY, clock)
    await _fill(engine, 200, seed=4)
    await apply_batch(engine.redis, engine.tenant, clock.now_ms(), consumer="a", batch=20)
    read = await engine.redis.xreadgroup(GROUP, "old", {engine.keys.events: ">"}, count=60)
    pending = [entry_id for entry_id, _ in read[0][1]]
    await engine.redis.xdel(engine.keys.events, *pending[:30])  # the first 30 pending
    assert await drain(engine, consumer="b", batch=10) == 200 - 20 - 30
    info = {g["name"].decode(): g for g in await engine.redis.xinfo_groups(engine.keys.events)}
    assert info[GROUP]["pending"] == 0
    await _assert_exact(engine)
