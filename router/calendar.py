"""Business calendars: when a queue is open, and how much business time has passed.

A calendar is a time zone, weekly open ranges (several per day: split shifts)
and holidays (local dates, closed all day). Everything here is a pure function
of millisecond timestamps on the engine's clock, so it works in virtual time.
Open ranges are built per local day and converted to UTC, so a range keeps its
local wall-clock hours across DST changes (a day with a DST change simply has
one hour more or less of open time). Adjacent ranges (``mon 00:00-24:00`` and
``tue 00:00-24:00``) merge, so ``next_close`` finds the real end of an opening.

Loops are bounded: a calendar is scanned at most `MAX_DAYS` days ahead, and
the config loader refuses a calendar with no open hours at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .config.model import CalendarConfig

MAX_DAYS = 3 * 366  # how far ahead any answer may lie (holidays cannot close more)
_MERGE_MS = 8 * 86_400_000  # longest opening reported as one interval
_CACHE_DAYS = 4096  # days of intervals kept per calendar (then the cache starts over)


class CalendarError(ValueError):
    """The calendar has no open time within `MAX_DAYS` of the asked time."""


class Calendar:
    """Open/closed times of one `CalendarConfig`, as UTC ms intervals."""

    __slots__ = ("_days", "config", "zone")

    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        # local date -> its open intervals in UTC ms: the due-time math of every new
        # contact reads the same few days, and building them is the costly part
        self._days: dict[date, tuple[tuple[int, int], ...]] = {}

    @property
    def id(self) -> str:
        return self.config.id

    # -- building blocks ----------------------------------------------------

    def _local_ms(self, day: date, minute: int) -> int:
        """UTC ms of `minute` past local midnight of `day` (24:00 is next midnight).

        A local time skipped by a DST change resolves like zoneinfo's fold=0:
        the offset in force before the change."""
        d = day + timedelta(days=minute // 1440)
        m = minute % 1440
        local = datetime(d.year, d.month, d.day, m // 60, m % 60, tzinfo=self.zone)
        return int(local.timestamp() * 1000)

    def _day_intervals(self, day: date) -> tuple[tuple[int, int], ...]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        out = []
        if day not in self.config.holidays:
            for start, end in self.config.hours[day.weekday()]:
                a, b = self._local_ms(day, start), self._local_ms(day, end)
                if b > a:
                    out.append((a, b))
        if len(self._days) >= _CACHE_DAYS:
            self._days.clear()
        self._days[day] = tuple(out)
        return self._days[day]

    def intervals(self, from_ms: int) -> Iterator[tuple[int, int]]:
        """Merged open intervals [start, end) that end after `from_ms`, in order.

        An opening longer than `_MERGE_MS` is cut there (the next interval starts
        where it ends), so a calendar open around the clock still answers at once.
        Raises CalendarError when no interval is found within MAX_DAYS."""
        day = datetime.fromtimestamp(from_ms / 1000, UTC).astimezone(self.zone).date()
        day -= timedelta(days=1)  # a range of the day before may still be open
        pending: tuple[int, int] | None = None
        found = False
        for i in range(MAX_DAYS + 2):
            for a, b in self._day_intervals(day + timedelta(days=i)):
                if pending is not None and a <= pending[1]:
                    pending = (pending[0], max(pending[1], b))
                    if pending[1] - max(pending[0], from_ms) < _MERGE_MS:
                        continue
                    a, b = pending[1], pending[1]  # cut: yield it now
                if pending is not None and pending[1] > from_ms:
                    found = True
                    yield pending
                pending = (a, b) if b > a else None
        if pending is not None and pending[1] > from_ms:
            yield pending
        elif not found:
            raise CalendarError(f"calendar {self.id!r} has no open time within {MAX_DAYS} days")

    # -- the API --------------------------------------------------------------

    def is_open(self, ms: int) -> bool:
        start, _ = next(self.intervals(ms))
        return start <= ms

    def next_open(self, ms: int) -> int:
        """`ms` itself when open, else the start of the next opening."""
        start, _ = next(self.intervals(ms))
        return max(start, ms)

    def next_close(self, ms: int) -> int:
        """The end of the current opening, or of the next one when closed."""
        _, end = next(self.intervals(ms))
        return end

    def add_business(self, start_ms: int, duration_ms: int) -> int:
        """The time at which `duration_ms` of open time has passed since `start_ms`."""
        left = max(0, duration_ms)
        for a, b in self.intervals(start_ms):
            a = max(a, start_ms)
            if left <= b - a:
                if left == 0:
                    return a
                return a + left
            left -= b - a
        raise CalendarError(f"calendar {self.id!r}: due time beyond {MAX_DAYS} days")

    def business_between(self, a_ms: int, b_ms: int) -> int:
        """Open time (ms) in [a_ms, b_ms)."""
        if b_ms <= a_ms:
            return 0
        total = 0
        for a, b in self.intervals(a_ms):
            if a >= b_ms:
                break
            total += min(b, b_ms) - max(a, a_ms)
        return total
