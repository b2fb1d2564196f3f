"""Conversations: threading, follow-ups, reopening, dedup, rules, and not-routed items."""

from __future__ import annotations

import asyncio

from adapters.inbound import Attachment, Inbound, Kind
from router.conversations import Conversations
from router.engine import Engine
from router.model import AgentStatus, ContactState, Customer

from .conftest import EngineFactory
from .factories import BASE_BODY, agent

BODY = (
    BASE_BODY
    + """
[queues.chat_es]
channel = "chat"
pools = ["inhouse"]

[queues.sms]
channels = ["sms", "social"]
pools = ["inhouse"]

[conversations]
reopen_s = 600

[default_queues]
chat = "chat"
email = "email"
sms = "sms"
social = "sms"
voice = "voice"

[[rules]]
name = "spanish chat"
when = { channel = "chat", language = "es" }
queue = "chat_es"

[[rules]]
name = "fraud is urgent"
when = { keywords = ["fraud", "stolen"] }
priority = 9

[[rules]]
name = "gold callers"
when = { channel = "voice", attributes = { tier = "gold" }, ivr = { menu = ["1", "billing"] } }
skills = { billing = 4 }
priority = 5
"""
)


def chat(kind: Kind, session: str, text: str = "hi", **kw: object) -> Inbound:
    return Inbound(
        channel="chat",
        kind=kind,
        provider="widget",
        thread_key=session,
        customer=Customer(id="k-" + session, name="Ann"),
        text=text,
        **kw,  # type: ignore[arg-type]
    )


async def _engine(make_engine: EngineFactory) -> tuple[Engine, Conversations]:
    engine = await make_engine(BODY)
    return engine, Conversations(engine)


async def test_a_session_is_one_contact_and_follow_ups_join_its_timeline(
    make_engine: EngineFactory,
) -> None:
    engine, conv = await _engine(make_engine)
    first = await conv.receive(chat(Kind.MESSAGE, "s1", "my card"))
    assert first.status == 201 and first.queue == "chat"
    again = await conv.receive(chat(Kind.MESSAGE, "s1", "is blocked"))
    assert (again.status, again.contact_id, again.reason) == (200, first.contact_id, "added")
    assert first.contact_id is not None
    timeline = await engine.timeline(first.contact_id)
    assert [e["text"] for e in timeline] == ["is blocked"]
    other = await conv.receive(chat(Kind.MESSAGE, "s2"))
    assert other.status == 201 and other.contact_id != first.contact_id


async def test_racing_first_messages_make_one_contact(make_engine: EngineFactory) -> None:
    _, conv = await _engine(make_engine)
    outs = await asyncio.gather(
        *(conv.receive(chat(Kind.MESSAGE, "s9", f"m{i}")) for i in range(8))
    )
    assert len({o.contact_id for o in outs}) == 1
    assert sorted(o.status for o in outs) == [200] * 7 + [201]


async def test_ended_while_waiting_is_an_abandon(make_engine: EngineFactory) -> None:
    engine, conv = await _engine(make_engine)
    first = await conv.receive(chat(Kind.MESSAGE, "s1"))
    out = await conv.receive(chat(Kind.ENDED, "s1"))
    assert (out.status, out.state) == (200, "abandoned")
    assert first.contact_id is not None
    c = await engine.get_contact(first.contact_id)
    assert c.state is ContactState.ABANDONED
    # an end for no known conversation is recorded, not an error
    lost = await conv.receive(chat(Kind.ENDED, "nobody"))
    assert (lost.status, lost.reason) == (202, "no_conversation")


async def test_a_message_soon_after_completion_reopens_to_the_last_agent(
    make_engine: EngineFactory,
) -> None:
    engine, conv = await _engine(make_engine)
    await engine.upsert_agent(agent("a1"), AgentStatus.AVAILABLE)
    first = await conv.receive(chat(Kind.MESSAGE, "s1"))
    cid = first.contact_id
    assert cid is not None and first.state == "reserved"
    await engine.accept(cid, "a1")
    await engine.complete(cid, "a1")
    assert (await engine.get_contact(cid)).state is ContactState.COMPLETED
    engine.clock.advance(300)  # type: ignore[attr-defined]
    back = await conv.receive(chat(Kind.MESSAGE, "s1", "one more thing"))
    assert (back.status, back.contact_id, back.reason) == (200, cid, "reopened")
    c = await engine.get_contact(cid)
    assert (c.state, c.agent) == (ContactState.RESERVED, "a1")
    await engine.accept(cid, "a1")
    await engine.complete(cid, "a1")
    # past the window, the same session starts a new contact
    engine.clock.advance(601)  # type: ignore[attr-defined]
    new = await conv.receive(chat(Kind.MESSAGE, "s1", "hello again"))
    assert new.status == 201 and new.contact_id != cid


