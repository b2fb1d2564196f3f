"""The polling loop of the background workers (timers, metrics): one shape, one place.

Redis being away is expected: it is logged once as a warning when it starts and
once when Redis is back, and the loop backs off meanwhile (doubling, up to 5 s)
without flooding the log. Any other error is a bug, logged with its traceback.
Neither ends the loop: a dead background task would silently stop every tenant's
timers or metrics until the process restarts. A step is one script per
transition, so an outage in the middle of a step leaves nothing half-applied:
the next step simply does what is still due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .store.outage import unavailable

MAX_BACKOFF_S = 5.0


class Outage:
    """Logs a Redis outage once when it starts and once when it ends."""

    def __init__(self, name: str, log: logging.Logger) -> None:
        self.name = name
        self.log = log
        self.failures = 0
        self._since = 0.0

    def failed(self, exc: BaseException) -> None:
        if self.failures == 0:
            self._since = time.monotonic()
            self.log.warning("%s: redis unavailable (%s); retrying", self.name, exc)
        else:
            self.log.debug("%s: redis still unavailable (%s)", self.name, exc)
        self.failures += 1

    def recovered(self) -> None:
        if self.failures:
            self.log.warning(
                "%s: redis is back after %.1f s (%d failed attempts)",
                self.name,
                time.monotonic() - self._since,
                self.failures,
            )
            self.failures = 0


async def poll_until_stopped(
    name: str,
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    poll_s: float,
    log: logging.Logger,
) -> None:
    """Run `step` every `poll_s` until `stop`; back off (doubling, up to 5 s) on errors."""
    backoff = poll_s
    outage = Outage(name, log)
    while not stop.is_set():
        try:
            await step()
            outage.recovered()
            backoff = poll_s
        except Exception as exc:
            if unavailable(exc) is not None or isinstance(exc, OSError):
                outage.failed(exc)
            else:
                log.exception("%s failed; retrying", name)
            backoff = min(max(backoff, 0.05) * 2, MAX_BACKOFF_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
