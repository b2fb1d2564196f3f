"""The metrics consumer: counts the tenant's events into time buckets in Redis.

All the work happens in one Lua script (scripts/metrics_apply.lua) that reads a
batch in the `metrics` consumer group, applies it and acknowledges it in the
same execution. So any number of consumers, in any number of processes, count
each event exactly once, and one that dies mid-stream leaves nothing behind:
the next call of any consumer takes over where the group stands.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import weakref
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..clock import Clock
from ..config.model import SlaKind, TenantConfig
from ..engine import Engine
from ..keys import TenantKeys
from ..loops import poll_until_stopped
from ..store.scripts import script_source
from .definitions import service_clock

log = logging.getLogger("switchboard.metrics")

GROUP = "metrics"
BATCH = 200  # entries per script call: about 3 ms of server time (docs/benchmarks.md)
DEFAULT_THRESHOLD_MS = 20_000

_scripts: weakref.WeakKeyDictionary[Redis, AsyncScript] = weakref.WeakKeyDictionary()


def apply_script(redis: Redis) -> AsyncScript:
    """The registered script, one per client (redis-py reloads it on NOSCRIPT)."""
    script = _scripts.get(redis)
    if script is None:
        script = redis.register_script(script_source("metrics_apply"))
        _scripts[redis] = script
    return script


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def thresholds(tenant: TenantConfig) -> str:
    """ARGV of the script: each queue's service-level clock and T in ms, `<queue>=<ms>`
    (answered within T) or `<queue>=f<ms>` (first response within T)."""
    out = []
    for q in tenant.queues.values():
        kind, t_s = service_clock(q)
        flag = "f" if kind is SlaKind.FIRST_RESPONSE else ""
        out.append(f"{q.id}={flag}{round(t_s * 1000)}")
    return ",".join(out)


async def apply_batch(
    redis: Redis,
    tenant: TenantConfig,
    now_ms: int,
    *,
    consumer: str,
    batch: int = BATCH,
    claim: bool = False,
) -> int:
    """One script call: count and acknowledge up to `batch` new entries (or, with
    `claim`, entries left pending by anyone). Returns how many it applied."""
    applied, _ = await _apply(redis, tenant, now_ms, consumer, batch, claim)
    return applied


async def _apply(
    redis: Redis, tenant: TenantConfig, now_ms: int, consumer: str, batch: int, claim: bool
) -> tuple[int, str]:
    """(entries applied, claim cursor: '0-0' when nothing is left pending; '' unclaimed)."""
    m = tenant.metrics
    applied, _, cursor = await apply_script(redis)(
        keys=[TenantKeys(tenant.id).anchor],
        args=[
            now_ms,
            consumer,
            batch,
            "claim" if claim else ">",
            round(m.abandon_grace_s * 1000),
            m.history_days * 86_400_000,
            thresholds(tenant),
            DEFAULT_THRESHOLD_MS,
        ],
    )
    return int(applied), cursor.decode() if isinstance(cursor, bytes) else str(cursor)


async def drain(
    engine: Engine, *, consumer: str | None = None, batch: int = BATCH, claim: bool = True
) -> int:
    """Apply everything the group has not applied yet (first anything left pending,
    when `claim`). Returns how many entries were applied."""
    name = consumer or consumer_name()
    total = 0
    modes = (True, False) if claim else (False,)
    for mode in modes:
        while True:
            n, cursor = await _apply(
                engine.redis, engine.tenant, engine.clock.now_ms(), name, batch, mode
            )
            total += n
            # claiming: XAUTOCLAIM's COUNT includes ids deleted from the stream, so a
            # short (even empty) batch does not mean the end; its cursor does
            if (mode and cursor in ("0-0", "")) or (not mode and n < batch):
                break
            await asyncio.sleep(0)  # let the process serve requests between batches
    return total


class MetricsLoop:
    """Keeps every tenant's metrics current: drains each tenant's stream, then waits
    `poll_s` while idle. Runs in every serve process; they share the work."""

    def __init__(
        self,
        engines: Sequence[Engine],
        clock: Clock,
        *,
        poll_s: float = 0.1,
        batch: int = BATCH,
        name: str | None = None,
    ) -> None:
        self.engines = list(engines)
        self.clock = clock
        self.poll_s = poll_s
        self.batch = batch
        self.name = name or consumer_name()
        self._claimed: set[str] = set()

    async def run_once(self) -> int:
        total = 0
        for engine in self.engines:
            tid = engine.tenant.id
            total += await drain(
                engine, consumer=self.name, batch=self.batch, claim=tid not in self._claimed
            )
            self._claimed.add(tid)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped("metrics loop", self.run_once, stop, self.poll_s, log)
