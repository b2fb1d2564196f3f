"""Reading the metrics back: windows (15m, 1h, today), history, live figures.

A window sums the buckets the consumer wrote (router/metrics/consumer.py): the
minute buckets for the rolling 15m and 1h windows, the 15-minute intervals for
"today" (from midnight in the tenant's time zone) and for history. Live figures
(waiting, longest wait, agents available, agents by status) are read from the
routing state at the engine's now. Every formula is in definitions.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..config.model import PoolConfig, QueueConfig, TenantConfig
from ..engine import Engine
from ..keys import TenantKeys
from . import definitions as d

MINUTE_MS = 60_000
QUARTER_MS = 900_000
WINDOWS = ("15m", "1h", "today")
ALERTS_MAX = 50
HISTORY_MAX_MS = 31 * 86_400_000  # longest range one history request may ask for


@dataclass(frozen=True)
class Scope:
    """What a caller may see: everything, or one pool and the queues it serves."""

    pool: str | None = None

    def pools(self, tenant: TenantConfig) -> list[PoolConfig]:
        return [p for p in tenant.pools.values() if self.pool is None or p.id == self.pool]

    def queues(self, tenant: TenantConfig) -> list[QueueConfig]:
        return [
            q
            for q in tenant.queues.values()
            if self.pool is None or self.pool in q.pools_at(len(q.stages) - 1)
        ]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def window_bounds(tenant: TenantConfig, window: str, now_ms: int) -> tuple[int, int, int]:
    """(from, to, bucket size) of a window at `now_ms`. 15m and 1h are the last 15 or
    60 minute buckets, the current (partial) minute included; today starts at
    midnight in the tenant's time zone."""
    if window == "15m":
        return now_ms - now_ms % MINUTE_MS - 14 * MINUTE_MS, now_ms, MINUTE_MS
    if window == "1h":
        return now_ms - now_ms % MINUTE_MS - 59 * MINUTE_MS, now_ms, MINUTE_MS
    if window == "today":
        local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tenant.timezone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start = int(midnight.timestamp() * 1000)
        return start - start % QUARTER_MS, now_ms, QUARTER_MS
    raise ValueError(f"unknown window {window!r}")


def _starts(start: int, end: int, size: int) -> list[int]:
    """Bucket starts covering [start, end)."""
    first = start - start % size
    return list(range(first, end, size)) if end > start else []


async def _read_buckets(engine: Engine, starts: Iterable[int], size: int) -> list[dict[str, int]]:
    keys = TenantKeys(engine.tenant.id)
    label = "1m" if size == MINUTE_MS else "15m"
    pipe = engine.redis.pipeline(transaction=False)
    for s in starts:
        pipe.hgetall(keys.metrics_bucket(label, s))
    return [{_s(k): int(v) for k, v in h.items()} for h in await pipe.execute()]


