"""Loading `[vendors.<id>]` (vendor contracts) and linking pools to their vendor.

Kept apart from `loader.py`; it uses the same `_Loader` primitives, so every
error still reads `<file>: <key path>: <problem>`. docs/vendors.md describes
every key.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from . import metrics as metrics_section
from . import sla as sla_section
from .model import (
    CalendarConfig,
    Location,
    PoolConfig,
    PoolKind,
    PriceUnit,
    QueueConfig,
    RoutingConfig,
    VendorCaps,
    VendorConfig,
    VendorPrice,
    Visibility,
    VisibilityPolicy,
)

if TYPE_CHECKING:
    from .loader import _Loader

VENDOR_KEYS = (
    "name",
    "location",
    "timezone",
    "hours",
    "channels",
    "queues",
    "max_concurrent",
    "max_per_hour",
    "max_per_day",
    "min_per_day",
    "min_per_month",
    "price_per_contact",
    "price_per_minute",
    "currency",
    "sla_target",
    "sla_threshold_s",
    "region",
    "visibility",
    "fail_after_timeouts",
    "fail_pause_s",
)
VISIBILITY_KEYS = ("email", "phone", "hide")
MAX_FAIL_AFTER = 16
_CURRENCY = re.compile(r"[A-Z]{3}\Z")
_REGION = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+\Z")
_SLUG = re.compile(r"[^a-z0-9]+")


def _key(path: str, key: str) -> str:
    """Append a key the way TOML would spell it (quoted when not bare), like loader.py."""
    part = key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
    return f"{path}.{part}" if path else part


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values) or "(none)"


def vendors(
    ld: _Loader,
    value: object,
    path: str,
    *,
    tenant_zone: str,
    channels: tuple[str, ...],
    queues: tuple[str, ...],
    calendars: Mapping[str, CalendarConfig],
    raw_calendars: object,
) -> dict[str, VendorConfig]:
    """Every `[vendors.<id>]` of a tenant. `raw_calendars` (the TOML as written)
    tells a calendar that sets its own time zone from one that takes the default."""
    raw_cal = raw_calendars if isinstance(raw_calendars, dict) else {}
    out: dict[str, VendorConfig] = {}
    for raw_id, raw in ld.table(value, path).items():
        p = _key(path, raw_id)
        vid = ld.ident(raw_id, p, "vendor")
        out[vid] = vendor(ld, vid, raw, p, tenant_zone, channels, queues, calendars, raw_cal)
    return out


def vendor(
    ld: _Loader,
    vid: str,
    value: object,
    path: str,
    tenant_zone: str,
    channels: tuple[str, ...],
    queues: tuple[str, ...],
    calendars: Mapping[str, CalendarConfig],
    raw_calendars: Mapping[str, object],
) -> VendorConfig:
    t = ld.table(value, path)
    ld.keys(t, path, VENDOR_KEYS)
    lpath = _key(path, "location")
    if "location" not in t:
        ld.fail(lpath, f"required: one of {', '.join(m.value for m in Location)}")
    location = ld.choice(t["location"], lpath, Location)

    hours: str | None = None
    calendar: CalendarConfig | None = None
    zone: str | None = None
    if "timezone" in t:
        zone = metrics_section.zone(ld, t["timezone"], _key(path, "timezone"))
    if "hours" in t:
        hpath = _key(path, "hours")
        hours = ld.string(t["hours"], hpath)
        if hours not in calendars:
            ld.fail(hpath, f"unknown calendar {hours!r}; defined calendars: {_choices(calendars)}")
        calendar = calendars[hours]
        raw = raw_calendars.get(hours)
        own_zone = isinstance(raw, dict) and "timezone" in raw
        if zone is None:
            zone = calendar.timezone
        elif own_zone and calendar.timezone != zone:
            ld.fail(
                _key(path, "timezone"),
                f"{zone!r} differs from the time zone of calendar {hours!r} "
                f"({calendar.timezone!r}); leave one of them out, or make them agree",
            )
        else:
            # a calendar without its own zone is read in the vendor's: one "9 to 5"
            # calendar can serve vendors in several time zones
            calendar = dataclasses.replace(calendar, timezone=zone)
    if zone is None:
        zone = tenant_zone

    served_channels: tuple[str, ...] | None = None
    if "channels" in t:
        served_channels = ld.channel_list(
            t["channels"], _key(path, "channels"), channels, non_empty=True
        )
    served_queues: tuple[str, ...] | None = None
    if "queues" in t:
        served_queues = _queue_list(ld, t["queues"], _key(path, "queues"), queues)

    caps = VendorCaps(
        max_concurrent=_opt_count(ld, t, path, "max_concurrent"),
        max_per_hour=_opt_count(ld, t, path, "max_per_hour"),
        max_per_day=_opt_count(ld, t, path, "max_per_day"),
    )
    hour_cap, day_cap = caps.max_per_hour, caps.max_per_day
    if hour_cap is not None and day_cap is not None and hour_cap > day_cap:
        ld.fail(_key(path, "max_per_hour"), f"must not be greater than max_per_day ({day_cap})")

    if "min_per_day" in t and "min_per_month" in t:
        ld.fail(_key(path, "min_per_month"), "use either min_per_day or min_per_month, not both")
    min_day = _opt_count(ld, t, path, "min_per_day")
    min_month = _opt_count(ld, t, path, "min_per_month")
    if min_day is not None and caps.max_per_day is not None and min_day > caps.max_per_day:
        ld.fail(
            _key(path, "min_per_day"),
            f"must not be greater than max_per_day ({caps.max_per_day}): the commitment "
            "could never be met",
        )

    price = _price(ld, t, path)

    sla_target: float | None = None
    if "sla_target" in t:
        sla_target = sla_section.share(
            ld, t["sla_target"], _key(path, "sla_target"), allow_one=True
        )
    sla_threshold: float | None = None
    if "sla_threshold_s" in t:
        if sla_target is None:
            ld.fail(_key(path, "sla_threshold_s"), "only allowed with sla_target")
        sla_threshold = ld.opt_number(t, path, "sla_threshold_s", 0.0, gt=0)

    region: str | None = None
    if "region" in t:
        rpath = _key(path, "region")
        region = ld.string(t["region"], rpath)
        if _REGION.match(region) is None:
            ld.fail(
                rpath,
                f"bad region {region!r}: 1-32 characters of a-z 0-9 - starting with a "
                'letter, e.g. "eu"',
            )

    visibility = VisibilityPolicy()
    if "visibility" in t:
        visibility = _visibility(ld, t["visibility"], _key(path, "visibility"))

    fail_after = ld.opt_int(t, path, "fail_after_timeouts", VendorConfig.fail_after_timeouts, ge=0)
    if fail_after > MAX_FAIL_AFTER:
        # the contacts a vendor timed out on are looked past by its agents, within
        # a bounded window (lib/core.lua find_contact): keep them few
        ld.fail(_key(path, "fail_after_timeouts"), f"must be <= {MAX_FAIL_AFTER}")
    fail_pause = ld.opt_number(t, path, "fail_pause_s", VendorConfig.fail_pause_s, gt=0)

    name = ld.opt_string(t, path, "name")
    return VendorConfig(
        id=vid,
        location=location,
        name=name or vid,
        timezone=zone,
        hours=hours,
        calendar=calendar,
        channels=served_channels,
        queues=served_queues,
        caps=caps,
        min_per_day=min_day,
        min_per_month=min_month,
        price=price,
        sla_target=sla_target,
        sla_threshold_s=sla_threshold,
        region=region,
        visibility=visibility,
        fail_after_timeouts=fail_after,
        fail_pause_s=fail_pause,
    )


def _opt_count(ld: _Loader, t: Mapping[str, object], path: str, key: str) -> int | None:
    """A cap or a commitment: a whole number >= 1, or absent."""
    return ld.opt_int(t, path, key, 0, ge=1) if key in t else None


def _queue_list(ld: _Loader, value: object, path: str, queues: tuple[str, ...]) -> tuple[str, ...]:
    items = ld.array(value, path)
    if not items:
        ld.fail(path, "must list at least one queue (leave the key out for every queue)")
    out: list[str] = []
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        qid = ld.string(item, p)
        if qid not in queues:
            ld.fail(p, f"unknown queue {qid!r}; defined queues: {_choices(queues)}")
        if qid in out:
            ld.fail(p, f"queue {qid!r} is listed twice")
        out.append(qid)
    return tuple(out)


def _price(ld: _Loader, t: Mapping[str, object], path: str) -> VendorPrice | None:
    if "price_per_contact" in t and "price_per_minute" in t:
        ld.fail(
            _key(path, "price_per_minute"),
            "use either price_per_contact or price_per_minute, not both",
        )
    currency = "EUR"
    if "currency" in t:
        cpath = _key(path, "currency")
        if "price_per_contact" not in t and "price_per_minute" not in t:
            ld.fail(cpath, "only allowed with price_per_contact or price_per_minute")
        currency = ld.string(t["currency"], cpath)
        if _CURRENCY.match(currency) is None:
            ld.fail(cpath, f"must be an ISO 4217 code of 3 capital letters, got {currency!r}")
    for key, unit in (
        ("price_per_contact", PriceUnit.CONTACT),
        ("price_per_minute", PriceUnit.MINUTE),
    ):
        if key in t:
            return VendorPrice(ld.opt_nonneg(t, path, key, 0.0), unit, currency)
    return None


def _visibility(ld: _Loader, value: object, path: str) -> VisibilityPolicy:
    t = ld.table(value, path)
    ld.keys(t, path, VISIBILITY_KEYS)
    d = VisibilityPolicy()
    email = ld.choice(t["email"], _key(path, "email"), Visibility) if "email" in t else d.email
    phone = ld.choice(t["phone"], _key(path, "phone"), Visibility) if "phone" in t else d.phone
    hide: list[str] = []
    if "hide" in t:
        hpath = _key(path, "hide")
        for i, item in enumerate(ld.array(t["hide"], hpath)):
            p = f"{hpath}[{i}]"
            name = ld.string(item, p)
            if _ATTRIBUTE.match(name) is None:
                ld.fail(p, f"bad attribute name {name!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
            if name in hide:
                ld.fail(p, f"attribute {name!r} is listed twice")
            hide.append(name)
    return VisibilityPolicy(email=email, phone=phone, hide=tuple(hide))


def _slug(name: str) -> str:
    return _SLUG.sub("-", name.lower()).strip("-")[:64] or "vendor"


def link_pools(
    ld: _Loader,
    pools: Mapping[str, PoolConfig],
    raw_pools: object,
    path: str,
    vendors_: Mapping[str, VendorConfig],
    vendors_path: str,
) -> dict[str, PoolConfig]:
    """Each outsourced pool names a declared vendor; its location defaults to the
    vendor's and may not contradict it. `raw_pools` tells a written location from
    none."""
    raw = raw_pools if isinstance(raw_pools, dict) else {}
    out: dict[str, PoolConfig] = {}
    for pid, pool in pools.items():
        if pool.kind is not PoolKind.OUTSOURCED or pool.vendor is None:
            out[pid] = pool
            continue
        ppath = _key(path, pid)
        v = vendors_.get(pool.vendor)
        if v is None:
            known = f"known vendors: {_choices(vendors_)}" if vendors_ else "no vendor is declared"
            slug = _slug(pool.vendor)
            ld.fail(
                _key(ppath, "vendor"),
                f"unknown vendor {pool.vendor!r} ({known}); a pool's vendor is the id of a "
                f"[{vendors_path}.<id>] table holding its contract: declare e.g. "
                f'[{_key(vendors_path, slug)}] with name = "{pool.vendor}" and location, '
                f'then write vendor = "{slug}"',
            )
        written = raw.get(pid, {})
        location = pool.location
        if location is None:
            location = v.location
        elif isinstance(written, dict) and "location" in written and location is not v.location:
            ld.fail(
                _key(ppath, "location"),
                f"{location.value!r} contradicts vendor {v.id!r}'s location "
                f"({v.location.value!r}); leave it out to take the vendor's",
            )
        out[pid] = dataclasses.replace(pool, location=location)
    return out


def pool_regions(
    ld: _Loader, t: Mapping[str, object], path: str, kind: PoolKind
) -> tuple[str, ...] | None:
    """An in-house pool's `regions`: the data-residency regions it may serve (None:
    every region). An outsourced pool serves its vendor's `region` only."""
    if "regions" not in t:
        return None
    rpath = _key(path, "regions")
    if kind is PoolKind.OUTSOURCED:
        ld.fail(
            rpath,
            "only allowed for in-house pools; an outsourced pool serves its vendor's "
            "region (vendors.<id>.region)",
        )
    out: list[str] = []
    for i, item in enumerate(ld.array(t["regions"], rpath)):
        p = f"{rpath}[{i}]"
        region = ld.string(item, p)
        if _REGION.match(region) is None:
            ld.fail(
                p,
                f"bad region {region!r}: 1-32 characters of a-z 0-9 - starting with a "
                'letter, e.g. "eu"',
            )
        if region in out:
            ld.fail(p, f"region {region!r} is listed twice")
        out.append(region)
    return tuple(out)


