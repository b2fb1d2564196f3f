"""Runs the webhook pipeline in a server process: a consumer per tenant, one sender."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..engine import Engine
from .consumer import WebhookConsumer
from .sender import WebhookSender
from .store import WebhookStore


class WebhookRunner:
    def __init__(self, engines: Sequence[Engine]) -> None:
        self.engines = {e.tenant.id: e for e in engines}
        self.consumers = [WebhookConsumer(e) for e in engines]
        self.sender = WebhookSender(engines)

    def store(self, tenant: str) -> WebhookStore:
        return self.sender.stores[tenant]

    async def start(self) -> None:
        """Create the consumer groups before traffic, so no event is missed."""
        for c in self.consumers:
            await c.start()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(c.run(stop) for c in self.consumers), self.sender.run(stop))
