"""Stream trimming keeps memory bounded but never drops what a consumer group still needs."""

from __future__ import annotations

from redis.asyncio import Redis

from router.keys import TenantKeys
from router.maintenance import trim_stream

from .conftest import new_tenant_id


async def test_trim_without_groups_keeps_the_newest(redis: Redis) -> None:
    stream = TenantKeys(new_tenant_id()).events
    for i in range(3000):
        await redis.xadd(stream, {"i": i})
    removed = await trim_stream(redis, stream, max_len=1000)
    left = await redis.xlen(stream)
    assert removed == 3000 - left and 1000 <= left < 3000
    newest = await redis.xrevrange(stream, count=1)
    assert newest[0][1][b"i"] == b"2999"
    await redis.delete(stream)


async def test_trim_stops_at_the_slowest_group_and_its_pending(redis: Redis) -> None:
    stream = TenantKeys(new_tenant_id()).events
    ids = [await redis.xadd(stream, {"i": i}) for i in range(100)]
    await redis.xgroup_create(stream, "fast", id="0")
    await redis.xgroup_create(stream, "slow", id="0")
    fast = await redis.xreadgroup("fast", "c1", {stream: ">"}, count=100)
    await redis.xack(stream, "fast", *[mid for mid, _ in fast[0][1]])
    got = await redis.xreadgroup("slow", "c1", {stream: ">"}, count=40)
    # slow acknowledges the first 30 of the 40 it read; 30..39 stay pending
    await redis.xack(stream, "slow", *[mid for mid, _ in got[0][1][:30]])
    await trim_stream(redis, stream, max_len=1000)
    first = (await redis.xrange(stream, count=1))[0][0]
    assert first == ids[30], "entries pending for a group must survive"
    assert await redis.xlen(stream) == 70
    await redis.delete(stream)


async def test_trim_after_every_group_is_done_empties_the_stream(redis: Redis) -> None:
    stream = TenantKeys(new_tenant_id()).events
    for i in range(10):
        await redis.xadd(stream, {"i": i})
    await redis.xgroup_create(stream, "g", id="0")
    got = await redis.xreadgroup("g", "c", {stream: ">"}, count=10)
    await redis.xack(stream, "g", *[mid for mid, _ in got[0][1]])
    await trim_stream(redis, stream, max_len=1000)
    assert await redis.xlen(stream) == 0
    await redis.delete(stream)
