"""The happy path and its events: arrive, reserve, accept, wrap-up, complete."""

from __future__ import annotations

from redis.asyncio import Redis

from router.clock import VirtualClock
from router.model import AgentStatus, ContactState, NewContact

from ..conftest import EngineFactory
from ..factories import agent


async def events(redis: Redis, engine_key: str) -> list[dict[str, str]]:
    out = []
    for _, fields in await redis.xrange(engine_key):
        out.append({k.decode(): v.decode() for k, v in fields.items()})
    return out


async def test_contact_goes_to_ready_agent_and_completes(
    make_engine: EngineFactory, redis: Redis
) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"), AgentStatus.AVAILABLE)
    r = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    assert r.state is ContactState.RESERVED and r.agent == "a1"
    clock.advance(3)
    await eng.accept(r.contact_id, "a1")
    clock.advance(100)
    assert await eng.complete(r.contact_id, "a1", "sold") is ContactState.WRAP_UP
    clock.advance(4)
    assert await eng.finish_wrap_up(r.contact_id, "a1") is ContactState.COMPLETED
    c = await eng.get_contact(r.contact_id)
    assert c.state is ContactState.COMPLETED and c.disposition == "sold"
    a = await eng.get_agent("a1")
    assert a.load == {} and a.contacts == ()
    evs = await events(redis, eng.keys.events)
    types = [e["type"] for e in evs]
    assert types == [
        "agent.capacity_changed",
        "agent.status_changed",
        "contact.received",
        "contact.queued",
        "contact.reserved",
        "contact.assigned",
        "contact.wrap_up",
        "contact.completed",
    ]
    done = evs[-1]
    assert done["talk_ms"] == "100000" and done["wrap_ms"] == "4000"
    assert done["handle_ms"] == "104000" and done["disposition"] == "sold"
    assert evs[5]["wait_ms"] == "3000"
