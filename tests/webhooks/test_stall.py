"""A fault that makes every event fail (not one poison event) parks nothing."""

from __future__ import annotations

from router.model import NewContact
from router.streams import Stalled

from .conftest import HooksFactory, Receiver, subscription_toml


async def test_a_corrupt_subscription_stalls_webhooks_without_losing_events(
    make_hooks: HooksFactory, receiver: Receiver
) -> None:
    h = await make_hooks(subscription_toml("all", receiver.url("/all"), ["*"]))
    r, k = h.engine.redis, h.engine.keys
    await r.hset(k.webhook_subs, "broken", "{not json")  # subscriptions() fails for every event
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    await h.engine.create_contact(NewContact(channel="chat", queue="chat"))
    events = [i.decode() for i, _ in await r.xrange(k.events)]
    stalled = 0
    for _ in range(200):
        try:
            await h.consumer.poll()
        except Stalled:
            stalled += 1
            if stalled == 2:
                break
        except ValueError:
            continue
    assert stalled == 2
    assert h.consumer.stream.parked == 0 and await r.llen(k.stream_parked("webhooks")) == 0
    await r.hdel(k.webhook_subs, "broken")  # the operator repairs it
    await h.pump()
    assert sorted(x.json["id"] for x in receiver.at("/all")) == sorted(events)
