"""The vendor fields of the `vend` hash that change with time: each vendor's UTC
offset (its hours and days for max_per_hour, max_per_day and the volume
counters) and each outsourced pool's rank among the vendors (docs/vendors.md
"Cost and commitments").

Routing reads them in the offer scripts; the engine writes them when the
config is applied and then about once a minute of its clock, so they follow
DST changes, the progress of the day against a commitment, and the counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from .clock import Clock
from .config.model import PriceUnit, TenantConfig, VendorConfig
from .keys import TenantKeys

REFRESH_MS = 60_000
DAY_MS = 86_400_000


def utc_offset_ms(zone: str, now_ms: int) -> int:
    offset = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)


def day_number(zone: str, now_ms: int) -> int:
    """Whole days since 1970-01-01 of the vendor's local date (the `vd:` buckets)."""
    return (now_ms + utc_offset_ms(zone, now_ms)) // DAY_MS


def cost_per_contact(tenant: TenantConfig, vendor: VendorConfig) -> float:
    """Expected price of one contact in routing.cost_currency (inf: no price).
    A price per minute counts routing.expected_handle_s minutes per contact."""
    price = vendor.price
    if price is None:
        return math.inf
    routing = tenant.routing
    rate = 1.0
    if routing.cost_currency is not None and price.currency != routing.cost_currency:
        rate = routing.exchange_rates.get(price.currency, math.inf)
    amount = price.amount * rate
    if price.unit is PriceUnit.MINUTE:
        amount *= routing.expected_handle_s / 60
    return amount


@dataclass(frozen=True)
class Commitment:
    """A vendor's volume so far in its commitment's period, and what it should be
    by now if the commitment is spread evenly over the period."""

    volume: int
    due_by_now: float

    @property
    def shortfall(self) -> float:
        return max(0.0, self.due_by_now - self.volume)


def commitment_period(vendor: VendorConfig, now_ms: int) -> tuple[list[int], float, int]:
    """(day numbers of the period so far, share of the period elapsed, minimum)."""
    zone = ZoneInfo(vendor.timezone)
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    today = day_number(vendor.timezone, now_ms)
    day_share = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
    if vendor.min_per_month is not None:
        first = local.date().replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        days = (nxt - first).days
        start = today - (local.date() - first).days
        share = ((local.date() - first).days + day_share) / days
        return list(range(start, today + 1)), share, vendor.min_per_month
    return [today], day_share, vendor.min_per_day or 0


async def commitments(
    redis: Redis, keys: TenantKeys, tenant: TenantConfig, now_ms: int
) -> dict[str, Commitment]:
    """Vendor -> its commitment's progress, for vendors with min_per_day or
    min_per_month. Volume: contacts offered to its agents and not handed back."""
    plans = {
        vid: commitment_period(v, now_ms)
        for vid, v in tenant.vendors.items()
        if v.min_per_day is not None or v.min_per_month is not None
    }
    if not plans:
        return {}
    pipe = redis.pipeline(transaction=False)
    for vid, (days, _, _) in plans.items():
        # MGET as a raw command: a cluster pipeline refuses the mget helper
        pipe.execute_command("MGET", *[keys.vendor_day(vid, d) for d in days])
    out: dict[str, Commitment] = {}
    for (vid, (_, share, minimum)), counts in zip(plans.items(), await pipe.execute(), strict=True):
        volume = sum(int(c) for c in counts if c is not None)
        out[vid] = Commitment(volume, minimum * share)
    return out


def vendor_order(tenant: TenantConfig, progress: dict[str, Commitment]) -> list[str]:
    """Vendors in the order routing prefers them: those behind their commitment
    first (the furthest behind first, relative to the commitment), then by
    expected cost per contact, cheapest first; ties by id."""

    def key(vid: str) -> tuple[int, float, float, str]:
        v = tenant.vendors[vid]
        c = progress.get(vid)
        if c is not None and c.shortfall > 0:
            minimum = v.min_per_month or v.min_per_day or 1
            return (0, -c.shortfall / minimum, cost_per_contact(tenant, v), vid)
        return (1, 0.0, cost_per_contact(tenant, v), vid)

    return sorted(tenant.vendors, key=key)


async def state_fields(
    redis: Redis, keys: TenantKeys, tenant: TenantConfig, now_ms: int
) -> dict[str, str]:
    """`off:<vendor>` -> UTC offset in ms, `rank:<pool>` -> 1.. by vendor order."""
    out: dict[str, str] = {}
    for vid, v in tenant.vendors.items():
        out[f"off:{vid}"] = str(utc_offset_ms(v.timezone, now_ms))
    order = vendor_order(tenant, await commitments(redis, keys, tenant, now_ms))
    rank = {vid: i + 1 for i, vid in enumerate(order)}
    for pool in tenant.pools.values():
        if pool.vendor is not None and pool.vendor in rank:
            out[f"rank:{pool.id}"] = str(rank[pool.vendor])
    return out


class VendorState:
    """Keeps the time-dependent vendor fields current, on the engine's clock.
    `tenant` is read at each refresh: a reload's new contracts apply at once."""

    def __init__(
        self, redis: Redis, keys: TenantKeys, tenant: Callable[[], TenantConfig], clock: Clock
    ) -> None:
        self.redis, self.keys, self.tenant, self.clock = redis, keys, tenant, clock
        self.next_refresh = 0

    async def refresh(self, force: bool = False) -> None:
        now = self.clock.now_ms()
        tenant = self.tenant()
        if not tenant.vendors or (not force and now < self.next_refresh):
            return
        fields = await state_fields(self.redis, self.keys, tenant, now)
        if fields:
            await self.redis.hset(self.keys.vendor_config, mapping=fields)  # type: ignore[arg-type]
        self.next_refresh = now + REFRESH_MS
