"""Queue hours: outside them a new contact waits for the opening, overflows, or is refused."""

from __future__ import annotations

import pytest

from router.clock import VirtualClock
from router.engine import Engine
from router.errors import QueueClosed
from router.model import AgentStatus, ContactState, NewContact
from router.sla import SlaStatus, sla_of

from ..conftest import EngineFactory
from ..factories import agent
from .sla_common import MONDAY_10, H, typed
from .test_transitions import fails_cleanly

BODY = """
[routing]
presence_timeout_s = 0
max_missed_offers = 0

[pools.inhouse]

[pools.vendor]
kind = "outsourced"
vendor = "follow-the-sun"
location = "offshore"

[vendors.follow-the-sun]
name = "Follow the Sun"
location = "offshore"

[calendars.office]
timezone = "Europe/Madrid"
hours = { mon = ["09:00-18:00"], tue = ["09:00-18:00"], wed = ["09:00-18:00"], thu = ["09:00-18:00"], fri = ["09:00-18:00"] }

[queues.email]
channel = "email"
pools = ["inhouse"]
offer_timeout_s = 1000
hours = "office"
when_closed = "wait"

[queues.email.sla]
first_response_s = 3600

[[queues.email.overflow]]
after_s = 600
pools = ["vendor"]

[queues.voice]
channel = "voice"
pools = ["inhouse"]
hours = "office"
when_closed = "overflow"
closed_queue = "voice_247"

[queues.voice_247]
channel = "voice"
pools = ["vendor"]

[queues.chat]
channel = "chat"
pools = ["inhouse"]
hours = "office"
when_closed = "refuse"

[queues.other]
channel = "email"
pools = ["vendor"]
"""

SATURDAY_NOON = MONDAY_10 + 5 * 24 * H + H  # Saturday 28 November 2026, 12:00 Madrid
NEXT_MONDAY_9 = MONDAY_10 + 7 * 24 * H - 2 * H  # 09:00 Madrid = 08:00 UTC


