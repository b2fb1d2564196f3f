"""Redis has no rollback: a script validates everything before its first write.

A failure after a write cannot be forced from outside, so these tests prove the
rule from the other side: (a) they corrupt the state so that a script's own
validation must fail, and (b) they call scripts directly with malformed ARGV so
that Valkey aborts them; in both cases every key of the tenant must be unchanged.
Last, the engine must survive SCRIPT FLUSH (EVALSHA -> NOSCRIPT -> reload).
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from router import codec
from router.clock import VirtualClock
from router.engine import Engine
from router.errors import (
    AgentNotFound,
    InvalidState,
    PoolNotFound,
    QueueNotFound,
    SwitchboardError,
    ValidationError,
)
from router.model import AgentSpec, AgentStatus, ContactState, NewContact
from router.store.scripts import SCRIPT_NAMES

from ..conftest import EngineFactory
from ..factories import agent
from .test_routing import NO_PRESENCE
from .test_transitions import chat, events, fails_cleanly, ready_agent, snapshot, voice

# -- (a) corrupted state: validation fails, nothing is written ---------------------------


async def test_missing_queue_config_create_contact(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1")
    await eng.redis.delete(eng.keys.queue("voice"))
    # the engine's config still has the queue; the script finds no hash
    for new in (
        voice(id="c1"),
        voice(idempotency_key="k1"),
        voice(preferred_agent="a1", priority=3),
    ):
        err = await fails_cleanly(eng, QueueNotFound, eng.create_contact, new)
        assert "voice" in str(err)
    assert not await eng.redis.exists(eng.keys.contact("c1"))


async def test_missing_overflow_queue_config(make_engine: EngineFactory) -> None:
    body = """