async def test_a_repeated_event_id_is_processed_once(make_engine: EngineFactory) -> None:
    engine, conv = await _engine(make_engine)
    a = await conv.receive(chat(Kind.MESSAGE, "s1", event_id="e1"))
    b = await conv.receive(chat(Kind.MESSAGE, "s1", event_id="e1"))
    assert a.status == 201 and (b.status, b.contact_id, b.duplicate) == (200, a.contact_id, True)
    assert a.contact_id is not None
    assert await engine.timeline(a.contact_id) == []


async def test_rules_pick_queue_priority_and_skills(make_engine: EngineFactory) -> None:
    engine, conv = await _engine(make_engine)
    es = await conv.receive(chat(Kind.MESSAGE, "s1", "hola", language="es-MX"))
    assert es.queue == "chat_es"
    urgent = await conv.receive(chat(Kind.MESSAGE, "s2", "My card was STOLEN"))
    assert urgent.contact_id is not None
    c = await engine.get_contact(urgent.contact_id)
    assert (c.queue, c.priority, c.attributes["rule"]) == ("chat", 9, "fraud is urgent")
    call = Inbound(
        channel="voice",
        kind=Kind.MESSAGE,
        provider="twilio",
        external_id="CA1",
        thread_key="CA1",
        attributes={"tier": "Gold"},
        ivr={"menu": "1"},
    )
    gold = await conv.receive(call)
    assert gold.contact_id is not None
    c = await engine.get_contact(gold.contact_id)
    assert (c.priority, c.skills, c.external_id) == (5, {"billing": 4}, "CA1")
    plain = await conv.receive(
        Inbound(
            channel="voice",
            kind=Kind.MESSAGE,
            provider="twilio",
            thread_key="CA2",
            ivr={"menu": "3"},
            attributes={"tier": "gold"},
        )
    )
    assert plain.contact_id is not None
    assert (await engine.get_contact(plain.contact_id)).priority == 0


async def test_email_threads_by_message_id_and_bounces_are_not_routed(
    make_engine: EngineFactory,
) -> None:
    engine, conv = await _engine(make_engine)

    def mail(
        mid: str, refs: tuple[str, ...] = (), kind: Kind = Kind.MESSAGE, **kw: object
    ) -> Inbound:
        return Inbound(
            channel="email",
            kind=kind,
            provider="smtp",
            external_id=mid,
            references=refs,
            customer=Customer(email="bo@example.com"),
            subject="Refund",
            text="text of " + mid,
            **kw,  # type: ignore[arg-type]
        )

    first = await conv.receive(mail("m1@x"))
    reply = await conv.receive(mail("m2@x", ("m1@x",)))
    assert first.status == 201 and (reply.status, reply.contact_id) == (200, first.contact_id)
    deeper = await conv.receive(mail("m3@x", ("m2@x",)))  # replies to the reply
    assert deeper.contact_id == first.contact_id
    bounce = await conv.receive(
        mail(
            "b1@mta",
            ("m1@x",),
            Kind.IGNORED,
            reason="bounce",
            attachments=(Attachment("details.txt", "text/plain", 12),),
        )
    )
    assert (bounce.status, bounce.reason, bounce.contact_id) == (202, "bounce", first.contact_id)
    auto = await conv.receive(mail("o1@x", (), Kind.IGNORED, reason="auto_reply"))
    assert (auto.status, auto.contact_id) == (202, None)
    assert await engine.ignored_counts() == {"email:bounce": 1, "email:auto_reply": 1}
    assert first.contact_id is not None
    kinds = [e["kind"] for e in await engine.timeline(first.contact_id)]
    assert kinds == ["ignored", "message", "message"]
    # a provider retry of the first message is not a second contact
    again = await conv.receive(mail("m1@x"))
    assert again.contact_id == first.contact_id and again.status in (200, 201)


async def test_the_assigned_event_carries_the_call_sid(make_engine: EngineFactory) -> None:
    engine, conv = await _engine(make_engine)
    await engine.upsert_agent(agent("a1"), AgentStatus.AVAILABLE)
    call = Inbound(
        channel="voice", kind=Kind.MESSAGE, provider="twilio", external_id="CA9", thread_key="CA9"
    )
    out = await conv.receive(call)
    assert out.contact_id is not None and out.state == "reserved"
    await engine.accept(out.contact_id, "a1")
    events = await engine.redis.xrange(engine.keys.events)
    assigned = [f for _, f in events if f[b"type"] == b"contact.assigned"]
    assert len(assigned) == 1 and assigned[0][b"external_id"] == b"CA9"
