"""One Switchboard server process: Redis (embedded or given), engines, timers, maintenance.

The HTTP API (router/api) runs on top of a `Service` and holds no state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from . import config_sync
from .clock import Clock, RealClock
from .config import load_config_text
from .config.model import Config
from .engine import Engine
from .errors import ConfigError
from .health import DEFAULT_READY_MEMORY_RATIO
from .maintenance import trim_stream
from .metrics.consumer import MetricsLoop
from .ratelimit import RateLimiter
from .server.embedded import EmbeddedValkey
from .sla import unknown_notify
from .store.connection import ServerInfo, open_checked, redact_url
from .store.outage import unavailable
from .store.scripts import Scripts
from .timers import TimerLoop
from .wakeups import OfferWakeups
from .webhooks import WebhookRunner, WebhookStore

log = logging.getLogger("switchboard")

MAINTENANCE_EVERY_S = 60.0


@dataclass
class ServiceOptions:
    redis_url: str | None = None
    data_dir: Path = Path("var/valkey")
    appendfsync: str = "everysec"
    config_path: Path | None = None  # what SIGHUP and POST /v1/admin/reload re-read
    maxmemory_mb: int = 0  # the embedded server's maxmemory; 0: no limit
    ready_memory_ratio: float = DEFAULT_READY_MEMORY_RATIO  # /readyz fails from this share


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
        self.limiter: RateLimiter | None = None
        self.webhooks: WebhookRunner | None = None  # outbound webhooks (router/webhooks)
        # per tenant: the reloaded config version this process runs (0: its own file)
        self.config_versions: dict[str, int] = {}
        self._reload_lock = asyncio.Lock()
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
                extra_config=embedded_memory(self.options.maxmemory_mb),
            )
            await asyncio.to_thread(self.embedded.start)
            log.info(
                "embedded valkey started at %s (data in %s)",
                self.embedded.url,
                self.options.data_dir,
            )
        self.redis, self.server_info = await open_checked(self.redis_url, log)
        scripts = Scripts(self.redis)
        self.limiter = RateLimiter(scripts, self.clock)
        for tid, tenant in self.config.tenants.items():
            engine = Engine(self.redis, tenant, self.clock, scripts)
            for problem in await engine.unplaceable(tenant):
                log.warning("%s: tenant %s: %s", self.config.source, tid, problem)
            await engine.apply_config()
            self.engines[tid] = engine
            # a notify escalation naming no subscription would page nobody
            subs = await WebhookStore(self.redis, engine.keys, self.clock).subscriptions(tenant)
            for problem in unknown_notify(tenant, subs):
                log.warning("%s: tenant %s: %s", self.config.source, tid, problem)
        timers = TimerLoop(list(self.engines.values()), self.clock)
        self.wakeups = OfferWakeups(self.redis, list(self.engines))
        self.webhooks = WebhookRunner(list(self.engines.values()))
        await self.webhooks.start()  # consumer groups exist before traffic
        self._tasks = [
            asyncio.create_task(self.webhooks.run(self._stop)),
            asyncio.create_task(timers.run(self._stop)),
            asyncio.create_task(
                MetricsLoop(list(self.engines.values()), self.clock).run(self._stop)
            ),
            asyncio.create_task(self._maintenance()),
            asyncio.create_task(self.wakeups.run(self._stop)),
            asyncio.create_task(
                config_sync.follow(self.redis, list(self.engines), self._follow, self._stop)
            ),
        ]
        # Start-up objects live as long as the process: keep them out of the
        # collector's full passes, which otherwise land as 30 ms pauses in the tail.
        gc.freeze()
        # long polls must not miss an offer made while the subscription starts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeups.ready.wait(), timeout=5)

    # -- reload ----------------------------------------------------------------

    async def reload_from_file(self) -> int:
        """Re-read the config file and switch every process to it (SIGHUP, admin)."""
        path = self.options.config_path
        if path is None:
            raise ConfigError("this server was started without a config file to reload")
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read file: {exc}") from exc
        return await self.reload(load_config_text(text, str(path)), text)

    async def reload(self, config: Config, text: str) -> int:
        """Validate `config` against the running one, apply it, and publish it to
        the other processes. A refused config changes nothing. Returns its version."""
        assert self.redis is not None
        async with self._reload_lock:
            added = sorted(set(config.tenants) - set(self.engines))
            dropped = sorted(set(self.engines) - set(config.tenants))
            if added or dropped:
                what = f"adds tenant {added[0]}" if added else f"removes tenant {dropped[0]}"
                raise ConfigError(
                    f"{config.source}: tenants: the new config {what}; "
                    "adding or removing a tenant needs a restart"
                )
            for tid, tenant in config.tenants.items():
                problems = await self.engines[tid].unplaceable(tenant)
                if problems:
                    raise ConfigError(f"{config.source}: tenant {tid}: {problems[0]}")
            for tid, tenant in config.tenants.items():
                await self.engines[tid].reconfigure(tenant)
            self.config = config
            for tid in config.tenants:
                version = await config_sync.publish(self.redis, tid, config.source, text)
                self.config_versions[tid] = version
                log.info("tenant %s: config %s applied as version %d", tid, config.source, version)
            return max(self.config_versions.values())

    async def _follow(self, tid: str, version: int, source: str, text: str) -> None:
        """Another process reloaded: take its config (Redis already has it applied)."""
        async with self._reload_lock:
            if version <= self.config_versions.get(tid, 0):
                return
            tenant = load_config_text(text, source).tenants.get(tid)
            if tenant is None:
                log.error("config version %d of %s lost the tenant; not followed", version, tid)
                return
            self.engines[tid].tenant = tenant
            self.engines[tid].vendor_state.next_refresh = 0  # its contracts now
            self.config = Config({**self.config.tenants, tid: tenant}, source)
            self.config_versions[tid] = version
            log.info("tenant %s: following config %s version %d", tid, source, version)

    async def _maintenance(self) -> None:
        while not self._stop.is_set():
            for engine in self.engines.values():
                try:
                    await trim_stream(
                        engine.redis, engine.keys.events, engine.tenant.retention.stream_max_len
                    )
                except Exception as exc:  # keep maintaining the other tenants
                    if unavailable(exc) is None:
                        log.exception("stream trim failed for tenant %s", engine.tenant.id)
                    else:  # tried again at the next round
                        log.warning("stream trim of tenant %s: %s", engine.tenant.id, exc)
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


def embedded_memory(maxmemory_mb: int) -> dict[str, str]:
    """The embedded server's memory limit (noeviction is always set by EmbeddedValkey)."""
    return {"maxmemory": f"{maxmemory_mb}mb"} if maxmemory_mb > 0 else {}


def describe(service: Service, host: str, port: int) -> str:
    return (
        f"Switchboard listening on http://{host}:{port}  "
        f"(API: http://{host}:{port}/v1/, health: /healthz; redis: {redact_url(service.redis_url)})"
    )
