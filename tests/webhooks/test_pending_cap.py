"""`webhooks.max_pending`: a dead receiver cannot fill Redis with waiting deliveries."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from router.model import NewContact

from .conftest import HooksFactory, Receiver, subscription_toml


async def _event_ids(h: Any) -> list[str]:
    return [i.decode() for i, _ in await h.engine.redis.xrange(h.engine.keys.events)]


async def test_past_max_pending_deliveries_are_dropped_counted_and_traced(
    make_hooks: HooksFactory, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    subs = subscription_toml("all", receiver.url("/all"), ["*"])
    subs += subscription_toml("rcv", receiver.url("/rcv"), ["contact.received"])
    h = await make_hooks(subs, max_pending=5)
    store = h.sender.stores[h.engine.tenant.id]
    r, k = h.engine.redis, h.engine.keys
    caplog.set_level(logging.WARNING, "switchboard.webhooks")
    for _ in range(5):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    ids = await _event_ids(h)
    assert len(ids) > 5
    assert await store.pending(["all", "rcv"]) == {"all": 5, "rcv": 5}  # each its own cap
    assert await r.zrange(k.webhook_due("all"), 0, -1) == [f"{i}.all".encode() for i in ids[:5]]
    assert len(await r.keys(k.prefix + "wh:d:*")) == 10  # nothing stored past the cap
    drops = await store.drops(["all", "rcv"])
    assert drops["rcv"] is None
    d = drops["all"]
    assert d is not None and d.count == len(ids) - 5 == h.consumer.dropped
    assert (d.first_event, d.last_event) == (ids[5], ids[-1])
    assert d.first_ms == d.last_ms == h.clock.now_ms()
    warned = [m for m in caplog.messages if "webhook all " in m]
    assert len(warned) == 1 and f"{len(ids) - 5} new deliveries dropped" in warned[0]

    # more drops within the minute: counted, but no new warning
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    h.clock.advance(30)
    await h.consumer.drain()
    more = await _event_ids(h)
    d2 = (await store.drops(["all"]))["all"]
    assert d2 is not None and d2.count == len(more) - 5
    assert (d2.first_event, d2.last_event) == (ids[5], more[-1])
    assert d2.first_ms == d.first_ms and d2.last_ms == h.clock.now_ms()
    assert len([m for m in caplog.messages if "webhook all " in m]) == 1
    h.clock.advance(31)  # a minute after the first warning: warned again
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    warned = [m for m in caplog.messages if "webhook all " in m]
    assert len(warned) == 2 and f"{len(await _event_ids(h)) - len(ids)} new" in warned[1]

    # the receiver catches up: below the cap, new events are stored again
    await h.send()
    assert await store.pending(["all", "rcv"]) == {"all": 0, "rcv": 0}
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.consumer.drain()
    assert (await store.pending(["all"]))["all"] > 0
    # deleting the subscription's deliveries (here: a purge) clears its trace
    n, left = await store.purge("all")
    assert n > 0 and left == 0
    assert (await store.drops(["all"]))["all"] is None


async def test_the_cap_holds_within_one_batch_and_never_enqueues_twice(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("all", receiver.url("/all"), ["*"]), max_pending=1)
    store = h.sender.stores[h.engine.tenant.id]
    for _ in range(3):
        await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    entries = await h.consumer.stream.read()
    assert len(entries) > 2  # one batch
    await h.consumer.handle(entries)
    await h.consumer.handle(entries)  # read again: already acknowledged, nothing counted twice
    assert (await store.pending(["all"]))["all"] == 1
    d = (await store.drops(["all"]))["all"]
    assert d is not None and d.count == len(entries) - 1


async def test_the_drop_record_describes_the_latest_outage_and_keeps_earlier_ones(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("all", receiver.url("/all"), ["*"]), max_pending=2)
    store = h.sender.stores[h.engine.tenant.id]
    r, k = h.engine.redis, h.engine.keys

    async def outage(contacts: int) -> list[str]:
        """The receiver is not answered for a while: events past the cap are dropped."""
        before = set(await _event_ids(h))
        for _ in range(contacts):
            await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
        await h.consumer.drain()
        return [i for i in await _event_ids(h) if i not in before]

    first = await outage(3)
    d1 = (await store.drops(["all"]))["all"]
    assert d1 is not None and d1.ended_ms is None and d1.previous == ()
    assert (d1.first_event, d1.last_event, d1.run_count) == (first[2], first[-1], len(first) - 2)
    h.clock.advance(60)
    await h.send()  # the receiver is back and catches up
    between = await outage(1)  # stored again: the first run is over
    assert len(between) <= 2
    await h.send()
    d = (await store.drops(["all"]))["all"]
    assert d is not None and d.ended_ms == h.clock.now_ms() and d.count == d1.count
    h.clock.advance(60)
    second = await outage(3)  # the second outage
    d2 = (await store.drops(["all"]))["all"]
    assert d2 is not None and d2.count == len(first) - 2 + len(second) - 2
    assert (d2.first_event, d2.last_event) == (second[2], second[-1])
    assert d2.run_count == len(second) - 2 and d2.ended_ms is None
    assert d2.first_ms == h.clock.now_ms()
    [prev] = d2.previous
    assert (prev.first_event, prev.last_event, prev.count) == (first[2], first[-1], d1.count)
    assert prev.ended_ms == d.ended_ms and prev.first_ms == d1.first_ms
    # XRANGE first..last replays exactly the second outage's drops: nothing delivered
    delivered = {x.json["id"] for x in receiver.at("/all")}
    replay = [i.decode() for i, _ in await r.xrange(k.events, d2.first_event, d2.last_event)]
    assert replay == second[2:] and not delivered & set(replay)
    assert set(between) <= delivered
