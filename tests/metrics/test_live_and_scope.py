"""Live figures and scope: the longest wait behind higher priorities, held contacts,
Prometheus counters that never go down, and what a vendor's supervisor sees of
the alerts."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from router.api.metrics import exposition
from router.clock import VirtualClock
from router.engine import Engine
from router.metrics.consumer import drain
from router.metrics.query import Scope, snapshot
from router.model import AgentStatus, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from .conftest import METRICS_BODY, T0

# T0 is a Tuesday, 23:15 in Madrid: the office is closed
HELD_BODY = (
    METRICS_BODY
    + """
[calendars.office]
timezone = "Europe/Madrid"
hours = { mon = ["09:00-17:00"] }

[queues.mail]
channel = "email"
pools = ["inhouse"]
hours = "office"
when_closed = "wait"

[queues.tiered]
channel = "voice"
pools = ["inhouse"]

[[queues.tiered.overflow]]
after_s = 30
pools = ["near"]
"""
)


async def test_longest_wait_finds_an_older_contact_behind_a_higher_priority_one(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.create_contact(NewContact(channel="voice", queue="sales", priority=0))
    clock.advance(10)
    # priority 5 x 60 s aging: scored 290 s ahead of the older contact, so it is the head
    await e.create_contact(NewContact(channel="voice", queue="sales", priority=5))
    clock.set_ms(T0 + 100_000)
    live = await e.queue_snapshot("sales")
    assert live["waiting"] == 2
    assert live["longest_wait_s"] == 100.0  # the priority-0 contact, not the head's 90


async def test_held_contacts_are_counted_apart_from_waiting(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(HELD_BODY, clock)
    await e.create_contact(NewContact(channel="email", queue="mail"))
    clock.advance(60)
    live = await e.queue_snapshot("mail")
    assert (live["waiting"], live["held"], live["longest_wait_s"]) == (0, 1, None)
    m = (await snapshot(e))["queues"]["mail"]
    assert (m["waiting"], m["held"]) == (0, 1)


def _value(text: bytes, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


async def test_available_seconds_never_goes_down_between_scrapes(
    make_engine: EngineFactory,
) -> None:
    """The counter has ended spans only: the open one is not added at scrape time
    (it would be cut back once the consumer sees the agent leave `available`)."""
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse"))
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    await drain(e)
    name = "switchboard_pool_available_seconds_total"
    seen = [_value(await exposition(e, Scope()), name, pool="inhouse")]
    clock.set_ms(T0 + 100_000)
    await e.set_agent_status("ana", AgentStatus.AWAY)  # not yet consumed
    clock.set_ms(T0 + 200_000)
    text = await exposition(e, Scope())
    seen.append(_value(text, name, pool="inhouse"))
    assert _value(text, "switchboard_pool_agents", pool="inhouse", status="away") == 1
    await drain(e)
    seen.append(_value(await exposition(e, Scope()), name, pool="inhouse"))
    assert seen == sorted(seen), seen
    assert seen[-1] == 100.0


async def _alert(e: Engine, kind: str, contact: str, queue: str, stage: int) -> None:
    """The event as the SLA timers write it (docs/events.md)."""
    fields: dict[str, str | int] = {"v": "1", "type": kind, "at": T0, "contact": contact}
    fields |= {"queue": queue, "channel": "voice", "stage": stage, "priority": 0}
    fields |= {"sla": "answer", "due": T0, "target_ms": 1, "wait_ms": 1}
    await e.redis.xadd(e.keys.events, fields)  # type: ignore[arg-type]


async def test_a_vendor_supervisor_sees_alert_contacts_only_where_its_pool_was_eligible(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(HELD_BODY, clock)
    await _alert(e, "sla.warning", "t0", "tiered", 0)  # in-house only at stage 0
    await _alert(e, "sla.breached", "t1", "tiered", 1)  # near joined at stage 1
    await _alert(e, "sla.breached", "s0", "sales", 0)  # a queue near never serves
    await drain(e)
    # an alert stored by an older version, without its stage
    old = {"type": "sla.breached", "contact": "old", "queue": "tiered", "sla": "answer", "at": T0}
    await e.redis.lpush(e.keys.metrics_alerts, json.dumps(old))
    everything = (await snapshot(e))["alerts"]
    assert [a["contact"] for a in everything] == ["old", "s0", "t1", "t0"]
    near = (await snapshot(e, "15m", Scope("near")))["alerts"]
    assert [(a["queue"], a["contact"]) for a in near] == [
        ("tiered", None),
        ("tiered", "t1"),
        ("tiered", None),
    ]
    assert all(set(a) == {"type", "contact", "queue", "sla", "at"} for a in near)
