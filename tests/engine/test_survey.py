"""Customer surveys (survey.lua): only an answered contact, once, credited to its
answering agent and pool, with the contact.surveyed event in the same call."""

from __future__ import annotations

import asyncio

import pytest

from router.clock import VirtualClock
from router.engine import Engine
from router.errors import ContactNotFound, InvalidState, ValidationError
from router.model import AgentStatus, NewContact

from ..conftest import EngineFactory
from ..factories import agent

T0 = 1_700_000_100_000

BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }
transfer_wait_s = 20

[retention]
finished_contact_s = 0.3

[pools.inhouse]
kind = "inhouse"

[pools.north]
kind = "inhouse"

[queues.support]
channel = "chat"
pools = ["north"]
"""


async def _answered(e: Engine, aid: str = "nina") -> str:
    await e.upsert_agent(agent(aid, "north", skills={}, capacity={"chat": 2}))
    await e.set_agent_status(aid, AgentStatus.AVAILABLE)
    r = await e.create_contact(NewContact(channel="chat", queue="support"))
    assert r.agent == aid
    await e.accept(r.contact_id, aid)
    return r.contact_id


async def _surveyed_events(e: Engine) -> list[dict[str, str]]:
    out = []
    for _, fields in await e.redis.xrange(e.keys.events):
        ev = {k.decode(): v.decode() for k, v in fields.items()}
        if ev["type"] == "contact.surveyed":
            out.append(ev)
    return out


async def test_survey_of_a_completed_contact_is_recorded_once_with_its_event(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    cid = await _answered(e)
    await e.complete(cid, "nina", skip_wrap_up=True)
    clock.set_ms(T0 + 60_000)
    new, rec = await e.survey(cid, csat=4, nps=9)
    assert new is True
    assert rec == {
        "contact": cid,
        "agent": "nina",
        "pool": "north",
        "csat": 4,
        "nps": 9,
        "at": T0 + 60_000,
    }
    (ev,) = await _surveyed_events(e)
    assert ev["contact"] == cid and ev["queue"] == "support" and ev["channel"] == "chat"
    assert (ev["agent"], ev["pool"], ev["csat"], ev["nps"]) == ("nina", "north", "4", "9")
    assert ev["at"] == str(T0 + 60_000) and ev["created"] == str(T0)

    # the same survey again (a relay's retry): unchanged, no second event
    clock.set_ms(T0 + 120_000)
    again, rec2 = await e.survey(cid, csat=4, nps=9)
    assert again is False and rec2["at"] == T0 + 60_000
    assert len(await _surveyed_events(e)) == 1
    # other values: one survey per contact
    with pytest.raises(InvalidState, match="surveyed already"):
        await e.survey(cid, csat=5, nps=9)
    with pytest.raises(InvalidState, match="surveyed already"):
        await e.survey(cid, csat=4)
    assert len(await _surveyed_events(e)) == 1


async def test_csat_only_and_nps_only_leave_the_other_empty(make_engine: EngineFactory) -> None:
    e = await make_engine(BODY, VirtualClock(T0))
    c1 = await _answered(e)  # still assigned: a survey during the conversation counts too
    c2 = await _answered(e)
    _, r1 = await e.survey(c1, csat=1)
    _, r2 = await e.survey(c2, nps=0)
    assert (r1["csat"], r1["nps"], r2["csat"], r2["nps"]) == (1, None, None, 0)
    ev1, ev2 = await _surveyed_events(e)
    assert (ev1["csat"], ev1["nps"], ev2["csat"], ev2["nps"]) == ("1", "", "", "0")


async def test_a_contact_never_answered_cannot_be_surveyed(make_engine: EngineFactory) -> None:
    clock = VirtualClock(T0)
    e = await make_engine(BODY, clock)
    queued = (await e.create_contact(NewContact(channel="chat", queue="support"))).contact_id
    with pytest.raises(InvalidState, match="not answered"):
        await e.survey(queued, csat=3)
    # on offer, then abandoned: it had an agent but was never answered
    await e.upsert_agent(agent("nina", "north", skills={}, capacity={"chat": 2}))
    await e.set_agent_status("nina", AgentStatus.AVAILABLE)
    assert (await e.get_contact(queued)).agent == "nina"
    with pytest.raises(InvalidState, match="not answered"):
        await e.survey(queued, csat=3)
    await e.abandon(queued)
    with pytest.raises(InvalidState, match="not answered"):
        await e.survey(queued, nps=10)
    assert await _surveyed_events(e) == []


async def test_unknown_expired_and_invalid(make_engine: EngineFactory) -> None:
    e = await make_engine(BODY, VirtualClock(T0))
    with pytest.raises(ContactNotFound):
        await e.survey("nope", csat=3)
    for kwargs in ({}, {"csat": 0}, {"csat": 6}, {"nps": -1}, {"nps": 11}, {"csat": True}):
        with pytest.raises(ValidationError):
            await e.survey("nope", **kwargs)  # type: ignore[arg-type]
    # the script checks too (a caller bypassing the engine's checks)
    with pytest.raises(ValidationError, match="csat"):
        await e._run("survey", "nope", "4.5", "")
    with pytest.raises(ValidationError, match="nps"):
        await e._run("survey", "nope", "", "12")
    # the completed record expires after retention.finished_contact_s (0.3 s here)
    cid = await _answered(e)
    await e.complete(cid, "nina", skip_wrap_up=True)
    await asyncio.sleep(0.5)
    with pytest.raises(ContactNotFound):
        await e.survey(cid, csat=5)


async def test_a_survey_after_a_reopen_is_credited_to_who_completed_it(
    make_engine: EngineFactory,
) -> None:
    # nina (north) completes the chat; the customer writes again and the reopened
    # conversation waits, then ivan (inhouse) answers it: the survey about nina's
    # conversation stays hers, whenever it arrives
    body = BODY.replace('pools = ["north"]', 'pools = ["north", "inhouse"]').replace(
        "finished_contact_s = 0.3", "finished_contact_s = 600"
    )
    e = await make_engine(body, VirtualClock(T0))
    cid = await _answered(e)
    await e.complete(cid, "nina", skip_wrap_up=True)
    await e.set_agent_status("nina", AgentStatus.OFFLINE)
    outcome, _ = await e.message(cid, "message", '{"kind":"message"}', 600_000, 10)
    assert outcome == "reopened"
    assert (await e.get_contact(cid)).agent is None  # waiting again, nobody on it
    _, rec = await e.survey(cid, csat=5)
    assert (rec["agent"], rec["pool"]) == ("nina", "north")
    await e.upsert_agent(agent("ivan", "inhouse", skills={}, capacity={"chat": 2}))
    await e.set_agent_status("ivan", AgentStatus.AVAILABLE)
    await e.accept(cid, "ivan")
    (ev,) = await _surveyed_events(e)
    assert (ev["agent"], ev["pool"]) == ("nina", "north")
