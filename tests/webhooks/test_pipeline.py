"""The pipeline's guarantees: no double enqueue, crash recovery, leases, isolation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest

from router.clock import VirtualClock
from router.model import NewContact
from router.webhooks import WebhookConsumer, WebhookSender

from ..conftest import EngineFactory
from .conftest import SECRET_ENV, HooksFactory, Receiver, subscription_toml


async def test_redelivered_entries_never_enqueue_twice(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["*"]))
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    entries = await h.consumer.stream.read()
    assert entries
    await h.consumer.handle(entries)
    first = h.consumer.enqueued
    assert first == len(entries)
    await h.consumer.handle(entries)  # the same batch again: a reply lost, a retry
    assert h.consumer.enqueued == first
    await h.pump()
    ids = [r.headers["Switchboard-Event-Id"] for r in receiver.at("/crm")]
    assert sorted(ids) == sorted(e.id for e in entries)


async def test_a_crashed_consumers_pending_entries_are_taken_over_once(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    for _ in range(5):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    crashed = WebhookConsumer(h.engine, consumer="crashed", batch=3)
    read = await crashed.stream.read()  # read, then the process dies: all pending
    assert len(read) == 3
    pending = await h.engine.redis.xpending(h.engine.keys.events, "webhooks")
    assert pending["pending"] == 3
    other = WebhookConsumer(h.engine, consumer="other", claim_idle_ms=0)
    await other.drain()
    await h.send()
    pending = await h.engine.redis.xpending(h.engine.keys.events, "webhooks")
    assert pending["pending"] == 0
    got = [r.json["data"]["contact"] for r in receiver.at("/crm")]
    assert len(got) == 5 == len(set(got))
    # the crashed consumer restarting under its own name finds nothing left to do
    again = WebhookConsumer(h.engine, consumer="crashed")
    assert await again.drain() == 0


async def test_a_restarted_consumer_reads_its_own_pending_entries_first(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    before = WebhookConsumer(h.engine, consumer="c1")
    assert await before.stream.read()  # dies before handling
    after = WebhookConsumer(h.engine, consumer="c1", claim_idle_ms=3_600_000)
    assert await after.drain() >= 1
    await h.send()
    assert len(receiver.at("/crm")) == 1


async def test_notify_escalation_reaches_the_named_subscription(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    subs = subscription_toml("pager", receiver.url("/pager"), ["sla.breached"])
    subs += subscription_toml("sla", receiver.url("/sla"), ["sla.*"])
    h = await make_hooks(subs)
    r = h.engine.redis
    fields: dict[Any, Any] = {
        "v": "1",
        "type": "contact.escalated",
        "at": str(h.clock.now_ms()),
        "contact": "c1",
        "queue": "chat",
        "channel": "chat",
        "stage": "0",
        "priority": "0",
        "created": str(h.clock.now_ms() - 60_000),
        "action": "notify",
        "sla": "answer",
        "level": "breach",
    }
    await r.xadd(h.engine.keys.events, {**fields, "webhook": "pager"})
    await r.xadd(h.engine.keys.events, {**fields, "action": "raise_priority", "webhook": ""})
    await r.xadd(h.engine.keys.events, {**fields, "webhook": "no-such-subscription"})
    await h.pump()
    [got] = receiver.at("/pager")
    assert got.json["type"] == "contact.escalated"
    assert got.json["data"]["webhook"] == "pager" and got.json["data"]["action"] == "notify"
    assert receiver.at("/sla") == []  # its filter does not match, and it is not named


async def test_a_crashed_senders_lease_expires_and_another_sender_retries(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    store = h.sender.stores[h.engine.tenant.id]
    [taken], _ = await store.take(
        [("crm", 4)], 12_000, "dead-sender", max_attempts=3, dead_letter_ms=60_000
    )  # then it dies
    other = WebhookSender([h.engine])
    try:
        assert await other.run_once() == 0  # leased: nobody else sends it
        h.clock.advance(12)
        assert await other.run_once() == 1
        await other.drain()
    finally:
        await other.close()
    [got] = receiver.at("/crm")
    assert got.headers["Switchboard-Delivery-Attempt"] == "2"
    # the first sender wakes up late: its lease is gone, its outcome changes nothing
    assert not await store.result(taken, "retry", due_ms=h.clock.now_ms())
    assert await h.engine.redis.zcard(h.engine.keys.webhook_due("crm")) == 0


async def test_a_delivery_whose_every_sender_dies_ends_as_a_dead_letter_unsent(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["contact.received"]), max_attempts=2
    )
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    store = h.sender.stores[h.engine.tenant.id]
    takes = []
    for attempt in (1, 2):  # each sender takes it, then dies while sending
        [taken], dead = await store.take(
            [("crm", 4)], 12_000, f"doomed{attempt}", max_attempts=2, dead_letter_ms=60_000
        )
        assert taken.attempt == attempt and dead == []
        takes.append(taken)
        h.clock.advance(12)
    assert await h.sender.run_once() == 0  # attempt 3 would exceed max_attempts
    await h.sender.drain()
    assert receiver.at("/crm") == []
    assert await h.engine.redis.zcard(h.engine.keys.webhook_due("crm")) == 0
    assert await store.active() == set()
    [letter], total = await store.dead_letters(0, 10)
    assert total == 1 and letter["id"] == taken.id
    assert letter["attempts"] == 2 and letter["last_status"] is None
    assert "no outcome recorded for attempt 2" in letter["last_error"]
    assert letter["dead_ms"] == h.clock.now_ms()
    assert not await store.result(takes[0], "ok")  # not the last attempt: changes nothing
    assert (await store.dead_letters(0, 10))[1] == 1
    # retried after the fix, it is sent again with fresh attempts
    assert await store.retry_dead(taken.id)
    await h.send()
    [got] = receiver.at("/crm")
    assert got.headers["Switchboard-Delivery-Attempt"] == "1"


async def test_a_slow_receiver_blocks_neither_routing_nor_other_subscriptions(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    subs = subscription_toml("slow", receiver.url("/slow"), ["contact.received"])
    subs += subscription_toml("fast", receiver.url("/fast"), ["contact.received"])
    h = await make_hooks(subs, per_subscription=2, poll_s=0.01)
    receiver.delay["/slow"] = 1.5
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(h.consumer.run(stop)),
        asyncio.create_task(h.sender.run(stop)),
    ]
    try:
        for _ in range(5):
            await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
        deadline = time.monotonic() + 1.0
        while len(receiver.at("/fast")) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # every fast delivery arrived while the slow receiver still sat on its first two
        assert len(receiver.at("/fast")) == 5
        assert len(receiver.at("/slow")) == 2  # its concurrency limit, nothing more
        # routing goes on at full speed while the slow receiver holds its requests
        started = time.perf_counter()
        for _ in range(20):
            await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
        assert time.perf_counter() - started < 0.5
        deadline = time.monotonic() + 1.0
        while len(receiver.at("/fast")) < 25 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(receiver.at("/fast")) == 25
        assert len(receiver.at("/slow")) == 2
    finally:
        stop.set()
        await asyncio.gather(*tasks)


NOTIFY_BODY = """
[routing]
presence_timeout_s = 0

