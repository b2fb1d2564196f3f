"""Readiness: is the Redis server there, and how much memory is left before it refuses writes.

Switchboard runs Redis under `maxmemory-policy noeviction`: when `used_memory`
reaches `maxmemory`, every write fails with OOM, which means contacts cannot
be created or routed. `/readyz` reports the headroom and turns unready at a
configurable share of the limit (default 90 %), so a load balancer or an
operator's alert sees it coming before writes start failing.

With no `maxmemory` set, the limit that matters is the machine's memory
(`total_system_memory`), where the kernel's OOM killer would end the server
instead; the report then says so in `limit_source`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

DEFAULT_READY_MEMORY_RATIO = 0.9


@dataclass(frozen=True)
class MemoryHeadroom:
    used_bytes: int
    limit_bytes: int | None  # None: neither maxmemory nor the system's memory is known
    limit_source: str  # "maxmemory", "system" or "unknown"
    policy: str
    fail_at_ratio: float

    @property
    def used_ratio(self) -> float | None:
        if not self.limit_bytes:
            return None
        return self.used_bytes / self.limit_bytes

    @property
    def headroom_bytes(self) -> int | None:
        if not self.limit_bytes:
            return None
        return max(0, self.limit_bytes - self.used_bytes)

    @property
    def ok(self) -> bool:
        ratio = self.used_ratio
        return ratio is None or ratio < self.fail_at_ratio

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        ratio = self.used_ratio
        out.update(
            used_ratio=None if ratio is None else round(ratio, 4),
            headroom_bytes=self.headroom_bytes,
            ok=self.ok,
        )
        return out


def _int(info: dict[str, Any], key: str) -> int:
    try:
        return int(info.get(key) or 0)
    except (TypeError, ValueError):
        return 0


async def memory_headroom(
    redis: Redis, fail_at_ratio: float = DEFAULT_READY_MEMORY_RATIO
) -> MemoryHeadroom:
    """Read `INFO memory` once (cheap: no key scan) and judge the headroom."""
    info: dict[str, Any] = await redis.info("memory")
    used = _int(info, "used_memory")
    maxmemory = _int(info, "maxmemory")
    system = _int(info, "total_system_memory")
    policy = str(info.get("maxmemory_policy", "unknown"))
    if maxmemory > 0:
        limit: int | None = maxmemory
        source = "maxmemory"
    elif system > 0:
        limit, source = system, "system"
    else:
        limit, source = None, "unknown"
    return MemoryHeadroom(used, limit, source, policy, fail_at_ratio)
