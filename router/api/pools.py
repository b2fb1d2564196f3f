"""Pools and vendors: who may take contacts, whether they are open now, and their
live load against the vendor contract's caps (docs/vendors.md).

Supervisors and admins read them. A supervisor token scoped to a pool sees that
pool, and in /v1/vendors only that pool's vendor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .. import pool_hours
from .. import vendors as v
from ..config.model import PoolConfig, Role, TenantConfig, VendorConfig
from ..engine import Engine
from ..metrics import definitions as d
from ..model import ContactState
from .auth import Principal, principal
from .context import engine_for
from .negotiate import respond

routes = web.RouteTableDef()

MINUTE_MS = 60_000  # the metrics' minute buckets ("this hour")
QUARTER_MS = 900_000  # and their 15-minute intervals ("today")
_LIVE = (ContactState.RESERVED.value, ContactState.ASSIGNED.value)


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def visible_pools(tenant: TenantConfig, who: Principal) -> list[PoolConfig]:
    """Admins and unscoped supervisors see every pool; a scoped token its own."""
    if Role.ADMIN in who.roles or who.pool is None:
        return list(tenant.pools.values())
    return [p for p in tenant.pools.values() if p.id == who.pool]


async def _concurrent(engine: Engine) -> dict[str, int]:
    """Pool -> contacts its agents hold reserved or assigned right now."""
    ids = await engine.agent_ids()
    pipe = engine.redis.pipeline(transaction=False)
    for aid in ids:
        pipe.hget(engine.keys.agent(aid), "pool")
        pipe.smembers(engine.keys.agent_contacts(aid))
    res = await pipe.execute()
    held: list[tuple[str, str]] = []
    for pool, contacts in zip(res[0::2], res[1::2], strict=True):
        if pool is not None:
            held.extend((_s(pool), _s(c)) for c in contacts)
    pipe = engine.redis.pipeline(transaction=False)
    for _, cid in held:
        pipe.hget(engine.keys.contact(cid), "state")
    out: dict[str, int] = {}
    for (pool, _), state in zip(held, await pipe.execute(), strict=True):
        if state is not None and _s(state) in _LIVE:
            out[pool] = out.get(pool, 0) + 1
    return out


async def _answered(engine: Engine, pools: Iterable[str], start: int, now: int, size: int) -> int:
    """Answers of `pools` counted by the metrics in the buckets of [start, now]."""
    fields = [f"p:{p}:{d.ANSWERED}" for p in pools]
    if not fields:
        return 0
    label = "1m" if size == MINUTE_MS else "15m"
    pipe = engine.redis.pipeline(transaction=False)
    for s in range(start - start % size, now + 1, size):
        pipe.hmget(engine.keys.metrics_bucket(label, s), fields)
    return sum(int(x) for row in await pipe.execute() for x in row if x is not None)


async def _counts(engine: Engine, pools: Iterable[PoolConfig], now: int) -> tuple[int, int]:
    """(this hour, today) answers of `pools`, in the zone of the first one's vendor."""
    group = list(pools)
    if not group:
        return 0, 0
    zone = v.zone_of(engine.tenant, group[0])
    ids = [p.id for p in group]
    hour, day = await asyncio.gather(
        _answered(engine, ids, v.hour_start(zone, now), now, MINUTE_MS),
        _answered(engine, ids, v.day_start(zone, now), now, QUARTER_MS),
    )
    return hour, day


async def _closed(engine: Engine) -> set[str]:
    """Pools closed by anything but their hours: an admin, a vendor pause, a failing
    vendor. The hours are read from the calendar at the request's time instead, so
    the answer does not wait for the timer loop's next tick to move the gate."""
    closed = sorted(_s(p) for p in await engine.redis.smembers(engine.keys.pools_closed))
    pipe = engine.redis.pipeline(transaction=False)
    for p in closed:
        pipe.smembers(engine.keys.pool_causes(p))
    causes = await pipe.execute() if closed else []
    return {p for p, held in zip(closed, causes, strict=True) if {_s(c) for c in held} != {"hours"}}


