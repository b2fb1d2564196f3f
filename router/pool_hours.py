"""Pool hours: keep each outsourced pool's gate in step with its hours (follow-the-sun).

A pool's hours are its own calendar (`[pools.<id>] hours`, one site of a vendor
in its own time zone), else its vendor's (`[vendors.<id>] hours`); a pool with
neither is always in hours. The `hours` cause of the pool's gate
(lib/core.lua `gate_pool`) is set outside those hours and cleared inside them,
so routing skips the pool exactly like a pool an admin closed, and the other
causes (an admin, a vendor pause, a failing vendor) keep holding on their own.

`PoolHours.sync` runs on every tick of the timer loop (Engine.run_due_timers),
in real and virtual time. It costs a comparison per tick: the next boundary of
every pool is cached, and Redis is only read and written when the clock crosses
one, and once when the process starts or the config changes. Every process may
do the same at the same boundary: pool_gate.lua is idempotent, and writes an
event only on a real change.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .calendar import Calendar, CalendarError
from .config.model import CalendarConfig, PoolConfig, TenantConfig

if TYPE_CHECKING:
    from .engine import Engine

CAUSE = "hours"
OPENED = "opened_by_hours"
CLOSED = "closed_by_hours"

_CALENDARS: dict[CalendarConfig, Calendar] = {}  # built once per calendar config
_CALENDARS_MAX = 256


def hours_of(tenant: TenantConfig, pool: PoolConfig) -> CalendarConfig | None:
    """The pool's effective hours: its own, else its vendor's; None: always in hours."""
    if pool.calendar is not None:
        return pool.calendar
    vendor = None if pool.vendor is None else tenant.vendors.get(pool.vendor)
    return None if vendor is None else vendor.calendar


def calendar(config: CalendarConfig) -> Calendar:
    cal = _CALENDARS.get(config)
    if cal is None:
        if len(_CALENDARS) >= _CALENDARS_MAX:
            _CALENDARS.clear()
        cal = _CALENDARS[config] = Calendar(config)
    return cal


def state_at(config: CalendarConfig, now_ms: int) -> tuple[bool, int | None]:
    """(in hours at `now_ms`, the next time that changes). A calendar with no
    opening left within years is closed for good (None: no boundary)."""
    cal = calendar(config)
    try:
        start, end = next(cal.intervals(now_ms))
    except (CalendarError, StopIteration):
        return False, None
    if start <= now_ms:
        return True, end
    return False, start


def in_hours(tenant: TenantConfig, pool: PoolConfig, now_ms: int) -> bool:
    """Whether the pool is within its effective hours at `now_ms`."""
    config = hours_of(tenant, pool)
    return True if config is None else state_at(config, now_ms)[0]


class PoolHours:
    """One engine's hours gates: the cached next boundary of each pool with hours."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tenant: TenantConfig | None = None  # the config the cache was built for
        self._next: dict[str, int | None] = {}  # pool -> its next boundary (ms)
        self._due: int | None = None  # the earliest of them
        self._lock = asyncio.Lock()  # one pass at a time (timer loop, callers in tests)

    def next_boundary(self) -> int | None:
        """When `sync` has work next (ms): the clock's time while a full pass is
        pending (start, new config), None when no pool has hours. A simulation
        steps its clock to this time as it does to the next timer."""
        if self._tenant is not self.engine.tenant:
            return self.engine.clock.now_ms()
        return self._due

    async def sync(self) -> int:
        """Set or clear the `hours` cause of every pool whose boundary has passed
        (every pool after a start or a config change). Returns the offers made by
        pools that opened."""
        if self._idle():
            return 0  # the tick's usual answer: no lock, no Redis
        async with self._lock:
            return await self._pass()

    def _idle(self) -> bool:
        due = self._due
        fresh = self._tenant is self.engine.tenant
        return fresh and (due is None or self.engine.clock.now_ms() < due)

    async def _pass(self) -> int:
        now = self.engine.clock.now_ms()  # read under the lock: passes follow the clock
        tenant = self.engine.tenant
        if self._tenant is tenant:
            if self._due is None or now < self._due:
                return 0
            pools = [p for p, at in self._next.items() if at is not None and at <= now]
        else:
            self._next = {}
            pools = list(tenant.pools)
        want: dict[str, bool] = {}
        nxt: dict[str, int | None] = {}
        for pid in pools:
            config = hours_of(tenant, tenant.pools[pid])
            if config is None:
                want[pid] = True  # no hours (any more): clear a cause left behind
                continue
            want[pid], nxt[pid] = state_at(config, now)
        made = await self._apply(want)
        self._tenant = tenant
        self._next.update(nxt)
        due = [at for at in self._next.values() if at is not None]
        self._due = min(due) if due else None
        return made

    async def _apply(self, want: dict[str, bool]) -> int:
        """Run pool_gate for each pool whose `hours` cause differs from `want`."""
        if not want:
            return 0
        engine = self.engine
        pids = sorted(want)
        pipe = engine.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.sismember(engine.keys.pool_causes(pid), CAUSE)
        held = await pipe.execute()
        made = 0
        for pid, has_cause in zip(pids, held, strict=True):
            if bool(has_cause) == (not want[pid]):
                continue  # already so (another process, or no change)
            reason = OPENED if want[pid] else CLOSED
            made += await engine.set_pool_open(pid, want[pid], reason, cause=CAUSE)
        return made
