"""A webhook consumer in its own process, for the SIGKILL test.

    python -m tests.webhooks.consumer_proc <redis url> <tenant> <subscription url>

Drains the tenant stream in batches of 10, pausing 100 ms between reading a
batch and applying it, so a kill very likely lands while entries are pending.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.engine import Engine
from router.streams import Entry
from router.webhooks import WebhookConsumer

from ..factories import BASE_BODY, tenant_toml


def body(url: str) -> str:
    return BASE_BODY + (
        f'\n[[webhooks.subscriptions]]\nid = "crm"\nurl = "{url}"\n'
        'events = ["contact.received"]\nsecret_env = "UNUSED"\n'
    )


async def main(redis_url: str, tenant: str, url: str) -> None:
    redis = Redis.from_url(redis_url)
    tc = load_config_text(tenant_toml(tenant, body(url)), "<proc>").tenants[tenant]
    engine = Engine(redis, tc, VirtualClock())
    consumer = WebhookConsumer(engine, consumer="doomed", batch=10)

    async def slow(entries: list[Entry]) -> None:
        await asyncio.sleep(0.1)
        await consumer.handle(entries)

    print("ready", flush=True)
    while True:
        await consumer.stream.poll(slow)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
