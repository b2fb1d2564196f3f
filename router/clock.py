"""The engine's only source of time.

Scripts never call TIME: every transition receives `now` (ms) from a Clock, so the
same engine runs in real time in production and in virtual time in simulations
and tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch (or since the start of a simulation)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class RealClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """Time that only moves when told to: deterministic tests and simulations."""

    def __init__(self, start_ms: int = 1_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._now += round(seconds * 1000)
        return self._now

    def set_ms(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError("virtual time cannot go backwards")
        self._now = now_ms

    async def sleep(self, seconds: float) -> None:
        # Yield control without letting wall time leak into virtual time.
        await asyncio.sleep(0)