[routing]
presence_timeout_s = 0
[pools.inhouse]
kind = "inhouse"
[queues.big]
channel = "chat"
pools = ["inhouse"]
max_size = 1
when_full = "overflow"
overflow_queue = "spill"
[queues.spill]
channel = "chat"
pools = ["inhouse"]
"""
    eng = await make_engine(body)
    await eng.create_contact(NewContact("chat", "big", id="b1", idempotency_key="k1"))
    await eng.redis.delete(eng.keys.queue("spill"))
    await fails_cleanly(
        eng, QueueNotFound, eng.create_contact, NewContact("chat", "big", idempotency_key="k2")
    )


async def test_missing_queue_config_transfer(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.accept("c1", "a1")
    await eng.redis.delete(eng.keys.queue("voice"))
    await fails_cleanly(eng, QueueNotFound, eng.transfer, "c1", queue="voice", by_agent="a1")


async def _reserved_with_agent_gone(make_engine: EngineFactory, accept: bool) -> Engine:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1")
    await ready_agent(eng, "a2")
    await eng.create_contact(voice(id="c1"))
    assert (await eng.get_contact("c1")).agent == "a1"
    if accept:
        await eng.accept("c1", "a1")
    await eng.redis.delete(eng.keys.agent("a1"))
    return eng


async def test_reject_when_agent_record_is_gone(make_engine: EngineFactory) -> None:
    eng = await _reserved_with_agent_gone(make_engine, accept=False)
    await fails_cleanly(eng, AgentNotFound, eng.reject, "c1", "a1")


async def test_accept_when_agent_record_is_gone(make_engine: EngineFactory) -> None:
    eng = await _reserved_with_agent_gone(make_engine, accept=False)
    await fails_cleanly(eng, AgentNotFound, eng.accept, "c1", "a1")
    assert not await eng.redis.exists(eng.keys.agent("a1"))


async def test_abandon_reserved_when_agent_record_is_gone(make_engine: EngineFactory) -> None:
    eng = await _reserved_with_agent_gone(make_engine, accept=False)
    await fails_cleanly(eng, AgentNotFound, eng.abandon, "c1")


async def test_complete_and_transfer_when_agent_record_is_gone(
    make_engine: EngineFactory,
) -> None:
    eng = await _reserved_with_agent_gone(make_engine, accept=True)
    await fails_cleanly(eng, AgentNotFound, eng.complete, "c1", "a1")
    await fails_cleanly(eng, AgentNotFound, eng.complete, "c1")
    await fails_cleanly(eng, AgentNotFound, eng.transfer, "c1", queue="voice")
    await fails_cleanly(eng, AgentNotFound, eng.transfer, "c1", agent="a2")


async def test_offer_and_status_when_agent_record_is_gone(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.reject("c1", "a1")
    await eng.redis.delete(eng.keys.agent("a1"))
    await fails_cleanly(eng, AgentNotFound, eng.offer, "c1", "a1")
    await fails_cleanly(eng, AgentNotFound, eng.set_agent_status, "a1", "away")
    await fails_cleanly(eng, AgentNotFound, eng.heartbeat, "a1")


async def test_pool_missing_from_redis(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await eng.redis.srem(eng.keys.prefix + "pools", "near")
    # the engine's config knows the pool; the script does not
    await fails_cleanly(eng, PoolNotFound, eng.upsert_agent, agent("n1", "near"))
    await fails_cleanly(eng, PoolNotFound, eng.set_pool_open, "near", False)


async def test_contact_state_corrupted(make_engine: EngineFactory) -> None:
    eng = await make_engine(NO_PRESENCE)
    await ready_agent(eng, "a1")
    await eng.create_contact(voice(id="c1"))
    await eng.redis.hset(eng.keys.contact("c1"), "state", "received")
    for call, args in (
        (eng.accept, ("c1", "a1")),
        (eng.reject, ("c1", "a1")),
        (eng.complete, ("c1", "a1")),
        (eng.abandon, ("c1",)),
        (eng.offer, ("c1", "a1")),
    ):
        await fails_cleanly(eng, InvalidState, call, *args)


# -- (b) malformed ARGV: Valkey aborts the script before any write -------------------------


async def _stage(eng: Engine) -> dict[str, list[Any]]:
    """A tenant with every kind of record; ARGV per script, time left out."""
    await ready_agent(eng, "a1", capacity={"chat": 2})
    await ready_agent(eng, "a2", capacity={"voice": 1})
    await eng.create_contact(chat(id="res"))  # reserved for a1
    await eng.create_contact(voice(id="asg"))  # assigned to a2
    await eng.accept("asg", "a2")
    await eng.upsert_agent(agent("a3", capacity={"voice": 1}), AgentStatus.AWAY)
    await ready_agent(eng, "a4", capacity={"voice": 1})
    await eng.create_contact(voice(id="q1"))  # offered to a4, who declines: queued
    await eng.reject("q1", "a4")
    blob = codec.contact_blob(NewContact("chat", "chat"))
    ablob = codec.agent_blob(AgentSpec("a9", "inhouse"))
    return {
        "create_contact": ["new1", "chat", "chat", 0, blob, "idem1", 60_000, "", 0, "", ""],
        "accept": ["res", "a1"],
        "reject": ["res", "a1", ""],
        "complete": ["asg", "a2", "", 0],
        "abandon": ["res", ""],
        "transfer": ["asg", "voice", "", ""],
        "offer": ["q1", "a4"],
        "agent_upsert": ["a9", "inhouse", "chat=1", "chat:chat=0:0", ablob, "available", 0, ""],
        "agent_status": ["a1", "away", ""],
        "heartbeat": ["a1"],
        "timers": [100],
        "pool_gate": ["inhouse", 0, "x", "", 10, "admin"],
        "dispatch": ["chat:chat,voice:voice", 10],
    }


async def _fails_without_writes(eng: Engine, name: str, argv: list[Any]) -> Exception:
    before = await snapshot(eng)
    with pytest.raises((ResponseError, SwitchboardError)) as info:
        await eng.scripts.run(name, [eng.keys.anchor], argv)
    assert await snapshot(eng) == before, f"{name} wrote before failing"
    return info.value


@pytest.mark.parametrize("name", SCRIPT_NAMES)
async def test_non_numeric_time_aborts_before_any_write(
    make_engine: EngineFactory, name: str
) -> None:
    eng = await make_engine()
    # the other arguments are valid: with a real time the script would write
    # (a script added later without a case here still gets the bare check)
    argv = (await _stage(eng)).get(name, [])
    err = await _fails_without_writes(eng, name, ["soon", *argv])
    assert isinstance(err, ValidationError), repr(err)


async def test_non_numeric_priority_aborts_create_contact(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    argv = (await _stage(eng))["create_contact"]
    now = eng.clock.now_ms()
    for bad in ("high", "", "1e"):
        args = list(argv)
        args[3] = bad
        err = await _fails_without_writes(eng, "create_contact", [now, *args])
        assert isinstance(err, ValidationError), repr(err)
    # also without an idempotency key, and with a malformed preferred-agent wait
    args = list(argv)
    args[3], args[5] = "x", ""
    await _fails_without_writes(eng, "create_contact", [now, *args])
    args = list(argv)
    args[7], args[8] = "a1", "later"
    await _fails_without_writes(eng, "create_contact", [now, *args])
    # the same call with a number goes through
    r = await eng.scripts.run("create_contact", [eng.keys.anchor], [now, *argv])
    assert r[0] == b"new1" and r[4] == 0


async def test_malformed_batch_limit_status_and_lanes(make_engine: EngineFactory) -> None:
    eng = await make_engine()
    argv = await _stage(eng)
    now = eng.clock.now_ms()
    await _fails_without_writes(eng, "timers", [now, "many"])
    await _fails_without_writes(eng, "dispatch", [now, "chat:chat", "all"])
    await _fails_without_writes(eng, "agent_status", [now, "a1", "sleeping", ""])
    await eng.set_pool_open("near", False)
    # opening writes the gate, then dispatches: a bad limit must stop it first
    err = await _fails_without_writes(eng, "pool_gate", [now, "near", 1, "", "chat:chat", "all"])
    assert isinstance(err, ValidationError), repr(err)
    bad_cause = [now, "near", 1, "", "chat:chat", 10, "whim"]
    err = await _fails_without_writes(eng, "pool_gate", bad_cause)
    assert isinstance(err, ValidationError), repr(err)
    assert not await eng.pool_is_open("near")
    up = argv["agent_upsert"]
    for i, bad in ((5, "busy"), (3, "chat:chat=zero"), (3, "chat:chat=1")):
        args = list(up)
        args[i] = bad
        err = await _fails_without_writes(eng, "agent_upsert", [now, *args])
        assert isinstance(err, ValidationError), (bad, err)
    assert not await eng.redis.exists(eng.keys.agent("a9"))
    # and the well-formed call works
    r = await eng.scripts.run("agent_upsert", [eng.keys.anchor], [now, *up])
    assert r == [b"created", b"available"]


async def test_wrong_anchor_key_fails_without_writes(
    make_engine: EngineFactory, redis: Redis
) -> None:
    """A script given another tenant's (empty) anchor finds nothing and writes nothing."""
    eng = await make_engine()
    argv = await _stage(eng)
    ghost = eng.keys.anchor.replace(eng.tenant.id, eng.tenant.id + "x")
    ghost_pattern = eng.keys.pattern().replace(eng.tenant.id, eng.tenant.id + "x")
    before = await snapshot(eng)
    now = eng.clock.now_ms()
    for name in ("accept", "reject", "complete", "offer", "agent_status", "heartbeat"):
        with pytest.raises(SwitchboardError):
            await eng.scripts.run(name, [ghost], [now, *argv[name]])
    assert [k async for k in redis.scan_iter(match=ghost_pattern)] == []
    assert await snapshot(eng) == before


# -- SCRIPT FLUSH ---------------------------------------------------------------------------


async def test_engine_survives_script_flush(make_engine: EngineFactory, redis: Redis) -> None:
    clock = VirtualClock()
    eng = await make_engine(clock=clock)
    await eng.upsert_agent(agent("a1"), AgentStatus.AVAILABLE)
    sha = eng.scripts.sha("create_contact")
    await redis.script_flush()
    assert await redis.script_exists(sha) == [False]
    r = await eng.create_contact(voice(id="c1"))
    assert r.state is ContactState.RESERVED and r.agent == "a1"
    assert await redis.script_exists(sha) == [True]
    await redis.script_flush()
    await eng.accept("c1", "a1")
    await redis.script_flush()
    assert await eng.complete("c1", "a1") is ContactState.WRAP_UP
    await redis.script_flush()
    clock.advance(10)
    assert await eng.run_due_timers() >= 1
    assert (await eng.get_contact("c1")).state is ContactState.COMPLETED
    await redis.script_flush()
    # typed errors still come through after a reload
    with pytest.raises(InvalidState):
        await eng.accept("c1", "a1")
    types = [e["type"] for e in await events(eng)]
    assert types.count("contact.completed") == 1 and types.count("contact.assigned") == 1
