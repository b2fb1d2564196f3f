"""Vendor contracts at a given time: open or not, and load against the caps.

Pure functions of the config and of millisecond timestamps on the engine's
clock, so they work in virtual time and can be shared by the API
(`GET /v1/pools`, `GET /v1/vendors`) and by later routing, scorecards and the
dashboard. Redis reads stay with their callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict
from zoneinfo import ZoneInfo

from .calendar import Calendar, CalendarError
from .config.model import CalendarConfig, PoolConfig, TenantConfig, VendorCaps, VendorConfig

_CALENDARS: dict[CalendarConfig, Calendar] = {}  # a vendor's calendar, built once per config
_CALENDARS_MAX = 256


class Figure(TypedDict):
    """A live count beside its cap (None: uncapped)."""

    value: int
    cap: int | None


class Load(TypedDict):
    concurrent: Figure
    this_hour: Figure
    today: Figure


def vendor_of(tenant: TenantConfig, pool: PoolConfig) -> VendorConfig | None:
    """The vendor running `pool`; None for an in-house pool."""
    return None if pool.vendor is None else tenant.vendors.get(pool.vendor)


def calendar_of(vendor: VendorConfig) -> Calendar | None:
    if vendor.calendar is None:
        return None
    cal = _CALENDARS.get(vendor.calendar)
    if cal is None:
        if len(_CALENDARS) >= _CALENDARS_MAX:
            _CALENDARS.clear()
        cal = _CALENDARS[vendor.calendar] = Calendar(vendor.calendar)
    return cal


def in_hours(vendor: VendorConfig | None, now_ms: int) -> bool:
    """Whether the vendor is within its hours (no vendor, or no hours: always)."""
    cal = None if vendor is None else calendar_of(vendor)
    if cal is None:
        return True
    try:
        return cal.is_open(now_ms)
    except CalendarError:  # no opening within years: closed
        return False


def zone_of(tenant: TenantConfig, pool: PoolConfig) -> str:
    """The time zone of a pool's "this hour" and "today": its vendor's, else the tenant's."""
    vendor = vendor_of(tenant, pool)
    return tenant.timezone if vendor is None else vendor.timezone


def hour_start(zone: str, now_ms: int) -> int:
    """Start of the clock hour holding `now_ms` in `zone` (zones off by 30 or 45
    minutes from UTC start their hours there)."""
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone))
    return int(local.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)


def day_start(zone: str, now_ms: int) -> int:
    """Local midnight of the day holding `now_ms` in `zone`."""
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


def load(caps: VendorCaps | None, concurrent: int, this_hour: int, today: int) -> Load:
    """The three live figures beside the contract's caps (None: no contract, no caps)."""
    c = caps or VendorCaps()
    return {
        "concurrent": {"value": concurrent, "cap": c.max_concurrent},
        "this_hour": {"value": this_hour, "cap": c.max_per_hour},
        "today": {"value": today, "cap": c.max_per_day},
    }
