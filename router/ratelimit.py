"""Per-token request rate limits that hold across every server process.

The bucket lives in Redis (`rate_take.lua`), so N workers share one limit. To
keep Redis off the hot path, a process leases a few requests at a time (about
50 ms worth) and spends them locally; a refused lease is remembered until its
retry time, so a throttled client costs no Redis call per request either.
Unused leased requests lapse after `LEASE_MS`, which can only make the limit
slightly stricter, never looser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clock import Clock
from .keys import TenantKeys
from .store.scripts import Scripts

LEASE_MS = 1000
LEASE_SHARE_S = 0.05  # a lease holds this many seconds' worth of requests
MAX_LOCAL = 10_000  # leases kept in memory; the oldest are dropped beyond it


@dataclass
class _Lease:
    left: int
    until_ms: int  # leased requests lapse, or a refusal holds, until then
    refused: bool = False


class RateLimiter:
    def __init__(self, scripts: Scripts, clock: Clock) -> None:
        self._scripts = scripts
        self._clock = clock
        self._leases: dict[tuple[str, str], _Lease] = {}

    async def take(self, tenant: str, token_id: str, rate: float, burst: int) -> int | None:
        """None when the request may go ahead; else the milliseconds to wait."""
        now = self._clock.now_ms()
        key = (tenant, token_id)
        lease = self._leases.get(key)
        if lease is not None and now < lease.until_ms:
            if lease.refused:
                return lease.until_ms - now
            if lease.left > 0:
                lease.left -= 1
                return None
        want = max(1, min(burst, math.ceil(rate * LEASE_SHARE_S)))
        granted, retry_ms = await self._scripts.run(
            "rate_take", [TenantKeys(tenant).anchor], [now, token_id, rate, burst, want]
        )
        granted, retry_ms = int(granted), int(retry_ms)
        if len(self._leases) >= MAX_LOCAL and key not in self._leases:
            self._leases.pop(next(iter(self._leases)))
        if granted == 0:
            self._leases[key] = _Lease(0, now + max(1, retry_ms), refused=True)
            return max(1, retry_ms)
        self._leases[key] = _Lease(granted - 1, now + LEASE_MS)
        return None
