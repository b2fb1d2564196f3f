"""A vendor's scorecard over a period: its pools' metrics beside its contract.

Every figure comes from the metric buckets the consumer writes (15-minute
intervals, router/metrics) and every formula from router/metrics/definitions.py,
so a scorecard says the same as /v1/metrics/history summed over the vendor's
pools. docs/vendors.md ("Scorecards") states each figure and its attribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .config.model import PriceUnit, TenantConfig, VendorConfig
from .engine import Engine
from .metrics import definitions as d

QUARTER_MS = 900_000  # the metrics' history intervals
# longest period: a calendar month in any zone (31 days, plus an hour of DST)
SCORECARD_MAX_MS = 32 * 86_400_000
# times a period may name: calendar arithmetic (next month, local days) stays in range
LATEST_MS = int(datetime(9999, 1, 1, tzinfo=UTC).timestamp() * 1000)
POOL_COUNTERS = (
    d.ANSWERED,
    d.ANSWERED_WITHIN,
    d.WAIT_MS,
    d.HANDLED,
    d.HANDLE_MS,
    *d.SURVEY_COUNTERS,
)


def month_bounds(zone: str, now_ms: int) -> tuple[int, int]:
    """[start, end) of the calendar month holding `now_ms` in `zone`."""
    tz = ZoneInfo(zone)
    local = datetime.fromtimestamp(now_ms / 1000, tz)
    first = datetime(local.year, local.month, 1, tzinfo=tz)
    nxt = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=tz)
    return int(first.timestamp() * 1000), int(nxt.timestamp() * 1000)


def local_days(zone: str, start_ms: int, end_ms: int) -> list[date]:
    """The calendar days in `zone` that [start_ms, end_ms) touches."""
    if end_ms <= start_ms:
        return []
    tz = ZoneInfo(zone)
    first = datetime.fromtimestamp(start_ms / 1000, tz).date()
    last = datetime.fromtimestamp((end_ms - 1) / 1000, tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def vendor_pools(tenant: TenantConfig, vendor: VendorConfig) -> list[str]:
    return [p.id for p in tenant.pools.values() if p.vendor == vendor.id]


def open_stages(tenant: TenantConfig, pools: Iterable[str]) -> list[tuple[str, int]]:
    """(queue, stage) pairs at which one of `pools` is eligible: where a waiting
    contact is open to the vendor, so its abandon or SLA breach counts against it."""
    ids = set(pools)
    return [
        (q.id, s)
        for q in tenant.queues.values()
        for s in range(len(q.stages))
        if ids.intersection(q.pools_at(s))
    ]


def _fields(pools: list[str], stages: list[tuple[str, int]]) -> list[str]:
    out = [f"p:{p}:{c}" for p in pools for c in POOL_COUNTERS]
    for q, s in stages:
        out += [f"q:{q}:{d.ABANDONED}.{s}", f"q:{q}:{d.BREACHES}.{s}"]
    return out


async def _sums(engine: Engine, fields: list[str], start: int, end: int) -> dict[str, int]:
    """The vendor's counters over the 15-minute intervals starting in [start, end),
    summed by counter name (pools together, stages together)."""
    first = start - start % QUARTER_MS
    starts = list(range(first, end, QUARTER_MS)) if end > start else []
    out: dict[str, int] = {}
    if not fields or not starts:
        return out
    pipe = engine.redis.pipeline(transaction=False)
    for s in starts:
        pipe.hmget(engine.keys.metrics_bucket("15m", s), fields)
    for row in await pipe.execute():
        for field, raw in zip(fields, row, strict=True):
            if raw is None:
                continue
            name = field.rpartition(":")[2].partition(".")[0]  # abn.2 -> abn
            out[name] = out.get(name, 0) + int(raw)
    return out


def _cost(vendor: VendorConfig, answered: int, handle_ms: int) -> dict[str, Any] | None:
    price = vendor.price
    if price is None:
        return None
    units = answered if price.unit is PriceUnit.CONTACT else handle_ms / 60_000
    return {"amount": round(price.amount * units, 2), "currency": price.currency}


def _volume(vendor: VendorConfig, c: dict[str, int], start: int, end: int) -> dict[str, Any]:
    """Answers (what caps and commitments count) beside the cap and the commitment
    over the period's local days (or months)."""
    days = local_days(vendor.timezone, start, end)
    months = {(x.year, x.month) for x in days}
    answered = c.get(d.ANSWERED, 0)
    per_day = vendor.caps.max_per_day
    if vendor.min_per_day is not None:
        commitment: int | None = vendor.min_per_day * len(days)
    elif vendor.min_per_month is not None:
        commitment = vendor.min_per_month * len(months)
    else:
        commitment = None
    return {
        "answered": answered,
        "handled": c.get(d.HANDLED, 0),
        "days": len(days),
        "cap": None if per_day is None else per_day * len(days),
        "commitment": commitment,
        "commitment_met": None if commitment is None else answered >= commitment,
    }


async def scorecard(
    engine: Engine, vendor: VendorConfig, start: int, end: int, only: str | None = None
) -> dict[str, Any]:
    """The GET /v1/vendors/{id}/scorecard document for [start, end); over the one
    pool `only` for a supervisor scoped to it (the vendor's other sites' figures
    would follow from the difference)."""
    tenant = engine.tenant
    pools = [only] if only is not None else vendor_pools(tenant, vendor)
    c = await _sums(engine, _fields(pools, open_stages(tenant, pools)), start, end)
    answered = c.get(d.ANSWERED, 0)
    abandoned = c.get(d.ABANDONED, 0)
    return {
        "vendor": vendor.id,
        "name": vendor.name or vendor.id,
        "from": start,
        "to": end,
        "timezone": vendor.timezone,
        "pools": pools,
        "volume": _volume(vendor, c, start, end),
        # each answer against its own queue's threshold (the pools' figure)
        "service_level": d.service_level(c.get(d.ANSWERED_WITHIN, 0), answered, 0, None),
        "service_level_target": vendor.sla_target,
        "asa_s": d.asa_s(c.get(d.WAIT_MS, 0), answered),
        "aht_s": d.aht_s(c.get(d.HANDLE_MS, 0), c.get(d.HANDLED, 0)),
        "abandoned": abandoned,
        "abandon_rate": d.abandon_rate(abandoned, answered + abandoned),
        **d.survey_figures(c),
        "cost": _cost(vendor, answered, c.get(d.HANDLE_MS, 0)),
        "sla_breaches": c.get(d.BREACHES, 0),
    }
