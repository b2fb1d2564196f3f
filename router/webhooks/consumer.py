"""The webhook consumer: stream entries -> deliveries, one script per batch.

It reads the tenant stream in the `webhooks` consumer group (router/streams.py)
and hands each batch to `webhook_enqueue.lua`, which acknowledges every entry
and enqueues its deliveries only when XACK says the entry was not acknowledged
before. A consumer that crashed after enqueueing but before its reply arrived
reads the entries again, and they enqueue nothing twice.
"""

from __future__ import annotations

import asyncio

from ..engine import Engine
from ..streams import Entry, StreamConsumer
from .signing import payload
from .store import GROUP, Subscription, WebhookStore

ESCALATED = "contact.escalated"


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
        )
        self.enqueued = 0

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
        self.enqueued += await self.store.enqueue(batch)

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
