"""SLA escalation actions, applied by the timers script when a clock warns or breaches."""

from __future__ import annotations

from router.clock import VirtualClock
from router.model import AgentStatus, ContactState

from ..conftest import EngineFactory
from ..factories import agent
from .sla_common import BASE, SLA_EVENTS, chat, typed

BODY = (
    BASE
    + """

[queues.chat]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 1000
aging_s = 60

[[queues.chat.overflow]]
after_s = 600
pools = ["near"]

[queues.chat.sla]
threshold_s = 20

[[queues.chat.sla.priority]]
min = 1
threshold_s = 5000
{escalation}

[queues.urgent]
channel = "chat"
pools = ["near"]
offer_timeout_s = 1000
"""
)


def body(*escalations: str) -> str:
    tables = "".join(f"\n[[queues.chat.sla.escalation]]\n{e}\n" for e in escalations)
    return BODY.replace("{escalation}", tables)


async def test_raise_priority_rescores_the_waiting_contact(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(body('on = "warning"\naction = "raise_priority"\nby = 2'), clock)
    t0 = clock.now_ms()
    await eng.create_contact(chat(id="late"))  # priority 0: 20 s target
    await eng.create_contact(chat(id="vip", priority=1))  # 5000 s: no warning soon
    w = eng.keys.waiting("chat", "chat", 0)
    assert [m.decode() for m in await eng.redis.zrange(w, 0, -1)] == ["vip", "late"]
    clock.advance(16)  # warning of "late" at 80 % of 20 s
    await eng.run_due_timers()
    assert [m.decode() for m in await eng.redis.zrange(w, 0, -1)] == ["late", "vip"]
    assert await eng.redis.zscore(w, "late") == t0 - 2 * 60_000
    assert (await eng.get_contact("late")).priority == 2
    evs = await typed(eng, "contact.escalated")
    assert [
        (e["contact"], e["action"], e["sla"], e["level"], e["to"], e["webhook"]) for e in evs
    ] == [("late", "raise_priority", "answer", "warning", "2", "")]
    assert evs[0]["priority"] == "2"  # the event shows the raised priority
    # the first free agent takes the escalated contact
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    assert (await eng.get_contact("late")).agent == "a1"


async def test_next_stage_opens_the_vendor_at_once(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(body('on = "breach"\naction = "next_stage"'), clock)
    await eng.upsert_agent(agent("v1", "near", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(chat(id="c1"))
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED  # in-house only
    clock.advance(20)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert (c.state, c.agent, c.stage) == (ContactState.RESERVED, "v1", 1)
    types = [
        e["type"]
        for e in await typed(
            eng, *SLA_EVENTS, "contact.escalated", "contact.stage_advanced", "contact.reserved"
        )
    ]
    assert types == [
        "sla.warning",
        "sla.breached",
        "contact.escalated",
        "contact.stage_advanced",
        "contact.reserved",
    ]
    (adv,) = await typed(eng, "contact.stage_advanced")
    assert adv["reason"] == "escalation" and adv["from_stage"] == "0"
    # the regular stage timer finds nothing more to do
    clock.advance(600)
    await eng.run_due_timers()
    assert len(await typed(eng, "contact.stage_advanced")) == 1


async def test_move_queue_transfers_to_the_escalation_queue(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(body('on = "breach"\naction = "move_queue"\nqueue = "urgent"'), clock)
    t0 = clock.now_ms()
    await eng.upsert_agent(agent("v1", "near", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(chat(id="c1"))
    clock.advance(20)
    await eng.run_due_timers()
    c = await eng.get_contact("c1")
    assert (c.queue, c.state, c.agent, c.created_ms) == ("urgent", ContactState.RESERVED, "v1", t0)
    (moved,) = await typed(eng, "contact.transferred")
    assert (moved["from_queue"], moved["queue"], moved["reason"]) == (
        "chat",
        "urgent",
        "escalation",
    )
    (esc,) = await typed(eng, "contact.escalated")
    assert (esc["action"], esc["to"], esc["queue"]) == ("move_queue", "urgent", "chat")
    # abandoning it afterwards works as for any contact
    await eng.abandon("c1")
    assert (await eng.get_contact("c1")).state is ContactState.ABANDONED


async def test_notify_only_emits_the_event(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(
        body(
            'on = "warning"\naction = "notify"\nwebhook = "ops-pager"',
            'on = "breach"\nsla = "resolution"\naction = "notify"\nwebhook = "never"',
        ).replace("threshold_s = 20\n", "threshold_s = 20\nresolution_s = 100000\n", 1),
        clock,
    )
    await eng.create_contact(chat(id="c1"))
    clock.advance(30)
    await eng.run_due_timers()
    (esc,) = await typed(eng, "contact.escalated")
    assert (esc["action"], esc["webhook"], esc["level"], esc["sla"]) == (
        "notify",
        "ops-pager",
        "warning",
        "answer",
    )
    assert (await eng.get_contact("c1")).state is ContactState.QUEUED


async def test_no_escalation_once_answered(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(body('on = "breach"\naction = "move_queue"\nqueue = "urgent"'), clock)
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.create_contact(chat(id="c1"))
    await eng.accept("c1", "a1")
    clock.advance(60)
    await eng.run_due_timers()
    assert await typed(eng, *SLA_EVENTS, "contact.escalated") == []
    assert (await eng.get_contact("c1")).queue == "chat"


async def test_reopen_uses_the_arrival_priority(make_engine: EngineFactory) -> None:
    """A raise_priority escalation does not change the targets of a reopened
    conversation: it arrives again with its arrival priority (0: 20 s, not the
    5000 s of priority >= 1), and that priority is restored for routing."""
    clock = VirtualClock()
    eng = await make_engine(body('on = "warning"\naction = "raise_priority"\nby = 2'), clock)
    await eng.create_contact(chat(id="c1"))
    clock.advance(16)
    await eng.run_due_timers()
    assert (await eng.get_contact("c1")).priority == 2
    await eng.upsert_agent(agent("a1", capacity={"chat": 1}), AgentStatus.AVAILABLE)
    await eng.accept("c1", "a1")
    await eng.complete("c1", "a1")
    await eng.set_agent_status("a1", "away")
    clock.advance(10)
    t1 = clock.now_ms()
    outcome, _ = await eng.message("c1", "message", '{"kind": "message"}', 3_600_000, 10)
    assert outcome == "reopened"
    c = await eng.get_contact("c1")
    assert c.priority == 0
    assert c.sla_clocks["a"][:2] == (t1 + 20_000, 20_000)
