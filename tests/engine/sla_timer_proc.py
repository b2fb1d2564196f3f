"""A timer process for the exactly-once test: its own interpreter, connection,
scripts, engine and virtual clock, running the TimerLoop over a fixed schedule.

    python -m tests.engine.sla_timer_proc URL TENANT T0_MS BATCH

It prints "ready", waits for a line on stdin (so that all processes start
together), then steps its clock through the schedule, running the loop at each
step, and prints "done <timers applied>".
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.engine import Engine
from router.store.scripts import Scripts
from router.timers import TimerLoop

from ..factories import tenant_toml
from .sla_common import SLA_BODY


def schedule(t0: int) -> list[int]:
    """Every second for the chat clocks (10-20 s), then every 5 minutes past the
    email ones (first response 1 h, resolution 2 h; warnings at 80 %)."""
    return [t0 + s * 1000 for s in range(1, 41)] + [t0 + s * 1000 for s in range(300, 8101, 300)]


async def main(url: str, tenant: str, t0: int, batch: int) -> None:
    tc = load_config_text(tenant_toml(tenant, SLA_BODY), "<proc>").tenants[tenant]
    redis = Redis.from_url(url)
    try:
        clock = VirtualClock(t0)
        loop = TimerLoop([Engine(redis, tc, clock, Scripts(redis))], clock, batch=batch)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        applied = 0
        for at in schedule(t0):
            clock.set_ms(at)
            applied += await loop.run_once()
        print("done", applied, flush=True)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    url, tenant, t0, batch = sys.argv[1:5]
    asyncio.run(main(url, tenant, int(t0), int(batch)))
