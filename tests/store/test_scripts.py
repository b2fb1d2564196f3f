"""Script calls: includes resolved, shared round trips, typed errors, NOSCRIPT reload."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from router.errors import ContactNotFound
from router.model import AgentStatus, NewContact
from router.store.scripts import SCRIPT_NAMES, script_source

from ..conftest import EngineFactory
from ..factories import agent


def test_every_script_has_a_header_and_resolves_its_includes() -> None:
    for name in SCRIPT_NAMES:
        src = script_source(name)
        assert not any(line.startswith("--!include") for line in src.splitlines()), name
        for part in ("KEYS[1]", "ARGV[1]", "Returns"):
            assert part in src, (name, part)
        assert src.count("local function raise(") == 1, name  # core.lua included once


async def test_concurrent_calls_share_round_trips_and_keep_their_own_replies(
    make_engine: EngineFactory,
) -> None:
    eng = await make_engine()
    news = [NewContact(channel="chat", queue="chat", id=f"k{i:03d}") for i in range(100)]
    results = await asyncio.gather(*(eng.create_contact(n) for n in news))
    assert [r.contact_id for r in results] == [n.id for n in news]
    # a mixed batch: the bad calls get their typed error, the good ones their reply
    calls = [eng.accept("nope", "a1"), eng.abandon("k001"), eng.abandon("k000")]
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(out[0], ContactNotFound) and out[1] is None and out[2] is None


async def test_script_cache_loss_mid_batch_is_recovered(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine()
    await eng.upsert_agent(agent("a1", capacity={"chat": 50}), AgentStatus.AVAILABLE)
    await redis.script_flush()
    news = [NewContact(channel="chat", queue="chat") for _ in range(40)]
    results = await asyncio.gather(*(eng.create_contact(n) for n in news))
    assert all(r.agent == "a1" for r in results)
    assert (await eng.get_agent("a1")).load == {"chat": 40}


async def test_connection_failure_reaches_every_caller_in_the_batch(
    make_engine: EngineFactory,
) -> None:
    eng = await make_engine()
    broken = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    from router.engine import Engine

    dead = Engine(broken, eng.tenant, eng.clock)
    calls = [dead.abandon(f"k{i}") for i in range(5)]
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(e, Exception) and not isinstance(e, ContactNotFound) for e in out)
    with pytest.raises(Exception):  # noqa: B017 - any connection error is right here
        await dead.abandon("k9")
    await broken.aclose()