def check_contracts(
    ld: _Loader,
    queues: Mapping[str, QueueConfig],
    raw_queues: object,
    queues_path: str,
    pools: Mapping[str, PoolConfig],
    vendors_: Mapping[str, VendorConfig],
    vendors_path: str,
) -> None:
    """A queue may list a vendor's pool only when the vendor's contract covers the
    queue (its `queues`): otherwise the pool could never take its contacts."""
    raw = raw_queues if isinstance(raw_queues, dict) else {}
    for qid, queue in queues.items():
        for k, stage in enumerate(queue.stages):
            for i, pid in enumerate(stage.pools):
                pool = pools.get(pid)
                v = vendors_.get(pool.vendor) if pool and pool.vendor else None
                if v is None or v.queues is None or qid in v.queues:
                    continue
                ld.fail(
                    _stage_pool_path(raw.get(qid), _key(queues_path, qid), k, i),
                    f"pool {pid} is run by vendor {v.id}, whose contract does not cover "
                    f"queue {qid} ({_key(_key(vendors_path, v.id), 'queues')})",
                )


def check_currencies(
    ld: _Loader,
    routing: RoutingConfig,
    vendors_: Mapping[str, VendorConfig],
    vendors_path: str,
    body_path: str,
) -> None:
    """Routing prefers the cheapest vendor, so prices in several currencies need
    `routing.cost_currency` and a rate for every other currency."""
    priced = [v for v in vendors_.values() if v.price is not None]
    currencies = {v.price.currency for v in priced if v.price is not None}
    base = routing.cost_currency
    if base is None:
        if len(currencies) > 1:
            ld.fail(
                _key(body_path, "routing"),
                f"vendor prices are in {', '.join(sorted(currencies))}: set cost_currency "
                "and exchange_rates so routing can compare them",
            )
        return
    for v in priced:
        cur = v.price.currency if v.price is not None else base
        if cur != base and cur not in routing.exchange_rates:
            ld.fail(
                _key(_key(vendors_path, v.id), "currency"),
                f"{cur} has no rate in routing.exchange_rates (units of {base} per {cur})",
            )


