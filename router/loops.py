"""The polling loop of the background workers (timers, metrics): one shape, one place.

Redis being away is expected and logged as a warning; any other error is a bug,
logged with its traceback. Neither ends the loop: a dead background task would
silently stop every tenant's timers or metrics until the process restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_BACKOFF_S = 5.0


async def poll_until_stopped(
    name: str,
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    poll_s: float,
    log: logging.Logger,
) -> None:
    """Run `step` every `poll_s` until `stop`; back off (doubling, up to 5 s) on errors."""
    backoff = poll_s
    while not stop.is_set():
        try:
            await step()
            backoff = poll_s
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("%s: redis unavailable (%s); retrying", name, exc)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        except Exception:
            log.exception("%s failed; retrying", name)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