def _sum(buckets: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in buckets:
        for k, v in b.items():
            out[k] = out.get(k, 0) + v
    return out


async def _open_available(engine: Engine) -> list[tuple[str, int]]:
    """(pool, since) of every agent available now: time not yet in the buckets."""
    raw = await engine.redis.hgetall(TenantKeys(engine.tenant.id).metrics_available)
    out = []
    for v in raw.values():
        pool, _, since = _s(v).rpartition("|")
        if pool and since.isdigit():
            out.append((pool, int(since)))
    return out


def _add_open(
    counters: dict[str, int], open_av: list[tuple[str, int]], start: int, end: int
) -> None:
    for pool, since in open_av:
        span = end - max(since, start)
        if span > 0:
            key = f"p:{pool}:{d.AVAILABLE_MS}"
            counters[key] = counters.get(key, 0) + span


async def _agents_by_status(engine: Engine) -> dict[str, dict[str, int]]:
    ids = await engine.agent_ids()
    pipe = engine.redis.pipeline(transaction=False)
    for aid in ids:
        pipe.hmget(engine.keys.agent(aid), ["pool", "status"])
    out: dict[str, dict[str, int]] = {}
    for pool, status in await pipe.execute():
        if pool is None:
            continue
        counts = out.setdefault(_s(pool), {"available": 0, "away": 0, "offline": 0})
        st = _s(status or b"offline")
        counts[st] = counts.get(st, 0) + 1
    return out


async def _alerts(
    engine: Engine, queues: Mapping[str, QueueConfig], scope: Scope
) -> list[dict[str, Any]]:
    """The latest alerts of the visible queues. For a pool-scoped reader, the contact
    id only when its pool was eligible at the contact's stage when the alert fired
    (else null): a vendor does not learn ids of contacts it could not be offered."""
    raw = await engine.redis.lrange(TenantKeys(engine.tenant.id).metrics_alerts, 0, ALERTS_MAX - 1)
    out = []
    for item in raw:
        try:
            alert = json.loads(item)
        except ValueError:
            continue
        if not isinstance(alert, dict):
            continue
        q = queues.get(str(alert.get("queue")))
        if q is None:
            continue
        stage = alert.pop("stage", None)
        if scope.pool is not None and not (
            isinstance(stage, int)
            and 0 <= stage < len(q.stages)
            and scope.pool in q.pools_at(stage)
        ):
            alert["contact"] = None
        out.append(alert)
    return out


async def window_counters(engine: Engine, window: str, now_ms: int) -> tuple[int, dict[str, int]]:
    """(from, summed counters) of a window, open available time included."""
    start, end, size = window_bounds(engine.tenant, window, now_ms)
    counters = _sum(await _read_buckets(engine, _starts(start, end + 1, size), size))
    _add_open(counters, await _open_available(engine), start, end)
    return start, counters


async def snapshot(
    engine: Engine, window: str = "15m", scope: Scope | None = None
) -> dict[str, Any]:
    """The GET /v1/metrics document (docs/metrics.md)."""
    scope = scope or Scope()
    t = engine.tenant
    now = engine.clock.now_ms()
    start, counters = await window_counters(engine, window, now)
    per_queue, per_pool = d.split_counters(counters)
    queues = scope.queues(t)
    pools = scope.pools(t)
    by_status = await _agents_by_status(engine)
    lives = await asyncio.gather(*(engine.queue_snapshot(q.id) for q in queues))
    out_q: dict[str, Any] = {}
    for q, live in zip(queues, lives, strict=True):
        figures = d.queue_figures(per_queue.get(q.id, {}), d.service_clock(q)[1])
        out_q[q.id] = {
            "title": q.name or q.id,
            "channels": list(q.channels),
            "waiting": live["waiting"],
            "held": live["held"],
            "longest_wait_s": live["longest_wait_s"],
            **figures,
            **_queue_surveys(per_queue.get(q.id, {}), scope),
            "service_level_target": q.sla.target,
            "agents_available": live["agents_available"],
        }
    out_p: dict[str, Any] = {}
    for p in pools:
        out_p[p.id] = {
            "title": p.name or p.id,
            "kind": p.kind.value,
            "vendor": p.vendor,
            "vendor_name": _vendor_name(t, p.vendor),
            "location": None if p.location is None else p.location.value,
            "agents": by_status.get(p.id, {"available": 0, "away": 0, "offline": 0}),
            **d.pool_figures(per_pool.get(p.id, {})),
            **d.survey_figures(per_pool.get(p.id, {})),
        }
    return {
        "tenant": t.id,
        "at": now,
        "window": {"name": window, "from": start, "to": now},
        "queues": out_q,
        "pools": out_p,
        "alerts": await _alerts(engine, {q.id: q for q in queues}, scope),
    }


def _queue_surveys(counters: Mapping[str, int], scope: Scope) -> dict[str, Any]:
    """A queue's CSAT and NPS; null for a pool-scoped reader, who sees its own pool's
    in "pools": the queue's mix other pools' answers in, which the pool's subtraction
    would reveal (another company's quality figures, for a vendor)."""
    if scope.pool is not None:
        return {"csat": None, "nps": None}
    return d.survey_figures(counters)


async def history(
    engine: Engine,
    start_ms: int,
    end_ms: int,
    queue: str | None = None,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """15-minute intervals overlapping [start_ms, end_ms): per-queue and per-pool figures.
    Intervals with no events have zero counts (and null ratios)."""
    scope = scope or Scope()
    t = engine.tenant
    now = engine.clock.now_ms()
    starts = _starts(start_ms, end_ms, QUARTER_MS)
    buckets = await _read_buckets(engine, starts, QUARTER_MS)
    open_av = await _open_available(engine)
    queues = [q for q in scope.queues(t) if queue is None or q.id == queue]
    pools = [] if queue is not None else scope.pools(t)
    intervals = []
    for s, b in zip(starts, buckets, strict=True):
        counters = dict(b)
        _add_open(counters, open_av, s, min(s + QUARTER_MS, now))
        per_queue, per_pool = d.split_counters(counters)
        intervals.append(
            {
                "from": s,
                "to": s + QUARTER_MS,
                "queues": {
                    q.id: {
                        **d.queue_figures(per_queue.get(q.id, {}), d.service_clock(q)[1]),
                        **_queue_surveys(per_queue.get(q.id, {}), scope),
                    }
                    for q in queues
                },
                "pools": {
                    p.id: {
                        **d.pool_figures(per_pool.get(p.id, {})),
                        **d.survey_figures(per_pool.get(p.id, {})),
                    }
                    for p in pools
                },
            }
        )
    return {
        "tenant": t.id,
        "from": starts[0] if starts else start_ms,
        "to": starts[-1] + QUARTER_MS if starts else end_ms,
        "interval_s": QUARTER_MS // 1000,
        "history_days": t.metrics.history_days,
        "intervals": intervals,
    }


async def totals(engine: Engine) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Counters since the beginning, per queue and per pool (Prometheus)."""
    raw = await engine.redis.hgetall(TenantKeys(engine.tenant.id).metrics_totals)
    return d.split_counters({_s(k): int(v) for k, v in raw.items()})


def _vendor_name(tenant: TenantConfig, vendor: str | None) -> str | None:
    v = None if vendor is None else tenant.vendors.get(vendor)
    return None if v is None else v.name or v.id