def _stage_pool_path(raw_queue: object, qpath: str, stage: int, i: int) -> str:
    """Where stage `stage`'s pool `i` is written: `stages[k].pools[i]`, or the
    `pools` + `overflow` spelling."""
    if isinstance(raw_queue, dict) and "stages" in raw_queue:
        return f"{qpath}.stages[{stage}].pools[{i}]"
    if stage == 0:
        return f"{qpath}.pools[{i}]"
    return f"{qpath}.overflow[{stage - 1}].pools[{i}]"


def pool_hours(ld: _Loader, t: Mapping[str, object], path: str, kind: PoolKind) -> str | None:
    """An outsourced pool's own `hours` (a calendar id, checked by `link_pool_hours`):
    a site keeps its own hours when its vendor runs sites in several time zones."""
    if "hours" not in t:
        return None
    hpath = _key(path, "hours")
    if kind is not PoolKind.OUTSOURCED:
        ld.fail(
            hpath,
            'only allowed when kind = "outsourced"; an in-house pool follows its queues\' hours',
        )
    return ld.string(t["hours"], hpath)


def link_pool_hours(
    ld: _Loader,
    pools: Mapping[str, PoolConfig],
    path: str,
    vendors_: Mapping[str, VendorConfig],
    calendars: Mapping[str, CalendarConfig],
    raw_calendars: object,
) -> dict[str, PoolConfig]:
    """Resolve each pool's `hours` to its calendar. A calendar that sets no time zone
    of its own is read in the vendor's, as for the vendor's own hours."""
    raw_cal = raw_calendars if isinstance(raw_calendars, dict) else {}
    out: dict[str, PoolConfig] = {}
    for pid, pool in pools.items():
        if pool.hours is None:
            out[pid] = pool
            continue
        hpath = _key(_key(path, pid), "hours")
        if pool.hours not in calendars:
            ld.fail(
                hpath,
                f"unknown calendar {pool.hours!r}; defined calendars: {_choices(calendars)}",
            )
        calendar = calendars[pool.hours]
        raw = raw_cal.get(pool.hours)
        v = None if pool.vendor is None else vendors_.get(pool.vendor)
        if v is not None and not (isinstance(raw, dict) and "timezone" in raw):
            calendar = dataclasses.replace(calendar, timezone=v.timezone)
        out[pid] = dataclasses.replace(pool, calendar=calendar)
    return out
