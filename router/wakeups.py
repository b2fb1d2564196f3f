"""Waking agents' long polls when an offer is made, without a connection per waiter.

Each process subscribes once, to every tenant's shard channel `sb:{tenant}:offers`
(the offer script publishes the agent's id there). On a cluster that is one
connection and one reader per shard, shared by the tenants on it. A waiter registers an event,
re-reads the agent's offers from state, and waits; a lost notification only
delays it until its own timeout, because state is the truth, not the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from .keys import TenantKeys
from .loops import Outage
from .store.cluster import read_sharded

log = logging.getLogger("switchboard.wakeups")


class OfferWakeups:
    def __init__(self, redis: Redis, tenants: list[str]) -> None:
        self.redis = redis
        self._channels = {TenantKeys(t).offers_channel: t for t in tenants}
        self._waiters: dict[tuple[str, str], set[asyncio.Event]] = defaultdict(set)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def waiter(self, tenant: str, agent: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        key = (tenant, agent)
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]

    def _wake(self, channel: str, agent: str) -> None:
        tenant = self._channels.get(channel)
        for event in self._waiters.get((tenant or "", agent), ()):
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        outage = Outage("offer wake-ups", log)

        async def woken(msg: dict[str, Any]) -> None:
            self._wake(_s(msg["channel"]), _s(msg["data"]))

        def subscribed() -> None:
            nonlocal backoff
            self.ready.set()
            outage.recovered()
            backoff = 0.1

        while not stop.is_set():
            try:
                # one reader per shard on a cluster (router/store/cluster.py)
                await read_sharded(self.redis, self._channels, woken, stop, subscribed)
            except (RedisError, RedisClusterException, OSError) as exc:
                self.ready.clear()
                outage.failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 5.0)


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