[pools.inhouse]

[queues.chat]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 1000

[queues.chat.sla]
threshold_s = 20

[[queues.chat.sla.escalation]]
on = "warning"
action = "notify"
webhook = "pager"
"""


async def test_the_sla_notify_escalation_is_delivered_end_to_end(
    make_engine: EngineFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SLA timers' own `contact.escalated` (action notify) reaches the named
    subscription, whose filter takes only breaches."""
    monkeypatch.setenv(SECRET_ENV, "x")
    clock = VirtualClock()
    subs = subscription_toml("pager", receiver.url("/pager"), ["sla.breached"])
    engine = await make_engine(NOTIFY_BODY + subs, clock)
    consumer = WebhookConsumer(engine)
    await consumer.start()
    sender = WebhookSender([engine])
    try:
        res = await engine.create_contact(NewContact(channel="chat", queue="chat"))
        clock.advance(17)  # the warning (80 % of 20 s), not yet the breach
        await engine.run_due_timers()
        await consumer.drain()
        await sender.run_once()
        await sender.drain()
        [got] = receiver.at("/pager")
        data = got.json["data"]
        assert got.json["type"] == "contact.escalated"
        assert (data["action"], data["webhook"], data["level"]) == ("notify", "pager", "warning")
        assert data["contact"] == res.contact_id
        clock.advance(5)
        await engine.run_due_timers()
        await consumer.drain()
        await sender.run_once()
        await sender.drain()
        assert [r.json["type"] for r in receiver.at("/pager")] == [
            "contact.escalated",
            "sla.breached",
        ]
    finally:
        await sender.close()


