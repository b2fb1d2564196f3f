"""The webhook consumer: stream entries -> deliveries, one script per batch.

It reads the tenant stream in the `webhooks` consumer group (router/streams.py)
and hands each batch to `webhook_enqueue.lua`, which acknowledges every entry
and enqueues its deliveries only when XACK says the entry was not acknowledged
before. A consumer that crashed after enqueueing but before its reply arrived
reads the entries again, and they enqueue nothing twice.
"""

from __future__ import annotations

import asyncio
import logging

from ..engine import Engine
from ..streams import Entry, StreamConsumer
from .signing import payload
from .store import GROUP, Subscription, WebhookStore

log = logging.getLogger("switchboard.webhooks")

ESCALATED = "contact.escalated"
DROP_WARN_EVERY_MS = 60_000  # a subscription at its max_pending cap: one warning a minute


def targets(entry: Entry, subs: dict[str, Subscription]) -> list[str]:
    """The subscriptions an event goes to: those whose filter matches, and for a
    `contact.escalated` event with a `webhook` field (the SLA action "notify"),
    that subscription whatever its filter."""
    out = [sid for sid, sub in subs.items() if sub.wants(entry.type)]
    named = entry.fields.get("webhook", "") if entry.type == ESCALATED else ""
    if named and named in subs and named not in out:
        out.append(named)
    return out


class WebhookConsumer:
    def __init__(
        self,
        engine: Engine,
        store: WebhookStore | None = None,
        *,
        consumer: str | None = None,
        batch: int = 100,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.engine = engine
        self.store = store or WebhookStore(engine.redis, engine.keys, engine.clock)
        self.stream = StreamConsumer(
            engine.redis,
            engine.keys.events,
            GROUP,
            consumer,
            batch=batch,
            claim_idle_ms=claim_idle_ms,
            parked_key=engine.keys.stream_parked(GROUP),
        )
        self.enqueued = 0
        self.dropped = 0
        self._warned_ms: dict[str, int] = {}  # subscription -> last drop warning (engine clock)
        self._unwarned: dict[str, int] = {}  # subscription -> drops not in a warning yet

    async def start(self) -> None:
        await self.stream.ensure_group()

    async def handle(self, entries: list[Entry]) -> None:
        subs = await self.store.subscriptions(self.engine.tenant)
        tenant = self.engine.tenant.id
        batch: list[tuple[str, str, str, list[str]]] = []
        for e in entries:
            to = targets(e, subs)
            body = payload(tenant, e.id, e.fields) if to else ""
            batch.append((e.id, e.type, body, to))
        wh = self.engine.tenant.webhooks
        enqueued, dropped = await self.store.enqueue(batch, wh.max_pending)
        self.enqueued += enqueued
        if dropped:
            self._warn_dropped(dropped, wh.max_pending)

    def _warn_dropped(self, dropped: dict[str, int], cap: int) -> None:
        """At most one warning a minute per subscription, with the drops since the last
        one; GET /v1/admin/webhooks has the full count and the event ids to replay."""
        now = self.engine.clock.now_ms()
        for sid, n in sorted(dropped.items()):
            self.dropped += n
            self._unwarned[sid] = self._unwarned.get(sid, 0) + n
            last = self._warned_ms.get(sid)
            if last is not None and now - last < DROP_WARN_EVERY_MS:
                continue
            self._warned_ms[sid] = now
            log.warning(
                "tenant %s: webhook %s has webhooks.max_pending (%d) deliveries waiting; "
                "%d new deliveries dropped (not stored) since the last warning: see "
                "`dropped` in GET /v1/admin/webhooks",
                self.engine.tenant.id,
                sid,
                cap,
                self._unwarned.pop(sid),
            )

    async def poll(self) -> int:
        """One batch, without waiting (tests and simulations)."""
        return await self.stream.poll(self.handle)

    async def drain(self) -> int:
        """Every entry there is now (tests and simulations)."""
        total = 0
        while n := await self.poll():
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        await self.stream.run(self.handle, stop)
