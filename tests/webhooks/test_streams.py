"""router/streams.py: the consumer-group reader every stream consumer builds on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import (
    BusyLoadingError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from router.keys import TenantKeys
from router.server.embedded import EmbeddedValkey
from router.streams import Entry, Handler, Stalled, StreamConsumer

from ..conftest import drop_tenant, new_tenant_id


@pytest.fixture
async def stream(redis: Redis) -> AsyncIterator[str]:
    tid = new_tenant_id()
    yield TenantKeys(tid).events
    await drop_tenant(redis, tid)


async def _add(redis: Redis, stream: str, n: int) -> list[str]:
    ids = [await redis.xadd(stream, {"type": "x.y", "n": str(i)}) for i in range(n)]
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


async def test_new_entries_then_nothing(redis: Redis, stream: str) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", batch=2)
    await c.ensure_group()
    await c.ensure_group()  # idempotent
    ids = await _add(redis, stream, 3)
    seen: list[Entry] = []

    async def handle(entries: list[Entry]) -> None:
        seen.extend(entries)
        await c.ack([e.id for e in entries])

    assert await c.poll(handle) == 2
    assert await c.poll(handle) == 1
    assert await c.poll(handle) == 0
    assert [e.id for e in seen] == ids
    assert seen[0].type == "x.y" and seen[0].fields["n"] == "0"


async def test_a_failed_handler_gets_the_same_entries_again_first(
    redis: Redis, stream: str
) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", batch=10)
    await c.ensure_group()
    ids = await _add(redis, stream, 2)
    calls: list[list[str]] = []

    async def flaky(entries: list[Entry]) -> None:
        calls.append([e.id for e in entries])
        if len(calls) == 1:
            raise RuntimeError("boom")
        await c.ack([e.id for e in entries])

    with pytest.raises(RuntimeError):
        await c.poll(flaky)
    await _add(redis, stream, 1)
    assert await c.poll(flaky) == 2  # the pending ones, before the new one
    assert calls[1] == ids
    assert await c.poll(flaky) == 1


async def test_entries_trimmed_while_pending_are_acknowledged_and_skipped(
    redis: Redis, stream: str
) -> None:
    c = StreamConsumer(redis, stream, "g", "c1")
    await c.ensure_group()
    ids = await _add(redis, stream, 2)
    assert len(await c.read()) == 2  # pending now
    await redis.xdel(stream, ids[0])
    c.reread_pending()
    again = await c.read()
    assert [e.id for e in again] == [ids[1]]
    pending = await redis.xpending(stream, "g")
    assert pending["pending"] == 1


@pytest.mark.parametrize("block_ms", [0, 5000])
async def test_run_delivers_and_stops_promptly(redis: Redis, stream: str, block_ms: int) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", block_ms=block_ms, idle_s=0.5)
    stop = asyncio.Event()
    got: list[Entry] = []

    async def handle(entries: list[Entry]) -> None:
        got.extend(entries)
        await c.ack([e.id for e in entries])

    task = asyncio.create_task(c.run(handle, stop))
    await asyncio.sleep(0.1)
    await _add(redis, stream, 1)
    async with asyncio.timeout(2):
        while not got:
            await asyncio.sleep(0.01)
    started = time.perf_counter()
    stop.set()
    await task
    assert time.perf_counter() - started < 0.5


async def test_run_makes_the_group_again_when_the_stream_is_deleted(
    redis: Redis, stream: str
) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", idle_s=0.01)
    stop = asyncio.Event()
    got: list[Entry] = []

    async def handle(entries: list[Entry]) -> None:
        got.extend(entries)
        await c.ack([e.id for e in entries])

    task = asyncio.create_task(c.run(handle, stop))
    try:
        async with asyncio.timeout(2):
            while not await redis.exists(stream):
                await asyncio.sleep(0.01)
        await redis.delete(stream)  # group and all
        async with asyncio.timeout(5):
            while not await redis.exists(stream):
                await asyncio.sleep(0.01)
        await _add(redis, stream, 1)
        async with asyncio.timeout(5):
            while not got:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def test_an_entry_the_handler_always_fails_on_is_parked_and_the_rest_go_on(
    redis: Redis, stream: str
) -> None:
    parked_key = stream.removesuffix("events") + "parked:g"
    assert parked_key == TenantKeys(stream.split("{")[1].split("}")[0]).stream_parked("g")
    c = StreamConsumer(redis, stream, "g", "c1", batch=10, parked_key=parked_key)
    await c.ensure_group()
    ids = await _add(redis, stream, 8)
    bad = ids[3]
    handled: list[str] = []
    failures = 0

    async def handle(entries: list[Entry]) -> None:  # one script per batch: all or nothing
        nonlocal failures
        if any(e.id == bad for e in entries):
            failures += 1
            raise RuntimeError("bad entry")
        handled.extend(e.id for e in entries)
        await c.ack([e.id for e in entries])

    for _ in range(30):
        try:
            await c.poll(handle)
        except RuntimeError:
            continue
        if c.parked:
            break
    assert c.parked == 1
    assert failures == 10  # 5 with its batch, then 5 on its own
    while await c.poll(handle):
        pass
    assert sorted(handled) == sorted(i for i in ids if i != bad)  # each exactly once
    assert (await redis.xpending(stream, "g"))["pending"] == 0
    [record] = await c.parked_entries()
    assert record == {"id": bad, "type": "x.y", "error": "RuntimeError: bad entry", "failures": 5}
    new = await _add(redis, stream, 1)  # the group goes on
    assert await c.poll(handle) == 1 and handled[-1] == new[0]


async def test_redis_being_unavailable_never_parks_entries(redis: Redis, stream: str) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", parked_key=stream + "-parked", max_failures=2)
    await c.ensure_group()
    await _add(redis, stream, 1)

    async def down(entries: list[Entry]) -> None:
        raise RedisConnectionError("connection refused")

    for _ in range(10):
        with pytest.raises(RedisConnectionError):
            await c.poll(down)
    assert c.parked == 0 and await c.parked_entries() == []
    assert (await redis.xpending(stream, "g"))["pending"] == 1


@pytest.mark.parametrize(
    "error",
    [
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica."),
        BusyLoadingError("Redis is loading the dataset in memory"),
        MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_typed_server_errors_never_park_entries(
    redis: Redis, stream: str, error: Exception
) -> None:
    """redis-py strips the code (OOM, READONLY...) from the message: the class tells."""
    c = StreamConsumer(redis, stream, "g", "c1", parked_key=stream + "-parked", max_failures=2)
    await c.ensure_group()
    await _add(redis, stream, 2)

    async def failing(entries: list[Entry]) -> None:
        raise error

    for _ in range(12):
        with pytest.raises(type(error)):
            await c.poll(failing)
    assert c.parked == 0 and await c.parked_entries() == []
    assert (await redis.xpending(stream, "g"))["pending"] == 2


async def test_a_real_out_of_memory_server_never_parks_entries(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path)
    server.start()
    r = Redis.from_url(server.url)
    try:
        stream = TenantKeys("oom").events
        c = StreamConsumer(r, stream, "g", "c1", parked_key=stream + "-parked", max_failures=2)
        await c.ensure_group()
        await _add(r, stream, 1)

        async def write(entries: list[Entry]) -> None:
            await r.hset("applied", mapping={e.id: "1" for e in entries})
            await c.ack([e.id for e in entries])

        await r.config_set("maxmemory", 1)  # noeviction: every denyoom write is refused
        try:
            for _ in range(8):
                with pytest.raises(OutOfMemoryError):
                    await c.poll(write)
        finally:
            await r.config_set("maxmemory", 0)
        assert c.parked == 0 and await c.parked_entries() == []
        assert await c.poll(write) == 1  # memory back: the entry goes through
        assert await r.hlen("applied") == 1
    finally:
        await r.aclose()
        server.stop()


async def _poll_until_stalled(c: StreamConsumer, handle: Handler, tries: int = 60) -> None:
    for _ in range(tries):
        try:
            await c.poll(handle)
        except Stalled:
            return
        except RuntimeError:
            continue
    raise AssertionError("never stalled")


async def test_when_every_entry_fails_nothing_is_parked_and_it_resumes_once_fixed(
    redis: Redis, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = StreamConsumer(
        redis, stream, "g", "c1", batch=10, max_failures=2, parked_key=stream + "-parked"
    )
    await c.ensure_group()
    ids = await _add(redis, stream, 3)
    broken = True
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:  # e.g. a corrupt subscription
        if broken:
            raise RuntimeError("corrupt configuration")
        handled.extend(e.id for e in entries)
        await c.ack([e.id for e in entries])

    caplog.set_level(logging.ERROR, "switchboard.streams")
    await _poll_until_stalled(c, handle)
    await _poll_until_stalled(c, handle)  # again after the wait: still nothing parked
    assert c.stalls == 2 and c.parked == 0 and await c.parked_entries() == []
    assert (await redis.xpending(stream, "g"))["pending"] == 3
    stalled = [m for m in caplog.messages if "stalled" in m]
    assert len(stalled) == 1 and "corrupt configuration" in stalled[0]  # rate-limited
    broken = False
    while await c.poll(handle):
        pass
    assert sorted(handled) == ids and c.parked == 0
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_a_lone_failing_entry_is_parked_once_a_later_one_goes_through(
    redis: Redis, stream: str
) -> None:
    c = StreamConsumer(redis, stream, "g", "c1", max_failures=2, parked_key=stream + "-parked")
    await c.ensure_group()
    [bad] = await _add(redis, stream, 1)
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        if any(e.id == bad for e in entries):
            raise RuntimeError("bad entry")
        handled.extend(e.id for e in entries)
        await c.ack([e.id for e in entries])

    await _poll_until_stalled(c, handle)  # alone, nothing to compare with: not parked
    assert c.parked == 0
    good = await _add(redis, stream, 2)
    for _ in range(20):
        with contextlib.suppress(RuntimeError, Stalled):
            await c.poll(handle)
        if c.parked:
            break
    assert c.parked == 1 and [p["id"] for p in await c.parked_entries()] == [bad]
    while await c.poll(handle):
        pass
    assert handled == good
    assert (await redis.xpending(stream, "g"))["pending"] == 0
