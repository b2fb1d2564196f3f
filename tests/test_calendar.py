"""Business calendars: split shifts, holidays, weekends, DST and year ends."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from router.calendar import Calendar
from router.config.model import CalendarConfig

MADRID = ZoneInfo("Europe/Madrid")
H = 3_600_000
WEEKDAY = ((8 * 60, 14 * 60), (15 * 60, 19 * 60))  # split shift


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, zone: ZoneInfo = MADRID) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=zone).timestamp() * 1000)


def office(*holidays: date) -> Calendar:
    week = (WEEKDAY,) * 5 + ((), ())
    return Calendar(CalendarConfig("office", "Europe/Madrid", week, frozenset(holidays)))


def test_split_shift_open_and_closed() -> None:
    cal = office()
    # Monday 23 November 2026
    assert not cal.is_open(ms(2026, 11, 23, 7, 59))
    assert cal.is_open(ms(2026, 11, 23, 8, 0))
    assert cal.is_open(ms(2026, 11, 23, 13, 59))
    assert not cal.is_open(ms(2026, 11, 23, 14, 0))  # end is exclusive
    assert not cal.is_open(ms(2026, 11, 23, 14, 30))
    assert cal.next_open(ms(2026, 11, 23, 14, 30)) == ms(2026, 11, 23, 15, 0)
    assert cal.next_close(ms(2026, 11, 23, 10, 0)) == ms(2026, 11, 23, 14, 0)
    assert cal.next_close(ms(2026, 11, 23, 14, 30)) == ms(2026, 11, 23, 19, 0)
    assert cal.next_open(ms(2026, 11, 23, 10, 0)) == ms(2026, 11, 23, 10, 0)
    assert cal.business_between(ms(2026, 11, 23, 7), ms(2026, 11, 23, 20)) == 10 * H


def test_next_open_across_a_weekend() -> None:
    cal = office()
    friday_evening = ms(2026, 11, 27, 19, 30)
    assert not cal.is_open(friday_evening)
    assert not cal.is_open(ms(2026, 11, 28, 12))  # Saturday
    assert cal.next_open(friday_evening) == ms(2026, 11, 30, 8, 0)
    # two business hours from Friday 18:00: one on Friday, one on Monday
    assert cal.add_business(ms(2026, 11, 27, 18), 2 * H) == ms(2026, 11, 30, 9)
    assert cal.business_between(ms(2026, 11, 27, 18), ms(2026, 11, 30, 9)) == 2 * H


def test_holiday_and_year_end() -> None:
    cal = office(date(2026, 12, 25), date(2026, 12, 31), date(2027, 1, 1))
    assert cal.is_open(ms(2026, 12, 24, 18))
    assert not cal.is_open(ms(2026, 12, 25, 10))  # Christmas, a Friday
    assert cal.next_open(ms(2026, 12, 24, 19, 30)) == ms(2026, 12, 28, 8)
    # Wednesday 30 December evening: 31 Dec and 1 Jan are holidays, then a weekend
    assert cal.next_open(ms(2026, 12, 30, 19, 0)) == ms(2027, 1, 4, 8)
    # 12 business hours from 30 Dec 08:00: 10 h that day, 2 h on 4 January
    assert cal.add_business(ms(2026, 12, 30, 8), 12 * H) == ms(2027, 1, 4, 10)


def test_dst_change_keeps_local_hours() -> None:
    cal = office()
    # Europe/Madrid leaves summer time on Sunday 25 October 2026 (03:00 -> 02:00):
    # Friday before and Monday after both open at 08:00 local, an hour apart in UTC
    fri, mon = ms(2026, 10, 23, 8), ms(2026, 10, 26, 8)
    assert cal.next_open(ms(2026, 10, 22, 20)) == fri
    assert cal.next_open(ms(2026, 10, 23, 20)) == mon
    assert mon - fri == 3 * 24 * H + H
    # and it enters summer time on Sunday 29 March 2026
    assert cal.next_open(ms(2026, 3, 27, 20)) == ms(2026, 3, 30, 8)
    assert cal.add_business(ms(2026, 3, 27, 18), 2 * H) == ms(2026, 3, 30, 9)


def test_a_whole_day_on_the_dst_change_is_its_real_length() -> None:
    week = ((),) * 6 + (((0, 1440),),)  # Sundays only, all day
    cal = Calendar(CalendarConfig("sun", "Europe/Madrid", week, frozenset()))
    start, end = ms(2026, 10, 25), ms(2026, 10, 26)
    assert end - start == 25 * H
    assert cal.business_between(start - H, end + H) == 25 * H
    assert cal.next_close(start + H) == end
    assert cal.add_business(start, 24 * H) == ms(2026, 10, 25, 23)
    spring = ms(2026, 3, 29)
    assert cal.business_between(spring, spring + 48 * H) == 23 * H


def test_always_open_answers_at_once_and_merges_days() -> None:
    week = (((0, 1440),),) * 7
    cal = Calendar(CalendarConfig("always", "UTC", week, frozenset()))
    t = ms(2026, 6, 1, 12, zone=ZoneInfo("UTC"))
    assert cal.is_open(t)
    assert cal.next_open(t) == t
    assert cal.next_close(t) > t + 7 * 24 * H  # merged across days (cut after 8 days)
    assert cal.add_business(t, 30 * 24 * H) == t + 30 * 24 * H
    assert cal.business_between(t, t + 20 * 24 * H) == 20 * 24 * H


def test_utc_offset_zone_and_midnight_ranges() -> None:
    week = (((22 * 60, 1440),), ((0, 2 * 60),)) + ((),) * 5  # Mon 22:00 - Tue 02:00
    cal = Calendar(CalendarConfig("night", "America/New_York", week, frozenset()))
    ny = ZoneInfo("America/New_York")
    mon22 = ms(2026, 11, 23, 22, zone=ny)
    assert cal.next_open(ms(2026, 11, 23, 12, zone=ny)) == mon22
    assert cal.next_close(mon22) == ms(2026, 11, 24, 2, zone=ny)  # one opening
    assert cal.add_business(mon22, 5 * H) == ms(2026, 11, 30, 23, zone=ny)


@pytest.mark.parametrize("hour", range(0, 24, 5))
def test_add_business_and_business_between_agree(hour: int) -> None:
    cal = office(date(2026, 12, 8))
    start = ms(2026, 12, 4, hour)
    for hours in (0, 1, 5, 11, 40):
        due = cal.add_business(start, hours * H)
        assert cal.business_between(start, due) == hours * H
        if hours:
            assert cal.is_open(due - 1)
