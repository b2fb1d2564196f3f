"""CSAT and NPS in the metrics: contact.surveyed counted exactly once into the
contact's queue and the answering agent's pool, checked against hand-computed
figures (mixed answers, one kind only, and none)."""

from __future__ import annotations

from router.api.metrics import exposition
from router.clock import VirtualClock
from router.engine import Engine
from router.metrics import definitions as d
from router.metrics.consumer import drain
from router.metrics.query import Scope, history, snapshot
from router.model import AgentStatus, NewContact

from ..conftest import EngineFactory
from ..factories import agent
from .conftest import T0

BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }

[pools.inhouse]
kind = "inhouse"

[pools.north]
kind = "inhouse"

[pools.idle]
kind = "inhouse"

[queues.sales]
channel = "chat"
pools = ["inhouse"]

[queues.support]
channel = "chat"
pools = ["inhouse", "north"]
"""

HOUR = 3_600_000


def test_formulas() -> None:
    assert d.csat(7, 3) == 2.33 and d.csat(5, 1) == 5.0 and d.csat(0, 0) is None
    assert d.nps(0, 3, 3) == -100.0 and d.nps(3, 0, 3) == 100.0
    assert d.nps(1, 1, 3) == 0.0 and d.nps(2, 0, 3) == 66.7 and d.nps(0, 0, 0) is None
    assert d.survey_figures({"cs_s": 9, "cs_n": 2, "np_p": 1, "np_d": 2, "np_n": 4}) == {
        "csat": 4.5,
        "nps": -25.0,
    }
    assert d.survey_figures({}) == {"csat": None, "nps": None}


async def _answer(e: Engine, queue: str, aid: str) -> str:
    """A contact of `queue` answered by `aid` (the only agent available)."""
    await e.set_agent_status(aid, AgentStatus.AVAILABLE)
    r = await e.create_contact(NewContact(channel="chat", queue=queue))
    assert r.agent == aid, r
    await e.accept(r.contact_id, aid)
    await e.set_agent_status(aid, AgentStatus.AWAY)
    return r.contact_id


async def test_csat_and_nps_per_queue_and_pool_match_hand_computed_figures(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    await e.upsert_agent(agent("ana", "inhouse", skills={}, capacity={"chat": 9}))
    await e.upsert_agent(agent("nina", "north", skills={}, capacity={"chat": 9}))
    n1 = await _answer(e, "support", "nina")
    n2 = await _answer(e, "support", "nina")
    n3 = await _answer(e, "support", "nina")
    n4 = await _answer(e, "support", "nina")
    a1 = await _answer(e, "support", "ana")
    s1 = await _answer(e, "sales", "ana")  # answered, never surveyed
    await e.complete(n1, "nina", skip_wrap_up=True)
    await e.complete(s1, "ana", skip_wrap_up=True)

    # the surveys come three hours later (outside any window of the contacts)
    clock.set_ms(T0 + 3 * HOUR)
    await e.survey(n1, csat=5, nps=10)  # promoter
    await e.survey(n2, csat=4, nps=8)  # passive
    await e.survey(n3, csat=2)  # CSAT only
    await e.survey(n4, nps=3)  # NPS only: detractor
    await e.survey(a1, csat=3, nps=9)  # promoter
    await e.survey(n1, csat=5, nps=10)  # a relay's retry: no new event
    assert await drain(e) > 0
    assert await drain(e) == 0  # exactly once: nothing left to count

    m = await snapshot(e, "15m")
    support, sales = m["queues"]["support"], m["queues"]["sales"]
    # support: CSAT (5 + 4 + 2 + 3) / 4; NPS answers 10, 8, 3, 9: (2 - 1) / 4
    assert (support["csat"], support["nps"]) == (3.5, 25.0)
    assert support["answered"] == 0  # answered three hours ago: not in this window
    assert (sales["csat"], sales["nps"]) == (None, None)
    north, inhouse, idle = (m["pools"][p] for p in ("north", "inhouse", "idle"))
    # north (nina): CSAT (5 + 4 + 2) / 3 = 3.67; NPS 10, 8, 3: (1 - 1) / 3
    assert (north["csat"], north["nps"]) == (3.67, 0.0)
    assert (inhouse["csat"], inhouse["nps"]) == (3.0, 100.0)
    assert (idle["csat"], idle["nps"]) == (None, None)

    # the 15-minute history interval of the surveys says the same; earlier ones none
    h = await history(e, T0, T0 + 3 * HOUR + 1)
    last, first = h["intervals"][-1], h["intervals"][0]
    assert last["from"] == T0 + 3 * HOUR
    assert (last["queues"]["support"]["csat"], last["queues"]["support"]["nps"]) == (3.5, 25.0)
    assert (last["pools"]["north"]["csat"], last["pools"]["north"]["nps"]) == (3.67, 0.0)
    assert (first["queues"]["support"]["csat"], first["pools"]["north"]["nps"]) == (None, None)
    assert first["queues"]["support"]["answered"] == 5

    # a pool-scoped reader sees its own pool's figures, never the queue's mix of
    # other pools' answers (which a subtraction would turn into theirs)
    scoped = await snapshot(e, "15m", Scope("north"))
    assert (scoped["queues"]["support"]["csat"], scoped["queues"]["support"]["nps"]) == (
        None,
        None,
    )
    assert (scoped["pools"]["north"]["csat"], scoped["pools"]["north"]["nps"]) == (3.67, 0.0)
    assert (await snapshot(e, "15m"))["queues"]["support"]["csat"] == 3.5  # unscoped
    h2 = await history(e, T0, T0 + 3 * HOUR + 1, scope=Scope("north"))
    assert h2["intervals"][-1]["queues"]["support"]["csat"] is None
    scoped_text = (await exposition(e, Scope("north"))).decode()
    assert "switchboard_queue_csat" not in scoped_text
    assert (
        f'switchboard_pool_nps_answers_total{{pool="north",tenant="{e.tenant.id}"}} 3.0'
        in scoped_text
    )

    # a later window without surveys: none again
    clock.set_ms(T0 + 4 * HOUR)
    m2 = await snapshot(e, "1h")
    assert m2["queues"]["support"]["csat"] is None and m2["pools"]["north"]["nps"] is None

    # the Prometheus exposition carries the same totals
    text = (await exposition(e, Scope())).decode()
    tid = e.tenant.id
    for line in (
        f'switchboard_queue_csat_score_sum_total{{queue="support",tenant="{tid}"}} 14.0',
        f'switchboard_queue_csat_answers_total{{queue="support",tenant="{tid}"}} 4.0',
        f'switchboard_queue_nps_promoters_total{{queue="support",tenant="{tid}"}} 2.0',
        f'switchboard_queue_nps_detractors_total{{queue="support",tenant="{tid}"}} 1.0',
        f'switchboard_pool_nps_answers_total{{pool="north",tenant="{tid}"}} 3.0',
    ):
        assert line in text, line
