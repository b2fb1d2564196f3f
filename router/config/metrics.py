"""Loading `[metrics]` and the tenant's `timezone`.

Kept apart from `loader.py`; it uses the same `_Loader` primitives, so every
error still reads `<file>: <key path>: <problem>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model import MetricsConfig

if TYPE_CHECKING:
    from .loader import _Loader

METRICS_KEYS = ("history_days", "abandon_grace_s")
# Upper bound of history_days: more than a year of 15-minute intervals. It also bounds
# the work of one consumer call: an agent's available span is split over the
# intervals kept, one step each (at most history_days x 96).
HISTORY_DAYS_MAX = 400


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def zone(ld: _Loader, value: object, path: str) -> str:
    """An IANA time zone name that this machine's tz database knows."""
    name = ld.string(value, path)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        ld.fail(path, f"unknown time zone {name!r}; use an IANA name such as 'Europe/Madrid'")
    return name


def timezone(ld: _Loader, meta: Mapping[str, object], path: str) -> str:
    if "timezone" not in meta:
        return "UTC"
    return zone(ld, meta["timezone"], _key(path, "timezone"))


def metrics(ld: _Loader, value: object, path: str) -> MetricsConfig:
    t = ld.table(value, path)
    ld.keys(t, path, METRICS_KEYS)
    d = MetricsConfig()
    days = ld.opt_int(t, path, "history_days", d.history_days, ge=1)
    if days > HISTORY_DAYS_MAX:
        ld.fail(_key(path, "history_days"), f"must be <= {HISTORY_DAYS_MAX}")
    return MetricsConfig(
        history_days=days,
        abandon_grace_s=ld.opt_nonneg(t, path, "abandon_grace_s", d.abandon_grace_s),
    )
