"""Per-token request rate limits that hold across every server process.

The bucket lives in Redis (`rate_take.lua`), so N workers share one limit. To
keep Redis off the hot path, a process leases a few requests at a time (about
50 ms worth) and spends them locally; a refused lease is remembered until its
retry time, so a throttled client costs no Redis call per request either. One
lease call per token is in flight at a time: concurrent requests wait for it
instead of each draining the bucket. Unused leased requests lapse after
`LEASE_MS`, which can only make the limit slightly stricter, never looser.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from .clock import Clock
from .keys import TenantKeys
from .store.scripts import Scripts

LEASE_MS = 1000
LEASE_SHARE_S = 0.05  # a lease holds this many seconds' worth of requests
MAX_LOCAL = 10_000  # leases kept in memory; the oldest are dropped beyond it


@dataclass
class _Lease:
    left: int = 0
    until_ms: int = 0  # leased requests lapse, or a refusal holds, until then
    refused: bool = False
    pending: asyncio.Future[None] | None = field(default=None, repr=False)


class RateLimiter:
    def __init__(self, scripts: Scripts, clock: Clock) -> None:
        self._scripts = scripts
        self._clock = clock
        self._leases: dict[tuple[str, str], _Lease] = {}

    async def take(self, tenant: str, token_id: str, rate: float, burst: int) -> int | None:
        """None when the request may go ahead; else the milliseconds to wait."""
        key = (tenant, token_id)
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= MAX_LOCAL:
                self._leases.pop(next(iter(self._leases)))
            lease = self._leases[key] = _Lease()
        while True:
            now = self._clock.now_ms()
            if now < lease.until_ms:
                if lease.refused:
                    return lease.until_ms - now
                if lease.left > 0:
                    lease.left -= 1
                    return None
            if lease.pending is None:
                break
            await asyncio.shield(lease.pending)  # another request is leasing: share it
        lease.pending = asyncio.get_running_loop().create_future()
        try:
            want = max(1, min(burst, math.ceil(rate * LEASE_SHARE_S)))
            granted, retry_ms = await self._scripts.run(
                "rate_take", [TenantKeys(tenant).anchor], [now, token_id, rate, burst, want]
            )
            granted, retry_ms = int(granted), int(retry_ms)
            if granted == 0:
                lease.left, lease.until_ms, lease.refused = 0, now + max(1, retry_ms), True
                return max(1, retry_ms)
            lease.left = granted - 1  # what is left of a lapsed lease lapses with it
            lease.until_ms, lease.refused = now + LEASE_MS, False
            return None
        finally:
            pending, lease.pending = lease.pending, None
            if pending is not None and not pending.done():
                pending.set_result(None)
