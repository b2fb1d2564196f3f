"""Subscriptions over time: runtime ones, deletion, config reloads, several senders."""

from __future__ import annotations

import asyncio
import dataclasses
import random

from router.model import AgentStatus, NewContact
from router.webhooks import WebhookSender, retry_delay_s
from router.webhooks.store import WebhookStore

from ..factories import agent
from .conftest import Hooks, HooksFactory, Receiver, subscription_toml


def _store(h: Hooks) -> WebhookStore:
    return h.sender.stores[h.engine.tenant.id]


async def test_assigned_events_carry_the_external_id(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("cti", receiver.url("/cti"), ["contact.assigned"]))
    await h.engine.upsert_agent(agent("a1", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    res = await h.engine.create_contact(
        NewContact(channel="voice", queue="voice", skills={"billing": 1}, external_id="CA42")
    )
    await h.engine.accept(res.contact_id, "a1")
    await h.pump()
    [got] = receiver.at("/cti")
    assert got.json["data"]["external_id"] == "CA42"
    assert got.json["data"]["agent"] == "a1"


async def test_runtime_subscriptions_receive_and_deleting_drops_their_deliveries(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks()
    store = _store(h)
    sub = await store.create("ops", receiver.url("/ops"), ["contact.received"])
    assert not isinstance(sub, str) and sub.secret is not None
    assert await store.create("ops", receiver.url("/x"), ["*"]) == "exists"
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    assert len(receiver.at("/ops")) == 1
    receiver.plan["/ops"] = [500]
    for _ in range(3):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    assert (await store.pending(["ops"]))["ops"] == 3
    assert await store.delete("ops") == (True, 3)
    assert await store.delete("ops") == (False, 0)
    assert not await h.engine.redis.exists(h.engine.keys.webhook_due("ops"))
    assert await store.active() == set()
    keys = await h.engine.redis.keys(h.engine.keys.prefix + "wh:d:*")
    assert keys == []


async def test_a_subscription_removed_by_a_reload_has_its_deliveries_purged(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    subs = subscription_toml("keep", receiver.url("/keep"), ["contact.received"])
    subs += subscription_toml("gone", receiver.url("/gone"), ["contact.received"])
    h = await make_hooks(subs)
    for _ in range(2):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    wh = h.engine.tenant.webhooks
    kept = tuple(s for s in wh.subscriptions if s.id == "keep")
    h.engine.tenant = dataclasses.replace(
        h.engine.tenant, webhooks=dataclasses.replace(wh, subscriptions=kept)
    )
    await h.send()
    # kept a while: another process may still run a config that has it
    assert await h.engine.redis.zcard(h.engine.keys.webhook_due("gone")) == 2
    h.sender.purge_after_s = 0
    await h.send()
    assert len(receiver.at("/keep")) == 2
    assert receiver.at("/gone") == []
    assert not await h.engine.redis.exists(h.engine.keys.webhook_due("gone"))
    assert await _store(h).active() == set()


async def test_two_senders_never_send_the_same_delivery(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["contact.received"]), per_subscription=8
    )
    other = WebhookSender([h.engine], per_subscription=8)
    try:
        for _ in range(30):
            await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
        await h.consumer.drain()
        for _ in range(10):
            await asyncio.gather(h.sender.run_once(), other.run_once())
            await asyncio.gather(h.sender.drain(), other.drain())
    finally:
        await other.close()
    ids = [r.headers["Switchboard-Event-Id"] for r in receiver.at("/crm")]
    assert len(ids) == 30 == len(set(ids))


def test_the_retry_schedule_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt, base in [(1, 30), (2, 60), (3, 120), (7, 1920), (11, 21600), (40, 21600)]:
        for _ in range(50):
            assert base * 0.8 <= retry_delay_s(attempt, rng) <= base * 1.2
    waits = {round(retry_delay_s(1, rng), 3) for _ in range(20)}
    assert len(waits) > 10  # jittered, not one fixed value
