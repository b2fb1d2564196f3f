"""Vendor scorecards against hand-computed figures: traffic through the Engine in
virtual time, counted by the metrics consumer, read back per vendor (a vendor
with two pools and a per-minute price, one with a per-contact price, one idle,
and an empty period)."""

from __future__ import annotations

from datetime import UTC, datetime

from router.clock import VirtualClock
from router.engine import Engine
from router.metrics.consumer import drain
from router.model import AgentStatus, ContactState, NewContact
from router.scorecard import local_days, month_bounds, scorecard

from .conftest import EngineFactory
from .factories import agent

BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }
cost_currency = "EUR"
exchange_rates = { USD = 0.9 }

[pools.inhouse]
kind = "inhouse"

[pools.ta]
kind = "outsourced"
vendor = "two-co"

[pools.tb]
kind = "outsourced"
vendor = "two-co"

[pools.pc1]
kind = "outsourced"
vendor = "pc-co"

[pools.e1]
kind = "outsourced"
vendor = "idle-co"

[vendors.two-co]
name = "Two Co"
location = "nearshore"
timezone = "America/Costa_Rica"
max_per_day = 10
min_per_day = 2
price_per_minute = 0.5
currency = "USD"
sla_target = 0.8

[vendors.pc-co]
location = "offshore"
min_per_month = 100
price_per_contact = 2.0
sla_target = 0.9

[vendors.idle-co]
location = "onshore"
price_per_contact = 1.0

[queues.q1]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 300
sla = { threshold_s = 40, target = 0.8 }

[[queues.q1.overflow]]
after_s = 30
pools = ["ta", "tb"]

