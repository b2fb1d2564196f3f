"""The service level follows the queue's main SLA clock: on a first-response queue
(timed, no live channel) T is `first_response_s` and "within T" is the first
response (contact.responded, or the completion without one), not the assignment."""

from __future__ import annotations

import json

from router.clock import VirtualClock
from router.config.loader import load_config_text
from router.config.model import SlaKind
from router.engine import Engine
from router.metrics import definitions as d
from router.metrics.consumer import drain
from router.metrics.query import snapshot
from router.model import AgentStatus, NewContact

from ..conftest import EngineFactory
from ..factories import agent, tenant_toml
from .conftest import T0

BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }
transfer_wait_s = 20

[pools.inhouse]
kind = "inhouse"

[queues.mail]
channel = "email"
pools = ["inhouse"]

[queues.mail.sla]
threshold_s = 20
target = 0.9
first_response_s = 600

[queues.plain_mail]
channel = "email"
pools = ["inhouse"]

[queues.mixed]
channels = ["voice", "email"]
pools = ["inhouse"]
sla = { threshold_s = 30, target = 0.8, first_response_s = 900 }

[queues.mail_no_fr]
channel = "email"
pools = ["inhouse"]
sla = { threshold_s = 120, target = 0.8 }
"""

MIN = 60_000


async def test_first_response_queue_counts_responses_within_its_first_response_time(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse", skills={}, capacity={"email": 4}))
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    ids = []
    for i in range(4):  # m1..m4 arrive a second apart; ana takes each at once (wait 0)
        clock.set_ms(T0 + i * 1000)
        cid = (await e.create_contact(NewContact(channel="email", queue="mail"))).contact_id
        await e.accept(cid, "ana")
        ids.append(cid)
    m1, m2, m3, _m4 = ids
    clock.set_ms(T0 + 5 * MIN)
    await e.respond(m1, "ana")  # 5 min: within 10 min
    clock.set_ms(T0 + 8 * MIN)
    await e.complete(m3, "ana", skip_wrap_up=True)  # no reply recorded: 8 min, within
    clock.set_ms(T0 + 12 * MIN)
    await e.respond(m2, "ana")  # 12 min: late
    await e.complete(m1, "ana", skip_wrap_up=True)  # responded before: not counted again
    clock.set_ms(T0 + 13 * MIN)  # m4: assigned, no reply yet
    await drain(e)
    mail = (await snapshot(e))["queues"]["mail"]
    assert (mail["offered"], mail["answered"], mail["asa_s"]) == (4, 4, 0.0)
    # 2 first responses within 600 s (m1, m3) / 4 offered; the assignments (all at
    # once) do not count: against 20 s they would all be within
    assert mail["service_level"] == {"threshold_s": 600.0, "value": 0.5}
    pool = (await snapshot(e))["pools"]["inhouse"]
    assert pool["service_level"] == {"threshold_s": None, "value": 0.5}


async def test_answer_queues_keep_counting_the_assignment(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse", skills={}, capacity={"email": 4}))
    c = (await e.create_contact(NewContact(channel="email", queue="plain_mail"))).contact_id
    clock.set_ms(T0 + 10_000)
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    await e.accept(c, "ana")
    clock.set_ms(T0 + 60_000)
    await e.respond(c, "ana")  # a queue without an sla table: the answer clock
    await drain(e)
    plain = (await snapshot(e))["queues"]["plain_mail"]
    assert plain["service_level"] == {"threshold_s": 20.0, "value": 1.0}


def test_the_service_clock_of_a_queue() -> None:
    t = load_config_text(tenant_toml("fr", BODY), "<test>").tenants["fr"]
    assert d.service_clock(t.queues["mail"]) == (SlaKind.FIRST_RESPONSE, 600.0)
    assert d.service_clock(t.queues["plain_mail"]) == (SlaKind.ANSWER, 20.0)  # no sla table
    assert d.service_clock(t.queues["mixed"]) == (SlaKind.ANSWER, 30.0)  # serves voice
    assert d.service_clock(t.queues["mail_no_fr"]) == (SlaKind.FIRST_RESPONSE, 120.0)


async def _mail_contact(e: Engine) -> str:
    await e.upsert_agent(agent("ana", "inhouse", skills={}, capacity={"email": 4}))
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    cid = (await e.create_contact(NewContact(channel="email", queue="mail"))).contact_id
    await e.accept(cid, "ana")
    return cid


async def _reopen(e: Engine, cid: str, clock: VirtualClock) -> None:
    entry = json.dumps({"at": clock.now_ms(), "kind": "message", "text": "and one more thing"})
    outcome, _ = await e.message(cid, "message", entry, 86_400_000, 50)
    assert outcome == "reopened"


async def _within(e: Engine) -> int:
    return int(await e.redis.hget(e.keys.prefix + "m:tot", "q:mail:ans_t") or 0)


async def test_a_reopen_before_the_consumer_runs_does_not_count_a_response_twice(
    make_engine: EngineFactory,
) -> None:
    """Respond, complete, reopen, and only then count: the completion had a response
    (the event says so), though the reopen cleared the contact's own record of it."""
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    cid = await _mail_contact(e)
    clock.set_ms(T0 + MIN)
    await e.respond(cid, "ana")  # within 10 min: counted once
    await e.complete(cid, "ana", skip_wrap_up=True)
    clock.set_ms(T0 + 2 * MIN)
    await _reopen(e, cid, clock)
    await drain(e)
    assert await _within(e) == 1


async def test_a_completion_without_response_counts_though_a_late_reply_came_after_a_reopen(
    make_engine: EngineFactory,
) -> None:
    """Complete in time without a reply, reopen, reply late, and only then count: the
    first wait's completion is its first response, in time; the late reply is not."""
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    cid = await _mail_contact(e)
    clock.set_ms(T0 + MIN)
    await e.complete(cid, "ana", skip_wrap_up=True)  # 1 min: within 10 min
    clock.set_ms(T0 + 2 * MIN)
    await _reopen(e, cid, clock)
    if (await e.get_contact(cid)).state.value == "reserved":
        await e.accept(cid, "ana")
    clock.set_ms(T0 + 30 * MIN)
    await e.respond(cid, "ana")  # 28 min after the reopen: late
    await drain(e)
    assert await _within(e) == 1
    done = [f for _, f in await e.redis.xrange(e.keys.events) if f[b"type"] == b"contact.completed"]
    assert [f[b"responded"] for f in done] == [b"0"]


async def test_a_completion_event_without_the_responded_field_reads_the_contact(
    make_engine: EngineFactory,
) -> None:
    """Events stored by an older version, without `responded`: the contact's hash
    decides, as before (completed without a response within T: counted)."""
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    cid = await _mail_contact(e)
    fields = {"v": "1", "type": "contact.completed", "at": T0 + MIN, "contact": cid}
    fields |= {"queue": "mail", "channel": "email", "stage": 0, "priority": 0, "created": T0}
    fields |= {"agent": "ana", "pool": "inhouse", "handle_ms": MIN}
    await e.redis.xadd(e.keys.events, fields)  # type: ignore[arg-type]
    await drain(e)
    assert await _within(e) == 1
