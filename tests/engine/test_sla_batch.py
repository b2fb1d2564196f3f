"""Timers of one batch acting on the same contact: an escalation that reschedules a
contact's stage or offer timer must not have that new timer removed (and the old
one applied) by a member of the same contact read earlier in the batch."""

from __future__ import annotations

from router.clock import VirtualClock
from router.model import AgentStatus, ContactState

from ..conftest import EngineFactory
from ..factories import agent
from .sla_common import BASE, chat, typed

BODY = (
    BASE
    + """

[pools.far]
kind = "outsourced"
vendor = "far-co"
location = "offshore"

[vendors.far-co]
name = "Far Co"
location = "offshore"

[queues.chat]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 20

[[queues.chat.overflow]]
after_s = 30
pools = ["near"]

[[queues.chat.overflow]]
after_s = 600
pools = ["far"]

[queues.chat.sla]
threshold_s = {threshold}

[[queues.chat.sla.escalation]]
on = "breach"
{action}

[queues.urgent]
channel = "chat"
pools = ["near"]
offer_timeout_s = 20
"""
)


def body(threshold: int, action: str) -> str:
    return BODY.replace("{threshold}", str(threshold)).replace("{action}", action)


async def test_next_stage_and_stage_timer_due_together(make_engine: EngineFactory) -> None:
    """The breach opens stage 1 and schedules stage 2 at 600 s; the stage-1 timer
    read in the same batch is stale and must neither remove it nor open stage 2."""
    clock = VirtualClock()
    eng = await make_engine(body(30, 'action = "next_stage"'), clock)
    t0 = clock.now_ms()
    await eng.create_contact(chat(id="c1"))
    clock.advance(30)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert (c.state, c.stage) == (ContactState.QUEUED, 1)
    assert await eng.redis.zscore(eng.keys.timers, "s|c1") == t0 + 600_000
    advanced = await typed(eng, "contact.stage_advanced")
    assert [(e["from_stage"], e["reason"]) for e in advanced] == [("0", "escalation")]
    # the stage-2 timer still fires on time
    clock.set_ms(t0 + 600_000)
    await eng.run_due_timers()
    assert (await eng.get_contact("c1")).stage == 2


async def test_move_queue_of_a_reserved_contact_keeps_its_new_offer_timer(
    make_engine: EngineFactory,
) -> None:
    """The breach moves a reserved contact whose offer times out at the same moment:
    it is offered in the new queue, and that offer must keep its deadline timer."""
    clock = VirtualClock()
    eng = await make_engine(body(20, 'action = "move_queue"\nqueue = "urgent"'), clock)
    t0 = clock.now_ms()
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("v1", "near", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(chat(id="c1"))
    assert (await eng.get_contact("c1")).agent == "a1"
    clock.advance(20)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert (c.queue, c.state, c.agent) == ("urgent", ContactState.RESERVED, "v1")
    assert await eng.redis.zscore(eng.keys.timers, "o|c1") == t0 + 40_000
    # the new offer expires like any other: the contact is not lost
    clock.advance(20)
    await eng.run_due_timers()
    expired = await typed(eng, "contact.reservation_expired")
    assert [(e["agent"], e["queue"]) for e in expired] == [("v1", "urgent")]
    c = await eng.get_contact("c1")
    assert (c.state, c.agent) == (ContactState.QUEUED, None)