def _pool_json(
    tenant: TenantConfig,
    pool: PoolConfig,
    gate_open: bool,
    now: int,
    load: v.Load,
) -> dict[str, Any]:
    hours = pool_hours.hours_of(tenant, pool)
    return {
        "id": pool.id,
        "name": pool.name or pool.id,
        "kind": pool.kind.value,
        "vendor": pool.vendor,
        "location": None if pool.location is None else pool.location.value,
        "open": gate_open,
        # its own hours (a site), else its vendor's; the gate follows them
        "hours": {
            "calendar": None if hours is None else hours.id,
            "timezone": v.zone_of(tenant, pool) if hours is None else hours.timezone,
        },
        "open_now": gate_open and pool_hours.in_hours(tenant, pool, now),
        "load": load,
    }


@routes.get("/v1/pools")
async def list_pools(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    tenant = engine.tenant
    now = engine.clock.now_ms()
    pools = visible_pools(tenant, who)
    concurrent, closed = await asyncio.gather(_concurrent(engine), _closed(engine))
    counts = await asyncio.gather(*(_counts(engine, [p], now) for p in pools))
    out = []
    for pool, (hour, day) in zip(pools, counts, strict=True):
        vendor = v.vendor_of(tenant, pool)
        caps = None if vendor is None else vendor.caps
        load = v.load(caps, concurrent.get(pool.id, 0), hour, day)
        out.append(_pool_json(tenant, pool, pool.id not in closed, now, load))
    return respond(request, {"pools": out})


def _vendor_json(vendor: VendorConfig, pools: list[str], now: int, load: v.Load) -> dict[str, Any]:
    price = vendor.price
    return {
        "id": vendor.id,
        "name": vendor.name or vendor.id,
        "location": vendor.location.value,
        "timezone": vendor.timezone,
        "hours": vendor.hours,
        "open_now": v.in_hours(vendor, now),
        "channels": None if vendor.channels is None else list(vendor.channels),
        "queues": None if vendor.queues is None else list(vendor.queues),
        "caps": {
            "max_concurrent": vendor.caps.max_concurrent,
            "max_per_hour": vendor.caps.max_per_hour,
            "max_per_day": vendor.caps.max_per_day,
        },
        "commitment": {"min_per_day": vendor.min_per_day, "min_per_month": vendor.min_per_month},
        "price": None
        if price is None
        else {"amount": price.amount, "unit": price.unit.value, "currency": price.currency},
        "sla": {"target": vendor.sla_target, "threshold_s": vendor.sla_threshold_s},
        "region": vendor.region,
        "visibility": {
            "email": vendor.visibility.email.value,
            "phone": vendor.visibility.phone.value,
            "hide": list(vendor.visibility.hide),
        },
        "pools": pools,
        "load": load,
    }


def _pools_by_vendor(tenant: TenantConfig) -> Mapping[str, list[PoolConfig]]:
    out: dict[str, list[PoolConfig]] = {vid: [] for vid in tenant.vendors}
    for p in tenant.pools.values():
        if p.vendor is not None and p.vendor in out:
            out[p.vendor].append(p)
    return out


@routes.get("/v1/vendors")
async def list_vendors(request: web.Request) -> web.Response:
    """Each vendor's contract, its pools, and its load over all of them (the caps
    are the vendor's, shared by its pools)."""
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    tenant = engine.tenant
    now = engine.clock.now_ms()
    visible = {p.id for p in visible_pools(tenant, who)}
    scoped = Role.ADMIN not in who.roles and who.pool is not None
    by_vendor = _pools_by_vendor(tenant)
    shown = [
        vendor
        for vendor in tenant.vendors.values()
        if not scoped or any(p.id in visible for p in by_vendor[vendor.id])
    ]
    # a scoped token's load covers its own site only: the vendor-wide figure
    # minus its own would reveal the other sites'
    seen = {x.id: [p for p in by_vendor[x.id] if p.id in visible] for x in shown}
    concurrent = await _concurrent(engine)
    counts = await asyncio.gather(*(_counts(engine, seen[x.id], now) for x in shown))
    out = []
    for vendor, (hour, day) in zip(shown, counts, strict=True):
        pools = seen[vendor.id]
        busy = sum(concurrent.get(p.id, 0) for p in pools)
        out.append(
            _vendor_json(vendor, [p.id for p in pools], now, v.load(vendor.caps, busy, hour, day))
        )
    return respond(request, {"vendors": out})
