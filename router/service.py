"""One Switchboard server process: Redis (embedded or given), engines, timers, maintenance.

The HTTP API (router/api) runs on top of a `Service` and holds no state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from .clock import Clock, RealClock
from .config.model import Config
from .engine import Engine
from .maintenance import trim_stream
from .server.embedded import EmbeddedValkey
from .store.connection import ServerInfo, open_checked, redact_url
from .store.scripts import Scripts
from .timers import TimerLoop
from .wakeups import OfferWakeups

log = logging.getLogger("switchboard")

MAINTENANCE_EVERY_S = 60.0


@dataclass
class ServiceOptions:
    redis_url: str | None = None
    data_dir: Path = Path("var/valkey")
    appendfsync: str = "everysec"


class Service:
    def __init__(self, config: Config, options: ServiceOptions, clock: Clock | None = None) -> None:
        self.config = config
        self.options = options
        self.clock = clock or RealClock()
        self.embedded: EmbeddedValkey | None = None
        self.redis: Redis | None = None
        self.server_info: ServerInfo | None = None
        self.engines: dict[str, Engine] = {}
        self.wakeups: OfferWakeups | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def redis_url(self) -> str:
        if self.options.redis_url:
            return self.options.redis_url
        assert self.embedded is not None
        return self.embedded.url

    async def start(self) -> None:
        if not self.options.redis_url:
            self.embedded = EmbeddedValkey(
                self.options.data_dir,
                appendfsync=self.options.appendfsync,  # type: ignore[arg-type]
            )
            await asyncio.to_thread(self.embedded.start)
            log.info(
                "embedded valkey started at %s (data in %s)",
                self.embedded.url,
                self.options.data_dir,
            )
        self.redis, self.server_info = await open_checked(self.redis_url, log)
        scripts = Scripts(self.redis)
        for tid, tenant in self.config.tenants.items():
            engine = Engine(self.redis, tenant, self.clock, scripts)
            await engine.apply_config()
            self.engines[tid] = engine
        timers = TimerLoop(list(self.engines.values()), self.clock)
        self.wakeups = OfferWakeups(self.redis, list(self.engines))
        self._tasks = [
            asyncio.create_task(timers.run(self._stop)),
            asyncio.create_task(self._maintenance()),
            asyncio.create_task(self.wakeups.run(self._stop)),
        ]
        # long polls must not miss an offer made while the subscription starts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeups.ready.wait(), timeout=5)

    async def _maintenance(self) -> None:
        while not self._stop.is_set():
            for engine in self.engines.values():
                try:
                    await trim_stream(
                        engine.redis, engine.keys.events, engine.tenant.retention.stream_max_len
                    )
                except Exception:  # keep maintaining the other tenants
                    log.exception("stream trim failed for tenant %s", engine.tenant.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=MAINTENANCE_EVERY_S)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            log.info("embedded valkey stopped")


def describe(service: Service, host: str, port: int) -> str:
    return (
        f"Switchboard listening on http://{host}:{port}  "
        f"(API: http://{host}:{port}/v1/, health: /healthz; redis: {redact_url(service.redis_url)})"
    )
