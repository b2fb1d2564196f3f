"""Delivery to a local receiver: payload, signature, retries, dead letters, filters."""

from __future__ import annotations

import json
from typing import Any

from router.model import NewContact
from router.webhooks import verify

from .conftest import SECRET, HooksFactory, Receiver, subscription_toml


async def test_signed_delivery_verifies_and_tampering_does_not(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    res = await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    [got] = receiver.at("/crm")
    now_s = h.clock.now_ms() // 1000
    sig = got.headers["Switchboard-Signature"]
    assert sig.startswith(f"t={now_s},v1=")
    assert verify(SECRET, sig, got.body, now_s)
    assert not verify(SECRET, sig, got.body.replace(b"chat", b"chaT"), now_s)
    assert not verify("another secret", sig, got.body, now_s)
    assert not verify(SECRET, sig, got.body, now_s + 3600)  # too old: a replay
    body = got.json
    assert body["type"] == "contact.received" == got.headers["Switchboard-Event-Type"]
    assert body["id"] == got.headers["Switchboard-Event-Id"]
    assert body["tenant"] == h.engine.tenant.id
    assert body["at"] == h.clock.now_ms()
    assert body["data"]["contact"] == res.contact_id
    assert body["data"]["queue"] == "chat"
    assert got.headers["Switchboard-Delivery-Attempt"] == "1"
    assert got.headers["Content-Type"] == "application/json"
    stream: Any = await h.engine.redis.xrange(h.engine.keys.events, body["id"], body["id"])
    assert stream[0][1][b"type"] == b"contact.received"


async def test_a_500_is_retried_with_the_same_event_id_then_succeeds(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("crm", receiver.url("/crm"), ["contact.received"]))
    receiver.plan["/crm"] = [500, 503]
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    assert len(receiver.at("/crm")) == 1
    await h.pump()  # not due yet: nothing is sent
    assert len(receiver.at("/crm")) == 1
    for expected in (2, 3):
        h.clock.advance(3600)
        await h.pump()
        assert len(receiver.at("/crm")) == expected
    first, second, third = receiver.at("/crm")
    assert first.body == second.body == third.body  # same bytes: dedupe by the event id
    ids = {r.headers["Switchboard-Event-Id"] for r in (first, second, third)}
    assert len(ids) == 1
    assert [r.headers["Switchboard-Delivery-Attempt"] for r in (first, second, third)] == [
        "1",
        "2",
        "3",
    ]
    h.clock.advance(10 * 3600)
    await h.pump()
    assert len(receiver.at("/crm")) == 3  # delivered: never sent again
    assert await h.engine.redis.zcard(h.engine.keys.webhook_due("crm")) == 0
    dead, total = await h.sender.stores[h.engine.tenant.id].dead_letters(0, 10)
    assert total == 0 and dead == []


async def test_dead_letter_after_max_attempts_then_retry_from_it(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["contact.received"]), max_attempts=3
    )
    receiver.plan["/crm"] = [500] * 3
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    for _ in range(4):
        h.clock.advance(6 * 3600)
        await h.pump()
    assert len(receiver.at("/crm")) == 3
    store = h.sender.stores[h.engine.tenant.id]
    [dead], total = await store.dead_letters(0, 10)
    assert total == 1
    assert dead["subscription"] == "crm" and dead["attempts"] == 3
    assert dead["last_status"] == 500 and "500" in dead["last_error"]
    assert dead["event_id"] == receiver.at("/crm")[0].headers["Switchboard-Event-Id"]
    assert dead["payload"] == receiver.at("/crm")[0].json
    assert await store.retry_dead(dead["id"])
    assert not await store.retry_dead(dead["id"])  # no longer a dead letter
    await h.pump()
    assert len(receiver.at("/crm")) == 4
    assert receiver.at("/crm")[-1].headers["Switchboard-Delivery-Attempt"] == "1"
    assert (await store.dead_letters(0, 10))[1] == 0
    assert not await h.engine.redis.exists(h.engine.keys.webhook_delivery(dead["id"]))


async def test_dead_letters_expire_after_their_retention(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["contact.received"]), max_attempts=1
    )
    receiver.plan["/crm"] = [500]
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    store = h.sender.stores[h.engine.tenant.id]
    [dead], _ = await store.dead_letters(0, 10)
    h.clock.advance(6 * 86400)
    assert await h.sender.trim() == 0
    h.clock.advance(1.01 * 86400)  # dead_letter_days defaults to 7
    assert await h.sender.trim() == 1
    assert (await store.dead_letters(0, 10))[1] == 0
    assert not await h.engine.redis.exists(h.engine.keys.webhook_delivery(dead["id"]))


async def test_event_filters_exact_family_and_all(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    subs = (
        subscription_toml("all", receiver.url("/all"), ["*"])
        + subscription_toml("family", receiver.url("/family"), ["contact.*"])
        + subscription_toml("exact", receiver.url("/exact"), ["contact.queued"])
        + subscription_toml("agents", receiver.url("/agents"), ["agent.*"])
        + subscription_toml("none", receiver.url("/none"), ["sla.breached"])
    )
    h = await make_hooks(subs)
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    entries: Any = await h.engine.redis.xrange(h.engine.keys.events)
    types = [f[b"type"].decode() for _, f in entries]
    assert sorted(r.json["type"] for r in receiver.at("/all")) == sorted(types)
    assert sorted(r.json["type"] for r in receiver.at("/family")) == sorted(
        t for t in types if t.startswith("contact.")
    )
    assert [r.json["type"] for r in receiver.at("/exact")] == ["contact.queued"]
    assert receiver.at("/agents") == [] and receiver.at("/none") == []


async def test_missing_secret_is_an_error_not_an_unsigned_request(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(
        subscription_toml("crm", receiver.url("/crm"), ["*"], env="SB_TEST_NOT_SET"),
        max_attempts=1,
    )
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.pump()
    assert receiver.got == []
    dead, total = await h.sender.stores[h.engine.tenant.id].dead_letters(0, 100)
    assert total > 0
    assert "SB_TEST_NOT_SET" in dead[0]["last_error"]


def test_payload_is_compact_json() -> None:
    from router.webhooks import payload

    body = payload("acme", "1-0", {"v": "1", "type": "x.y", "at": "5", "contact": "é"})
    assert json.loads(body) == {
        "id": "1-0",
        "type": "x.y",
        "at": 5,
        "tenant": "acme",
        "data": {"v": "1", "type": "x.y", "at": "5", "contact": "é"},
    }
