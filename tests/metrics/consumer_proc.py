"""A metrics consumer in its own process, for the crash test.

    python -m tests.metrics.consumer_proc URL TENANT NOW_MS BATCH PAUSE_S

Applies batches until the stream is drained, pausing PAUSE_S between batches
so that the test can kill it (SIGKILL) part-way.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from router.config import load_config_text
from router.metrics.consumer import apply_batch

from ..factories import tenant_toml
from .conftest import METRICS_BODY


async def main(url: str, tenant: str, now_ms: int, batch: int, pause_s: float) -> None:
    tc = load_config_text(tenant_toml(tenant, METRICS_BODY), "<proc>").tenants[tenant]
    redis = Redis.from_url(url)
    try:
        while await apply_batch(redis, tc, now_ms, consumer="proc", batch=batch):
            print("batch", flush=True)
            await asyncio.sleep(pause_s)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    url, tenant, now, batch, pause = sys.argv[1:6]
    asyncio.run(main(url, tenant, int(now), int(batch), float(pause)))
