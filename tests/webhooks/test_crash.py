"""A consumer killed with SIGKILL mid-stream: another takes over, nothing enqueued twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from router.model import NewContact
from router.webhooks import WebhookConsumer

from ..conftest import EngineFactory
from .consumer_proc import body

ROOT = Path(__file__).resolve().parents[2]


async def test_sigkilled_consumer_leaves_no_double_delivery(
    make_engine: EngineFactory, redis_url: str
) -> None:
    url = "http://127.0.0.1:9/unused"  # nothing is sent in this test
    engine = await make_engine(body(url))
    r, k = engine.redis, engine.keys
    first = WebhookConsumer(engine)
    await first.start()
    contacts = 60
    for _ in range(contacts):
        await engine.create_contact(NewContact(channel="chat", queue="chat"))
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, never waited on in the loop
        [sys.executable, "-m", "tests.webhooks.consumer_proc", redis_url, engine.tenant.id, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            while True:  # kill it once it has applied some and holds others pending
                done = int(await r.zcard(k.webhook_due("crm")))
                pending = (await r.xpending(k.events, "webhooks"))["pending"]
                if done > 0 and pending > 0:
                    break
                await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    left = (await r.xpending(k.events, "webhooks"))["pending"]
    assert left > 0 and done < contacts
    successor = WebhookConsumer(engine, consumer="successor", claim_idle_ms=0)
    await successor.drain()
    assert (await r.xpending(k.events, "webhooks"))["pending"] == 0
    members: Any = await r.zrange(k.webhook_due("crm"), 0, -1)
    deliveries = [m.decode() for m in members]
    events: Any = await r.xrange(k.events)
    received = [i.decode() for i, f in events if f[b"type"] == b"contact.received"]
    assert sorted(deliveries) == sorted(f"{i}.crm" for i in received)
    assert len(received) == contacts
