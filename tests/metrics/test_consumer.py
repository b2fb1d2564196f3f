"""The metrics consumer against hand-computed cases, in virtual time.

Each scenario drives the engine, drains the stream into the buckets with the
consumer script, and reads the windows back (router/metrics/query.py).
"""

from __future__ import annotations

from typing import Any

from router.clock import VirtualClock
from router.engine import Engine
from router.metrics.consumer import drain
from router.metrics.query import Scope, history, snapshot
from router.model import AgentStatus, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from .conftest import METRICS_BODY, T0


async def _metrics(engine: Engine, window: str = "15m", scope: Scope | None = None) -> Any:
    await drain(engine)
    return await snapshot(engine, window, scope)


async def _new(engine: Engine, queue: str) -> str:
    return (await engine.create_contact(NewContact(channel="voice", queue=queue))).contact_id


async def _answer(engine: Engine, clock: VirtualClock, aid: str, cid: str, at_s: float) -> None:
    """`aid` comes available at T0 + at_s, is offered `cid` (the only waiting
    contact it serves) and accepts at once."""
    clock.set_ms(T0 + round(at_s * 1000))
    await engine.set_agent_status(aid, AgentStatus.AVAILABLE)
    assert (await engine.get_contact(cid)).agent == aid
    await engine.accept(cid, aid)


