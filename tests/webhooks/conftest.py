"""Webhook test fixtures: a local receiver on 127.0.0.1, and an engine with subscriptions."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.clock import VirtualClock
from router.engine import Engine
from router.webhooks import WebhookConsumer, WebhookSender

from ..conftest import EngineFactory
from ..factories import BASE_BODY

SECRET = "s3cret-for-tests"
SECRET_ENV = "SB_TEST_WEBHOOK_SECRET"


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Receiver:
    """Records every request; `plan[path]` is a list of statuses to answer in turn
    (then 200), `delay[path]` seconds to wait before answering."""

    server: TestServer
    got: list[Received] = dataclasses.field(default_factory=list)
    plan: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    delay: dict[str, float] = dataclasses.field(default_factory=dict)
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def at(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec: Receiver

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        rec.got.append(Received(request.path, dict(request.headers), body))
        rec.arrived.set()
        wait = rec.delay.get(request.path, 0.0)
        if wait:
            await asyncio.sleep(wait)
        statuses = rec.plan.get(request.path)
        status = statuses.pop(0) if statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rec = Receiver(server)
    yield rec
    await server.close()


def subscription_toml(sid: str, url: str, events: list[str], env: str = SECRET_ENV) -> str:
    return (
        f'[[webhooks.subscriptions]]\nid = "{sid}"\nurl = "{url}"\n'
        f'events = {json.dumps(events)}\nsecret_env = "{env}"\n'
    )


@dataclasses.dataclass
class Hooks:
    engine: Engine
    clock: VirtualClock
    consumer: WebhookConsumer
    sender: WebhookSender

    async def pump(self) -> None:
        """Stream -> deliveries -> one round of sending, and wait for the answers."""
        await self.consumer.drain()
        await self.send()

    async def send(self) -> None:
        """Send every due delivery, round after round (per-subscription limits)."""
        while await self.sender.run_once():
            await self.sender.drain()


HooksFactory = Callable[..., Awaitable[Hooks]]


@pytest.fixture
async def make_hooks(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[HooksFactory]:
    """`await make_hooks(subscriptions_toml, max_attempts=3, max_pending=1000)`: an engine on a fresh
    tenant with these subscriptions, its consumer group created, and a sender."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    senders: list[WebhookSender] = []

    async def factory(
        subs: str = "", *, max_attempts: int = 3, max_pending: int = 1000, **sender_kw: Any
    ) -> Hooks:
        clock = VirtualClock(1_700_000_000_000)
        body = BASE_BODY + f"\n[webhooks]\nmax_attempts = {max_attempts}\ntimeout_s = 2\n"
        body += f"max_pending = {max_pending}\n" + subs
        engine = await make_engine(body, clock)
        consumer = WebhookConsumer(engine)
        await consumer.start()
        sender = WebhookSender([engine], **sender_kw)
        senders.append(sender)
        return Hooks(engine, clock, consumer, sender)

    yield factory
    for s in senders:
        await s.close()
