"""Waking agents' long polls when an offer is made, without a connection per waiter.

Each process subscribes once, to every tenant's shard channel `sb:{tenant}:offers`
(the offer script publishes the agent's id there). A waiter registers an event,
re-reads the agent's offers from state, and waits; a lost notification only
delays it until its own timeout, because state is the truth, not the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .keys import TenantKeys

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
        while not stop.is_set():
            pubsub = self.redis.pubsub()
            try:
                await pubsub.ssubscribe(*self._channels)
                self.ready.set()
                backoff = 0.1
                while not stop.is_set():
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if msg and msg.get("type") == "smessage":
                        self._wake(_s(msg["channel"]), _s(msg["data"]))
            except (RedisError, OSError) as exc:
                self.ready.clear()
                log.warning("offer wake-ups: redis unavailable (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