async def test_an_event_that_always_fails_to_enqueue_is_parked_not_retried_forever(
    make_hooks: HooksFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    for _ in range(3):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    r, k = h.engine.redis, h.engine.keys
    received = [
        i.decode() for i, f in await r.xrange(k.events) if f[b"type"] == b"contact.received"
    ]
    bad = received[1]
    enqueue = h.consumer.store.enqueue

    async def poisoned(entries: Any, max_pending: int) -> Any:
        if any(e[0] == bad for e in entries):
            raise ValueError("cannot enqueue this one")
        return await enqueue(entries, max_pending)

    monkeypatch.setattr(h.consumer.store, "enqueue", poisoned)
    for _ in range(20):
        with contextlib.suppress(ValueError):
            await h.consumer.poll()
    assert (await r.xpending(k.events, "webhooks"))["pending"] == 0
    parked: Any = await r.lrange(k.stream_parked("webhooks"), 0, -1)
    assert [json.loads(p)["id"] for p in parked] == [bad]
    await h.send()
    got = sorted(x.headers["Switchboard-Event-Id"] for x in receiver.at("/crm"))
    assert got == [received[0], received[2]]  # the others were delivered


async def test_a_late_outcome_of_the_last_attempt_settles_its_dead_letter(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    """The last sender only lost its lease (a slow receiver): take made the delivery a
    dead letter, but the event did arrive. Its late `ok` removes the dead letter, so
    neither the dead letter nor a retry of it sends the event twice."""
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["contact.received"]), max_attempts=1
    )
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    store = h.sender.stores[h.engine.tenant.id]
    slow, dead = await store.take(
        [("crm", 4)], 12_000, "slow", max_attempts=1, dead_letter_ms=60_000
    )
    assert len(slow) == 2 and dead == []
    h.clock.advance(13)  # both leases run out while the receiver is slow
    taken, dead = await store.take(
        [("crm", 4)], 12_000, "other", max_attempts=1, dead_letter_ms=60_000
    )
    assert taken == [] and sorted(dead) == sorted(t.id for t in slow)
    # the slow sender's answers arrive: one delivered, one refused with a 500
    assert await store.result(slow[0], "ok")
    assert await store.result(slow[1], "dead", status=500, error="HTTP 500")
    [letter], total = await store.dead_letters(0, 10)
    assert total == 1 and letter["id"] == slow[1].id
    assert letter["last_status"] == 500 and letter["last_error"] == "HTTP 500"
    r, k = h.engine.redis, h.engine.keys
    assert not await r.exists(k.webhook_delivery(slow[0].id))
    assert not await store.retry_dead(slow[0].id)  # no dead letter to replay
    assert not await store.result(slow[1], "ok")  # recorded once; no longer late
    # a retried dead letter takes no late outcome of its earlier life
    assert await store.retry_dead(slow[1].id)
    assert not await store.result(slow[1], "ok")
    assert await r.zcard(k.webhook_due("crm")) == 1