async def test_offered_answered_abandoned_against_hand_computed_figures(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse"))
    # c1: answered after 10 s (within 20 s), handled 60 s
    c1 = await _new(e, "sales")
    await _answer(e, clock, "ana", c1, 10)
    clock.set_ms(T0 + 70_000)
    await e.complete(c1, "ana", skip_wrap_up=True)
    await e.set_agent_status("ana", AgentStatus.AWAY)
    # c2: abandoned after 3 s (within the 5 s grace); c3 after 8 s (outside the
    # grace, inside the threshold); c4 after 25 s (outside both)
    for start, waited in ((100, 3), (110, 8), (120, 25)):
        clock.set_ms(T0 + start * 1000)
        cid = await _new(e, "sales")
        clock.advance(waited)
        await e.abandon(cid)
    # c5: answered after 30 s (outside the threshold), handled 40 s
    clock.set_ms(T0 + 150_000)
    c5 = await _new(e, "sales")
    await _answer(e, clock, "ana", c5, 180)
    clock.set_ms(T0 + 220_000)
    await e.complete(c5, "ana", skip_wrap_up=True)
    await e.set_agent_status("ana", AgentStatus.AWAY)

    m = await _metrics(e)
    sales = m["queues"]["sales"]
    assert {k: sales[k] for k in ("offered", "answered", "abandoned", "handled")} == {
        "offered": 5,
        "answered": 2,
        "abandoned": 3,
        "handled": 2,
    }
    # 1 answered within 20 s / (5 offered - 1 abandoned within the grace)
    assert sales["service_level"] == {"threshold_s": 20, "value": 0.25}
    assert sales["asa_s"] == 20.0  # (10 + 30) / 2
    assert sales["aht_s"] == 50.0  # (60 + 40) / 2
    assert sales["abandon_rate"] == 0.6
    assert sales["service_level_target"] == 0.8
    assert sales["title"] == "sales" and sales["channels"] == ["voice"]
    assert sales["waiting"] == 0 and sales["longest_wait_s"] is None
    support = m["queues"]["support"]
    assert support["offered"] == 0 and support["service_level"]["value"] is None
    inhouse = m["pools"]["inhouse"]
    assert inhouse["answered"] == 2 and inhouse["asa_s"] == 20.0
    assert inhouse["service_level"] == {"threshold_s": None, "value": 0.5}
    # available 60 s (10..70) + 40 s (180..220), handling 100 s
    assert inhouse["occupancy"] == 1.0
    assert inhouse["agents"] == {"available": 0, "away": 1, "offline": 0}
    assert inhouse["title"] == "In-house" and inhouse["kind"] == "inhouse"
    near = m["pools"]["near"]
    assert (near["vendor"], near["location"], near["kind"]) == (
        "near-co",
        "nearshore",
        "outsourced",
    )
    assert m["window"] == {"name": "15m", "from": T0 - 11 * 60_000, "to": T0 + 220_000}


async def test_a_transferred_contact_is_offered_once_per_queue(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse"))
    await e.upsert_agent(agent("bob", "near"))
    c = await _new(e, "sales")
    clock.advance(5)
    await e.transfer(c, queue="support")
    clock.advance(5)
    await e.transfer(c, queue="sales")  # back: sales counted it already
    clock.advance(5)
    await e.transfer(c, queue="support")  # and again: so did support
    # answered by the vendor 20 s after arrival: within support's 30 s
    await _answer(e, clock, "bob", c, 20)
    m = await _metrics(e)
    assert m["queues"]["sales"]["offered"] == 1
    assert m["queues"]["support"]["offered"] == 1
    assert m["queues"]["support"]["answered"] == 1
    assert m["queues"]["support"]["service_level"]["value"] == 1.0
    # bob hands it to ana in the same queue: ana's pool answered it too, but the
    # queue answered it once, with its first wait
    clock.set_ms(T0 + 40_000)
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    await e.transfer(c, agent="ana")
    await e.accept(c, "ana")
    m = await _metrics(e)
    support = m["queues"]["support"]
    assert (support["offered"], support["answered"], support["asa_s"]) == (1, 1, 20.0)
    assert m["pools"]["near"]["answered"] == 1
    assert m["pools"]["inhouse"]["answered"] == 1
    assert m["pools"]["inhouse"]["service_level"]["value"] == 0.0  # 40 s > 30 s


async def test_windows_roll_over_on_the_engine_clock(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await _new(e, "sales")
    clock.advance(60)
    await _new(e, "sales")
    assert (await _metrics(e))["queues"]["sales"]["offered"] == 2
    # 15 minutes after the first arrival, its minute has left the 15m window
    clock.set_ms(T0 + 15 * 60_000)
    m = await _metrics(e)
    assert m["queues"]["sales"]["offered"] == 1
    assert m["queues"]["sales"]["waiting"] == 2
    assert m["queues"]["sales"]["longest_wait_s"] == 900.0
    assert (await _metrics(e, "1h"))["queues"]["sales"]["offered"] == 2
    clock.set_ms(T0 + 16 * 60_000)
    assert (await _metrics(e))["queues"]["sales"]["offered"] == 0
    assert (await _metrics(e))["queues"]["sales"]["service_level"]["value"] is None
    # T0 is 23:15 in Madrid: "today" there ends 45 minutes later
    clock.set_ms(T0 + 44 * 60_000)
    today = await _metrics(e, "today")
    assert today["queues"]["sales"]["offered"] == 2
    assert today["window"]["from"] == T0 - (23 * 60 + 15) * 60_000  # 00:00 Madrid
    clock.set_ms(T0 + 46 * 60_000)
    assert (await _metrics(e, "today"))["queues"]["sales"]["offered"] == 0
    assert (await _metrics(e, "1h"))["queues"]["sales"]["offered"] == 2
    clock.set_ms(T0 + 61 * 60_000)
    assert (await _metrics(e, "1h"))["queues"]["sales"]["offered"] == 0
    # the 15-minute intervals keep it for history
    h = await history(e, T0, T0 + 30 * 60_000)
    assert [i["queues"]["sales"]["offered"] for i in h["intervals"]] == [2, 0]
    assert h["intervals"][0]["from"] == T0 and h["interval_s"] == 900


async def test_retention_drops_old_buckets_on_the_engine_clock(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)  # history_days = 2
    await _new(e, "sales")
    await drain(e)
    k = e.keys
    assert await e.redis.exists(k.metrics_bucket("1m", T0), k.metrics_bucket("15m", T0)) == 2
    clock.set_ms(T0 + 3 * 3_600_000)
    await _new(e, "sales")
    await drain(e)
    assert not await e.redis.exists(k.metrics_bucket("1m", T0))  # minute buckets: 2 h
    assert await e.redis.exists(k.metrics_bucket("15m", T0))
    clock.set_ms(T0 + 3 * 86_400_000)
    await _new(e, "sales")
    await drain(e)
    assert not await e.redis.exists(k.metrics_bucket("15m", T0))
    assert await e.redis.zcard(k.metrics_index("15m")) == 1
    assert await e.redis.zcard(k.metrics_index("1m")) == 1
    assert int(await e.redis.hget(k.metrics_totals, "q:sales:off") or 0) == 3


async def test_occupancy_adds_the_open_available_time_at_query_time(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse"))
    c = await _new(e, "sales")
    await _answer(e, clock, "ana", c, 0)
    clock.set_ms(T0 + 30_000)
    await e.complete(c, "ana", skip_wrap_up=True)
    clock.set_ms(T0 + 120_000)  # still available: 120 s available, 30 s handling
    m = await _metrics(e)
    assert m["pools"]["inhouse"]["occupancy"] == 0.25
    assert m["pools"]["inhouse"]["agents"]["available"] == 1
    # the same time, split over the 15-minute intervals it spans
    await e.set_agent_status("ana", AgentStatus.AWAY)
    await drain(e)
    clock.set_ms(T0 + 20 * 60_000)
    h = await history(e, T0, T0 + 30 * 60_000)
    assert h["intervals"][0]["pools"]["inhouse"]["occupancy"] == 0.25


async def test_sla_events_count_and_raise_alerts(make_engine: EngineFactory) -> None:
    """sla.warning / sla.breached as the SLA timers write them (docs/events.md)."""
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    for i, kind in enumerate(("sla.warning", "sla.breached", "sla.breached")):
        await e.redis.xadd(
            e.keys.events,
            {
                "v": "1",
                "type": kind,
                "at": T0 + i,
                "contact": f"c{i}",
                "queue": "support",
                "channel": "voice",
                "sla": "answer",
                "due": T0,
                "target_ms": 30000,
                "wait_ms": 30000,
            },
        )
    m = await _metrics(e)
    assert m["queues"]["support"]["sla_breaches"] == 2
    assert m["queues"]["support"]["sla_warnings"] == 1
    assert [a["contact"] for a in m["alerts"]] == ["c2", "c1", "c0"]  # newest first
    assert m["alerts"][0] == {
        "type": "sla.breached",
        "contact": "c2",
        "queue": "support",
        "sla": "answer",
        "at": T0 + 2,
    }
    # a vendor's supervisor sees only the queues its pool serves
    scoped = await snapshot(e, "15m", Scope("near"))
    assert set(scoped["queues"]) == {"support"} and set(scoped["pools"]) == {"near"}
    assert len(scoped["alerts"]) == 3
    scoped_in = await snapshot(e, "15m", Scope("inhouse"))
    assert set(scoped_in["queues"]) == {"sales", "support"}


async def test_a_reopened_contact_is_offered_again(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(METRICS_BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse"))
    c = await _new(e, "sales")
    await e.transfer(c, queue="support")
    await _answer(e, clock, "ana", c, 5)
    clock.set_ms(T0 + 65_000)
    await e.complete(c, "ana", skip_wrap_up=True)
    await e.set_agent_status("ana", AgentStatus.AWAY)
    clock.set_ms(T0 + 70_000)
    outcome, _ = await e.message(c, "message", '{"kind":"message"}', 600_000, 10)
    assert outcome == "reopened"
    # back in support: a new offered contact there; then moved to sales, which
    # counts it again too, since the reopened conversation starts afresh
    await e.transfer(c, queue="sales")
    m = await _metrics(e)
    assert m["queues"]["support"]["offered"] == 2
    assert m["queues"]["sales"]["offered"] == 2
    assert m["queues"]["support"]["answered"] == 1
