"""The timer loop: applies due timers for a set of tenants, on the engine's clock.

Timers live in Redis (`sb:{tenant}:timers`), and popping plus applying one is
a single script, so any number of processes may run this loop at once: each
timer still fires exactly once, and a process that dies loses nothing. Each
tick also moves the pool gates that an hours boundary passed (pool_hours.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .clock import Clock
from .engine import Engine
from .loops import poll_until_stopped

log = logging.getLogger("switchboard.timers")


class TimerLoop:
    def __init__(
        self,
        engines: Sequence[Engine],
        clock: Clock,
        *,
        poll_s: float = 0.05,
        batch: int = 500,
    ) -> None:
        self.engines = list(engines)
        self.clock = clock
        self.poll_s = poll_s
        self.batch = batch

    async def run_once(self) -> int:
        """Apply every timer due now, for every tenant. Returns how many were applied."""
        total = 0
        for engine in self.engines:
            total += await engine.run_due_timers(self.batch)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped("timer loop", self.run_once, stop, self.poll_s, log)