async def test_wait_holds_until_the_opening(make_engine: EngineFactory) -> None:
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.upsert_agent(agent("a1", capacity={"email": 2}), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    assert (r.state, r.agent, r.position, r.estimated_wait_s) == (
        ContactState.QUEUED,
        None,
        None,
        None,
    )
    assert await eng.redis.zscore(eng.keys.held("email"), "e1") == NEXT_MONDAY_9
    (queued,) = await typed(eng, "contact.queued")
    assert queued["held_until"] == str(NEXT_MONDAY_9)
    # its first-response clock counts from the opening
    assert (await eng.get_contact("e1")).sla_clocks["f"][0] == NEXT_MONDAY_9 + H
    # an agent signing in while closed does not get it
    await eng.set_agent_status("a1", "away")
    await eng.set_agent_status("a1", "available")
    assert (await eng.get_contact("e1")).state is ContactState.QUEUED
    clock.set_ms(NEXT_MONDAY_9 - 1)
    await eng.run_due_timers()
    assert await typed(eng, "contact.released") == []
    clock.advance(0.001)
    await eng.run_due_timers()
    c = await eng.get_contact("e1")
    assert (c.state, c.agent) == (ContactState.RESERVED, "a1")
    (rel,) = await typed(eng, "contact.released")
    assert (rel["reason"], rel["held_ms"]) == ("queue_opened", str(NEXT_MONDAY_9 - SATURDAY_NOON))
    assert await eng.redis.zcard(eng.keys.held("email")) == 0
    # the overflow stage counts from the opening too, not from the arrival
    assert await eng.redis.zscore(eng.keys.timers, "s|e1") == NEXT_MONDAY_9 + 600_000


async def test_open_queue_takes_contacts_at_once(make_engine: EngineFactory) -> None:
    clock = VirtualClock(MONDAY_10)
    eng = await make_engine(BODY, clock)
    r = await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    assert r.position == 1
    assert await eng.redis.zcard(eng.keys.held("email")) == 0
    assert (await eng.get_contact("e1")).sla_clocks["f"][0] == MONDAY_10 + H


async def test_held_contact_can_be_abandoned_or_transferred(make_engine: EngineFactory) -> None:
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    await eng.create_contact(NewContact(channel="email", queue="email", id="e2"))
    await eng.abandon("e1")
    assert (await eng.get_contact("e1")).state is ContactState.ABANDONED
    await eng.upsert_agent(agent("v1", "vendor", capacity={"email": 1}), AgentStatus.AVAILABLE)
    r = await eng.transfer("e2", queue="other")
    assert (r.state, r.agent, r.queue) == (ContactState.RESERVED, "v1", "other")
    assert await eng.redis.zcard(eng.keys.held("email")) == 0
    await eng.accept("e2", "v1")
    clock.set_ms(NEXT_MONDAY_9 + 1)
    await eng.run_due_timers()  # the opening timer finds nothing to release
    assert await typed(eng, "contact.released") == []
    c = await eng.get_contact("e2")
    assert (c.state, c.agent, c.queue) == (ContactState.ASSIGNED, "v1", "other")


async def test_overflow_goes_to_the_closed_queue(make_engine: EngineFactory) -> None:
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.upsert_agent(agent("v1", "vendor", capacity={"voice": 1}), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice", id="v1c"))
    assert (r.queue, r.agent) == ("voice_247", "v1")
    (received,) = await typed(eng, "contact.received")
    assert (received["queue"], received["requested_queue"]) == ("voice_247", "voice")
    clock.set_ms(NEXT_MONDAY_9)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice", id="v2c"))
    assert r.queue == "voice"


async def test_refuse_writes_nothing(make_engine: EngineFactory) -> None:
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    err = await fails_cleanly(
        eng, QueueClosed, eng.create_contact, NewContact(channel="chat", queue="chat", id="c1")
    )
    assert err.details["reason"] == "queue_closed"
    assert err.details["opens_at_ms"] == NEXT_MONDAY_9
    assert err.details["opens_at"] == "2026-11-30T08:00:00.000Z"
    with pytest.raises(QueueClosed):
        await eng.create_contact(NewContact(channel="chat", queue="chat", id="c1"))


async def test_idempotent_retry_after_closing_gets_the_first_contact(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(NEXT_MONDAY_9 - 7 * 24 * H + H)  # Monday 23 November, open
    eng = await make_engine(BODY, clock)
    new = NewContact(channel="chat", queue="chat", id="c1", idempotency_key="k1")
    first = await eng.create_contact(new)
    assert not first.duplicate
    clock.set_ms(SATURDAY_NOON)
    again = await eng.create_contact(new)
    assert (again.duplicate, again.contact_id) == (True, "c1")
    with pytest.raises(QueueClosed):
        await eng.create_contact(NewContact(channel="chat", queue="chat", idempotency_key="k2"))


async def test_supervisor_cannot_offer_a_held_contact(make_engine: EngineFactory) -> None:
    """A push of a held contact would bypass the queue's hours: refused (409) with
    the opening; nothing changes, and the opening still releases it."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    await eng.upsert_agent(agent("a1", capacity={"email": 1}), AgentStatus.AVAILABLE)
    err = await fails_cleanly(eng, QueueClosed, eng.offer, "e1", "a1")
    assert err.http_status == 409
    assert err.details == {
        "reason": "queue_closed",
        "queue": "email",
        "contact": "e1",
        "opens_at": "2026-11-30T08:00:00.000Z",
        "opens_at_ms": NEXT_MONDAY_9,
    }
    assert "held until queue 'email' opens at 2026-11-30T08:00:00.000Z" in err.message
    clock.set_ms(NEXT_MONDAY_9)
    await eng.run_due_timers()
    c = await eng.get_contact("e1")
    assert (c.state, c.agent) == (ContactState.RESERVED, "a1")


async def test_held_time_is_not_waiting_time(make_engine: EngineFactory) -> None:
    """A held contact's wait starts at the opening: `created` becomes the release
    time (the arrival is kept in `arrived`), so wait_ms, response_ms, the SLA view
    and a later event's `created` ignore the night it was held."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.upsert_agent(agent("a1", capacity={"email": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    clock.set_ms(NEXT_MONDAY_9)
    await eng.run_due_timers()
    (rel,) = await typed(eng, "contact.released")
    assert (rel["created"], rel["arrived"], rel["held_ms"]) == (
        str(NEXT_MONDAY_9),
        str(SATURDAY_NOON),
        str(NEXT_MONDAY_9 - SATURDAY_NOON),
    )
    (reserved,) = await typed(eng, "contact.reserved")
    assert reserved["wait_ms"] == "0"
    clock.advance(30)
    await eng.accept("e1", "a1")
    (assigned,) = await typed(eng, "contact.assigned")
    assert (assigned["wait_ms"], assigned["created"]) == ("30000", str(NEXT_MONDAY_9))
    clock.advance(60)
    await eng.respond("e1", "a1")
    (responded,) = await typed(eng, "contact.responded")
    assert responded["response_ms"] == "90000"
    c = await eng.get_contact("e1")
    assert (c.created_ms, c.arrived_ms) == (NEXT_MONDAY_9, SATURDAY_NOON)
    view = sla_of(c, eng.tenant.queues["email"], clock.now_ms())
    assert (view.status, view.answered_in_ms) == (SlaStatus.MET, 90_000)


async def test_held_contact_leaving_the_hold_waits_from_then(make_engine: EngineFactory) -> None:
    """Abandoned while held: it never waited (wait_ms 0). Transferred out of the
    hold at night: its wait starts at the transfer."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    await eng.create_contact(NewContact(channel="email", queue="email", id="e2"))
    clock.advance(3600)
    await eng.abandon("e1")
    (ab,) = await typed(eng, "contact.abandoned")
    assert ab["wait_ms"] == "0"
    await eng.transfer("e2", queue="other")
    (tr,) = await typed(eng, "contact.transferred")
    assert (tr["wait_ms"], tr["created"]) == ("0", str(SATURDAY_NOON + 3_600_000))
    c = await eng.get_contact("e2")
    assert (c.created_ms, c.arrived_ms) == (SATURDAY_NOON + 3_600_000, SATURDAY_NOON)
    # an ordinary contact has no separate arrival
    assert (await eng.get_contact("e1")).arrived_ms is None


RAISE_BODY = """
[routing]
presence_timeout_s = 0
max_missed_offers = 0

[pools.inhouse]

[calendars.office]
timezone = "Europe/Madrid"
hours = { mon = ["09:00-18:00"], tue = ["09:00-18:00"], wed = ["09:00-18:00"], thu = ["09:00-18:00"], fri = ["09:00-18:00"] }

[queues.email]
channel = "email"
pools = ["inhouse"]
hours = "office"
when_closed = "wait"

[queues.email.sla]
first_response_s = 3600

[[queues.email.sla.priority]]
min = 2
first_response_s = 600

[[queues.email.sla.escalation]]
on = "warning"
action = "raise_priority"
by = 1

[queues.other]
channel = "email"
pools = ["inhouse"]
"""


async def _line(eng: Engine, queue: str) -> list[tuple[str, int]]:
    key = eng.keys.waiting(queue, "email", 0)
    return [(m.decode(), int(s)) for m, s in await eng.redis.zrange(key, 0, -1, withscores=True)]


async def test_a_released_contact_keeps_its_arrival_in_line_after_a_raise(
    make_engine: EngineFactory,
) -> None:
    """W (priority 2, held since Saturday noon) is ahead of X (priority 0, held since
    13:00) at the opening; W's warning raises its priority, which must not send it
    behind X: its score still counts from its arrival, not from the release."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(RAISE_BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="W", priority=2))
    clock.set_ms(SATURDAY_NOON + H)
    await eng.create_contact(NewContact(channel="email", queue="email", id="X", priority=0))
    clock.set_ms(NEXT_MONDAY_9)
    await eng.run_due_timers()
    aging = 60_000
    assert await _line(eng, "email") == [
        ("W", SATURDAY_NOON - 2 * aging),
        ("X", SATURDAY_NOON + H),
    ]
    clock.set_ms(NEXT_MONDAY_9 + 481_000)  # W's warning: 0.8 x 600 s after the release
    await eng.run_due_timers()
    (esc,) = await typed(eng, "contact.escalated")
    assert (esc["contact"], esc["priority"]) == ("W", "3")
    assert await _line(eng, "email") == [
        ("W", SATURDAY_NOON - 3 * aging),
        ("X", SATURDAY_NOON + H),
    ]
    # its wait still counts from the release
    assert (await eng.get_contact("W")).created_ms == NEXT_MONDAY_9


async def test_a_released_contact_transferred_keeps_its_arrival_in_line(
    make_engine: EngineFactory,
) -> None:
    """Released at the opening, then transferred: the new queue orders it by its
    arrival too, ahead of a contact that arrived there after it."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(RAISE_BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    clock.set_ms(NEXT_MONDAY_9)
    await eng.run_due_timers()
    clock.advance(60)
    await eng.create_contact(NewContact(channel="email", queue="other", id="o1"))
    await eng.transfer("e1", queue="other")
    assert await _line(eng, "other") == [("e1", SATURDAY_NOON), ("o1", NEXT_MONDAY_9 + 60_000)]


async def test_the_held_count_includes_contacts_held_in_sub_queues(
    make_engine: EngineFactory,
) -> None:
    """A contact with skill requirements beyond its queue's is held in its sub-queue's
    hold set; the queue's `held` gauge counts it, like `waiting` counts sub-queues."""
    clock = VirtualClock(SATURDAY_NOON)
    eng = await make_engine(BODY, clock)
    await eng.create_contact(NewContact(channel="email", queue="email", id="e1"))
    await eng.create_contact(
        NewContact(channel="email", queue="email", id="e2", skills={"spanish": 3})
    )
    assert (await eng.redis.hget(eng.keys.contact("e2"), "place") or b"").startswith(b"hold:email~")
    live = await eng.queue_snapshot("email")
    assert (live["waiting"], live["held"]) == (0, 2)
