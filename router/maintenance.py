"""Keeping memory bounded under `noeviction`: stream trimming.

Contacts and idempotency keys carry TTLs set by the scripts. The event stream
is trimmed here, and only past what every consumer group has read and
acknowledged, so no consumer ever loses an event it has not processed.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def safe_trim_id(redis: Redis, stream: str) -> str | None:
    """The lowest id some consumer group still needs, or None when there is no group."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return None  # no stream yet
    if not groups:
        return None
    needed: list[tuple[int, int]] = []
    for g in groups:
        last = _id_tuple(_s(g["last-delivered-id"]))
        # the first entry after the last delivered one is still needed
        needed.append((last[0], last[1] + 1))
        if int(g.get("pending", 0)) > 0:
            summary = await redis.xpending(stream, _s(g["name"]))
            if summary and summary.get("min"):
                needed.append(_id_tuple(_s(summary["min"])))
    ms, seq = min(needed)
    return f"{ms}-{seq}"


async def trim_stream(redis: Redis, stream: str, max_len: int) -> int:
    """Trim the stream. With consumer groups: only entries every group is done with.
    Without any group: keep the newest `max_len` entries. Returns entries removed."""
    min_id = await safe_trim_id(redis, stream)
    if min_id is None:
        return int(await redis.xtrim(stream, maxlen=max_len, approximate=True))
    return int(await redis.xtrim(stream, minid=min_id, approximate=False))