[queues.q2]
channel = "chat"
pools = ["pc1"]
offer_timeout_s = 300
sla = { threshold_s = 30, target = 0.9 }
"""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


T0 = _ms("2026-11-10T09:00:00-06:00")  # a Tuesday morning in Costa Rica
DAY = (_ms("2026-11-10T00:00:00-06:00"), _ms("2026-11-11T00:00:00-06:00"))


async def _at(e: Engine, clock: VirtualClock, seconds: int) -> None:
    """Move to T0 + seconds and apply what fell due (stages, SLA clocks)."""
    clock.set_ms(T0 + seconds * 1000)
    await e.run_due_timers()


async def _state(e: Engine, cid: str) -> tuple[ContactState, str | None]:
    c = await e.get_contact(cid)
    return c.state, c.agent


async def _traffic(e: Engine, clock: VirtualClock) -> None:
    for aid, pool in (("a", "ta"), ("b", "tb"), ("p", "pc1")):
        await e.upsert_agent(agent(aid, pool, skills={}, capacity={"chat": 1}))
    # c1 (q1): overflows to two-co at 30 s, answered by a at once: wait 30 s (within
    # 40 s), handled 120 s
    await e.set_agent_status("a", AgentStatus.AVAILABLE)
    c1 = (await e.create_contact(NewContact(channel="chat", queue="q1"))).contact_id
    await _at(e, clock, 30)
    assert await _state(e, c1) == (ContactState.RESERVED, "a")
    await e.accept(c1, "a")
    await e.set_agent_status("a", AgentStatus.AWAY)
    await _at(e, clock, 150)
    await e.complete(c1, "a", skip_wrap_up=True)
    # c2 (q1): offered to b at 30 s, breaches its 40 s while still on offer (at
    # stage 1: two-co's), answered at 50 s, handled 60 s
    await _at(e, clock, 200)
    await e.set_agent_status("b", AgentStatus.AVAILABLE)
    c2 = (await e.create_contact(NewContact(channel="chat", queue="q1"))).contact_id
    await _at(e, clock, 230)
    assert await _state(e, c2) == (ContactState.RESERVED, "b")
    await _at(e, clock, 240)  # warning at 32 s, breach at 40 s
    await _at(e, clock, 250)
    await e.accept(c2, "b")
    await e.set_agent_status("b", AgentStatus.AWAY)
    await _at(e, clock, 310)
    await e.complete(c2, "b", skip_wrap_up=True)
    # c3 (q1): nobody of two-co available; breached and abandoned at stage 1: two-co's
    await _at(e, clock, 400)
    c3 = (await e.create_contact(NewContact(channel="chat", queue="q1"))).contact_id
    await _at(e, clock, 440)
    await _at(e, clock, 450)
    assert (await e.get_contact(c3)).stage == 1
    await e.abandon(c3)
    # c4 (q1): abandoned at stage 0, in-house only: not two-co's
    await _at(e, clock, 500)
    c4 = (await e.create_contact(NewContact(channel="chat", queue="q1"))).contact_id
    await _at(e, clock, 510)
    await e.abandon(c4)
    # c5 (q2): answered by p after 5 s (within 30 s), handled 300 s
    await _at(e, clock, 600)
    await e.set_agent_status("p", AgentStatus.AVAILABLE)
    c5 = (await e.create_contact(NewContact(channel="chat", queue="q2"))).contact_id
    await _at(e, clock, 605)
    await e.accept(c5, "p")
    await _at(e, clock, 905)
    await e.complete(c5, "p", skip_wrap_up=True)
    # c6 (q2): breaches at 30 s while on offer to p, answered at 40 s, handled 60 s
    await _at(e, clock, 1000)
    c6 = (await e.create_contact(NewContact(channel="chat", queue="q2"))).contact_id
    assert await _state(e, c6) == (ContactState.RESERVED, "p")
    await _at(e, clock, 1030)
    await _at(e, clock, 1040)
    await e.accept(c6, "p")
    await _at(e, clock, 1100)
    await e.complete(c6, "p", skip_wrap_up=True)
    # surveys
    await e.survey(c1, csat=5, nps=10)  # promoter
    await e.survey(c2, csat=2, nps=6)  # detractor
    await e.survey(c5, csat=4, nps=8)  # passive
    assert await drain(e) > 0


async def test_scorecards_match_hand_computed_figures(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    await _traffic(e, clock)
    vendors = e.tenant.vendors

    two = await scorecard(e, vendors["two-co"], *DAY)
    assert two == {
        "vendor": "two-co",
        "name": "Two Co",
        "from": DAY[0],
        "to": DAY[1],
        "timezone": "America/Costa_Rica",
        "pools": ["ta", "tb"],
        # answered by both pools: c1 and c2; one day: cap 10, commitment 2, met
        "volume": {
            "answered": 2,
            "handled": 2,
            "days": 1,
            "cap": 10,
            "commitment": 2,
            "commitment_met": True,
        },
        # c1 within 40 s, c2 not: 1 / 2
        "service_level": {"threshold_s": None, "value": 0.5},
        "service_level_target": 0.8,
        "asa_s": 40.0,  # (30 + 50) / 2
        "aht_s": 90.0,  # (120 + 60) / 2
        "abandoned": 1,  # c3 at stage 1; c4 (stage 0, in-house only) is not two-co's
        "abandon_rate": 0.3333,  # 1 / (2 answered + 1 abandoned)
        "csat": 3.5,  # (5 + 2) / 2
        "nps": 0.0,  # (1 promoter - 1 detractor) / 2
        "cost": {"amount": 1.5, "currency": "USD"},  # 0.5 x (120 + 60) s / 60
        "sla_breaches": 2,  # c2 and c3, both at stage 1
    }

    pc = await scorecard(e, vendors["pc-co"], *DAY)
    assert pc["volume"] == {
        "answered": 2,
        "handled": 2,
        "days": 2,  # pc-co counts in UTC (the tenant's zone): the period touches two days
        "cap": None,
        "commitment": 100,  # min_per_month x 1 month
        "commitment_met": False,
    }
    assert pc["service_level"] == {"threshold_s": None, "value": 0.5}  # c5 within 30 s
    assert (pc["asa_s"], pc["aht_s"]) == (22.5, 180.0)  # (5 + 40) / 2, (300 + 60) / 2
    assert (pc["abandoned"], pc["abandon_rate"]) == (0, 0.0)
    assert (pc["csat"], pc["nps"]) == (4.0, 0.0)  # one passive
    assert pc["cost"] == {"amount": 4.0, "currency": "EUR"}  # 2.0 x 2 answered
    assert pc["sla_breaches"] == 1  # c6
    assert pc["service_level_target"] == 0.9

    idle = await scorecard(e, vendors["idle-co"], *DAY)
    assert idle["volume"]["answered"] == 0 and idle["volume"]["commitment_met"] is None
    for key in ("asa_s", "aht_s", "abandon_rate", "csat", "nps", "service_level_target"):
        assert idle[key] is None, key
    assert idle["service_level"] == {"threshold_s": None, "value": None}
    assert (idle["cost"], idle["sla_breaches"]) == ({"amount": 0.0, "currency": "EUR"}, 0)

    # an empty period of the busy vendor: nulls, and a cost of 0
    day_after = (DAY[1], DAY[1] + 86_400_000)
    empty = await scorecard(e, vendors["two-co"], *day_after)
    assert empty["volume"] == {
        "answered": 0,
        "handled": 0,
        "days": 1,
        "cap": 10,
        "commitment": 2,
        "commitment_met": False,
    }
    for key in ("asa_s", "aht_s", "abandon_rate", "csat", "nps"):
        assert empty[key] is None, key
    assert empty["service_level"]["value"] is None
    assert (empty["cost"], empty["sla_breaches"], empty["abandoned"]) == (
        {"amount": 0.0, "currency": "USD"},
        0,
        0,
    )

    # the same two-co figures over a period of three local days: cap and commitment x 3
    three = await scorecard(e, vendors["two-co"], DAY[0] - 86_400_000, DAY[1] + 86_400_000)
    assert three["volume"]["cap"] == 30 and three["volume"]["commitment"] == 6
    assert three["sla_breaches"] == 2 and three["cost"] == two["cost"]


def test_periods_in_the_vendor_zone() -> None:
    # November in Costa Rica (UTC-6), and in Madrid across no DST change
    assert month_bounds("America/Costa_Rica", T0) == (
        _ms("2026-11-01T00:00:00-06:00"),
        _ms("2026-12-01T00:00:00-06:00"),
    )
    assert month_bounds("Europe/Madrid", _ms("2026-12-31T23:30:00+01:00")) == (
        _ms("2026-12-01T00:00:00+01:00"),
        _ms("2027-01-01T00:00:00+01:00"),
    )
    # October in Madrid has 31 days and an hour (DST ends)
    start, end = month_bounds("Europe/Madrid", _ms("2026-10-15T12:00:00+02:00"))
    assert end - start == 31 * 86_400_000 + 3_600_000
    assert len(local_days("America/Costa_Rica", *DAY)) == 1
    assert len(local_days("UTC", *DAY)) == 2  # 06:00 UTC to 06:00 UTC: two UTC days
    assert local_days("UTC", 5, 5) == []
