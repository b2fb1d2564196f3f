"""Config reloads that every server process follows.

The process that reloads (SIGHUP or `POST /v1/admin/reload`) validates the new
file and switches each tenant's routing config in Redis (one transaction per
tenant). It then stores the file's text under the tenant's `config` key with a
new version, and publishes that version on the tenant's shard channel. Every
process listens and swaps its in-memory view of the tenant (tokens, queue names,
limits) to that text. The text comes from Redis, not from disk, so all processes
run the same version even if the file changes again meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from .keys import TenantKeys
from .loops import Outage
from .store.cluster import read_sharded, transaction

log = logging.getLogger("switchboard.config")

OnChange = Callable[[str, int, str, str], Awaitable[None]]  # tenant, version, source, text


async def publish(redis: Redis, tenant: str, source: str, text: str) -> int:
    """Store the tenant's applied config text and tell every process; returns its version."""
    k = TenantKeys(tenant)
    pipe = transaction(redis)  # the version and its text change together
    pipe.hincrby(k.config, "version", 1)
    pipe.hset(k.config, mapping={"source": source, "text": text})
    version = int((await pipe.execute())[0])
    await redis.spublish(k.config_channel, str(version))
    return version


async def current(redis: Redis, tenant: str) -> tuple[int, str, str] | None:
    version, source, text = await redis.hmget(
        TenantKeys(tenant).config, ["version", "source", "text"]
    )
    if version is None or text is None:
        return None
    return int(version), _s(source or b""), _s(text)


async def follow(
    redis: Redis, tenants: list[str], on_change: OnChange, stop: asyncio.Event
) -> None:
    """Call `on_change` for each version published for `tenants`, until `stop`."""
    channels = {TenantKeys(t).config_channel: t for t in tenants}
    backoff = 0.1
    outage = Outage("config reloads", log)

    async def changed(msg: dict[str, Any]) -> None:
        tenant = channels.get(_s(msg["channel"]))
        doc = None if tenant is None else await current(redis, tenant)
        if tenant is None or doc is None:
            return
        try:
            await on_change(tenant, *doc)
        except Exception:  # a bad document must not stop the listener
            log.exception("could not follow config version %s of %s", doc[0], tenant)

    def subscribed() -> None:
        nonlocal backoff
        outage.recovered()
        backoff = 0.1

    while not stop.is_set():
        try:
            # one reader per shard on a cluster (router/store/cluster.py)
            await read_sharded(redis, channels, changed, stop, subscribed)
        except (RedisError, RedisClusterException, OSError) as exc:
            outage.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, 5.0)


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
