"""The estimated wait that create_contact returns with a queued contact's position.

estimate = position x handle time per slot (a weighted mean of recent completed
contacts of the queue and channel) / agents available on the queue's lane.
"""

from __future__ import annotations

from router.clock import VirtualClock
from router.engine import Engine
from router.model import AgentStatus, ContactState, NewContact, RouteResult

from ..conftest import EngineFactory
from ..factories import agent


async def staff(eng: Engine, n: int, capacity: dict[str, int] | None = None) -> list[str]:
    ids = [f"a{i}" for i in range(n)]
    for aid in ids:
        await eng.upsert_agent(agent(aid, capacity=capacity), AgentStatus.AVAILABLE)
    return ids


async def handle(
    eng: Engine, clock: VirtualClock, n: int, seconds: float, ch: str = "voice"
) -> None:
    """n contacts offered, accepted, and completed after `seconds` each."""
    made = [await eng.create_contact(NewContact(channel=ch, queue=ch)) for _ in range(n)]
    assert all(r.state is ContactState.RESERVED for r in made)
    for r in made:
        assert r.agent is not None
        await eng.accept(r.contact_id, r.agent)
    clock.advance(seconds)
    for r in made:
        await eng.complete(r.contact_id, r.agent, skip_wrap_up=True)


async def queued(eng: Engine, n: int, ch: str = "voice") -> list[RouteResult]:
    """n contacts that wait, 1 ms apart (contacts of the same ms line up by id)."""
    assert isinstance(eng.clock, VirtualClock)
    out = []
    for _ in range(n):
        eng.clock.advance(0.001)
        out.append(await eng.create_contact(NewContact(channel=ch, queue=ch)))
    assert all(r.state is ContactState.QUEUED for r in out)
    return out


async def busy_line(
    make_engine: EngineFactory, agents: int, handle_s: float, waiting: int
) -> list[RouteResult]:
    """`agents` voice agents with a known handle time, all busy, and `waiting` contacts."""
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await staff(eng, agents)
    await handle(eng, clock, agents, handle_s)
    busy = [
        await eng.create_contact(NewContact(channel="voice", queue="voice")) for _ in range(agents)
    ]
    assert all(r.state is ContactState.RESERVED for r in busy)
    return await queued(eng, waiting)


async def test_more_contacts_ahead_means_a_longer_wait(make_engine: EngineFactory) -> None:
    line = await busy_line(make_engine, agents=2, handle_s=120, waiting=3)
    assert [r.position for r in line] == [1, 2, 3]
    # 120 s per contact, 2 agents: one frees up every 60 s
    assert [r.estimated_wait_s for r in line] == [60.0, 120.0, 180.0]


async def test_more_agents_means_a_shorter_wait(make_engine: EngineFactory) -> None:
    two = await busy_line(make_engine, agents=2, handle_s=120, waiting=1)
    eight = await busy_line(make_engine, agents=8, handle_s=120, waiting=1)
    assert two[0].position == eight[0].position == 1
    assert two[0].estimated_wait_s == 60.0
    assert eight[0].estimated_wait_s == 15.0


async def test_no_estimate_when_no_agent_serves_the_queue(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    (r,) = await queued(eng, 1)
    assert r.position == 1 and r.estimated_wait_s is None
    # agents of another queue's lane do not count
    await eng.upsert_agent(agent("e1", capacity={"email": 1}), AgentStatus.AVAILABLE)
    (r,) = await queued(eng, 1)
    assert r.position == 2 and r.estimated_wait_s is None


async def test_no_estimate_before_any_contact_was_handled(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    await staff(eng, 1)
    await eng.create_contact(NewContact(channel="voice", queue="voice"))  # the agent's
    (r,) = await queued(eng, 1)
    assert r.position == 1 and r.estimated_wait_s is None


async def test_only_available_agents_count(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    a0, a1 = await staff(eng, 2)
    await handle(eng, clock, 2, 100)
    staffed = eng.keys.staffed("voice", "voice")
    assert await eng.redis.smembers(staffed) == {a0.encode(), a1.encode()}
    await eng.set_agent_status(a1, AgentStatus.AWAY)
    assert await eng.redis.smembers(staffed) == {a0.encode()}
    talk = await eng.create_contact(NewContact(channel="voice", queue="voice"))
    await eng.accept(talk.contact_id, a0)  # a0 is busy, and stays with its customer
    (r,) = await queued(eng, 1)
    assert r.estimated_wait_s == 100.0  # one agent staffed
    await eng.set_agent_status(a0, AgentStatus.OFFLINE)
    (r,) = await queued(eng, 1)
    assert r.position == 2 and r.estimated_wait_s is None  # nobody staffed
    await eng.set_agent_status(a1, AgentStatus.AVAILABLE)  # takes the first in line
    (r,) = await queued(eng, 1)
    assert r.position == 2 and r.estimated_wait_s == 200.0


async def test_a_lane_change_moves_the_agent_between_queues(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await staff(eng, 1)
    await handle(eng, clock, 1, 50)
    await eng.create_contact(NewContact(channel="voice", queue="voice"))
    (r,) = await queued(eng, 1)
    assert r.estimated_wait_s == 50.0
    # the agent now serves email only: nobody is staffed on the voice lane
    await eng.upsert_agent(agent("a0", capacity={"email": 1}))
    (r,) = await queued(eng, 1)
    assert r.estimated_wait_s is None
    assert not await eng.redis.exists(eng.keys.staffed("voice", "voice"))
    assert await eng.redis.smembers(eng.keys.staffed("email", "email")) == {b"a0"}


async def test_concurrent_slots_and_recent_handle_times(make_engine: EngineFactory) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await staff(eng, 1, capacity={"chat": 2})
    await handle(eng, clock, 2, 80, ch="chat")  # 2 chats at once: a slot frees every 40 s
    await eng.create_contact(NewContact(channel="chat", queue="chat"))
    await eng.create_contact(NewContact(channel="chat", queue="chat"))
    (r,) = await queued(eng, 1, ch="chat")
    assert r.estimated_wait_s == 40.0
    # slower chats since: the estimate follows them (a plain mean while samples are few)
    for c in await eng.redis.smembers(eng.keys.agent_contacts("a0")):
        await eng.accept(c.decode(), "a0")
    clock.advance(160)
    for c in list(await eng.redis.smembers(eng.keys.agent_contacts("a0"))):
        await eng.complete(c.decode(), "a0", skip_wrap_up=True)  # each frees a slot: re-offered
    # the first slot went to the contact that waited; the second takes a new one
    assert (await eng.create_contact(NewContact(channel="chat", queue="chat"))).agent == "a0"
    (r2,) = await queued(eng, 1, ch="chat")
    # samples 40, 40, 80, 80 s per slot: a mean of 60 s
    assert r2.position == 1 and r2.estimated_wait_s == 60.0
    stats = await eng.redis.hgetall(eng.keys.queue_stats("chat"))
    assert stats == {b"aht:chat": b"60000.0", b"n:chat": b"4"}


async def test_a_repeated_ingest_reports_the_same_place(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    new = NewContact(channel="voice", queue="voice", idempotency_key="k1")
    first = await eng.create_contact(new)
    again = await eng.create_contact(new)
    assert again.duplicate and again.contact_id == first.contact_id
    assert again.position == first.position == 1
    assert again.estimated_wait_s is None
