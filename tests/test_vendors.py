"""A vendor's "this hour" and "today" in its own time zone (router/vendors.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from router.vendors import day_start, hour_start


def _ms(zone: str, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "now", "hour", "day"),
    [
        # half-hour offset: hours start at :00 local, i.e. :30 UTC
        ("Asia/Kolkata", (2026, 3, 10, 0, 20), (2026, 3, 10, 0, 0), (2026, 3, 10, 0, 0)),
        # a 25-hour day (Madrid leaves summer time on 2026-10-25): the day began
        # at 00:00 summer time, 25 h before the next one
        ("Europe/Madrid", (2026, 10, 25, 23, 59), (2026, 10, 25, 23, 0), (2026, 10, 25, 0, 0)),
        # Costa Rica, 18:30 local is 00:30 UTC the next day: still "today" locally
        ("America/Costa_Rica", (2026, 3, 10, 18, 30), (2026, 3, 10, 18, 0), (2026, 3, 10, 0, 0)),
    ],
)
def test_hour_and_day_start_in_the_vendor_zone(
    zone: str, now: tuple[int, ...], hour: tuple[int, ...], day: tuple[int, ...]
) -> None:
    t = _ms(zone, *now)
    assert hour_start(zone, t) == _ms(zone, *hour)
    assert day_start(zone, t) == _ms(zone, *day)
    assert day_start("UTC", t) != day_start(zone, t)  # the zone matters


def test_a_25_hour_day_is_25_hours_long() -> None:
    z = "Europe/Madrid"
    start = day_start(z, _ms(z, 2026, 10, 25, 12, 0))
    assert day_start(z, _ms(z, 2026, 10, 26, 0, 30)) - start == 25 * 3_600_000
