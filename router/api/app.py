"""The HTTP application: middlewares, routes, health, and the service lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from ..errors import SwitchboardError
from ..health import memory_headroom
from ..service import Service
from ..store.outage import unavailable
from . import (
    admin,
    agent_events,
    agents,
    channels,
    contacts,
    customers,
    metrics,
    openapi,
    pools,
    queues,
    scorecard,
    vendor_gate,
    webhooks,
)
from .auth import auth_middleware
from .context import SERVICE
from .dashboard import dashboard_middleware
from .mail_listener import MailListener, listen_for_mail
from .problems import problem, problems_middleware
from .requestlog import flush_logs, request_id_middleware, stamp_request_id

MAX_BODY_BYTES = 256 * 1024
log = logging.getLogger("switchboard")


def build_api(
    service: Service,
    *,
    manage_service: bool = True,
    reload_on_sighup: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    mail_listener: MailListener | None = None,
) -> web.Application:
    """The v1 API app. With `manage_service`, the app starts and stops the service;
    with `reload_on_sighup`, SIGHUP reloads the config file (the `serve` command)."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            problems_middleware,
            dashboard_middleware,  # the page: static files, no token (router/api/dashboard.py)
            auth_middleware(service),
        ],
        client_max_size=max_body_bytes,
    )
    app.on_response_prepare.append(stamp_request_id)  # streamed responses too
    app[SERVICE] = service
    app.add_routes(contacts.routes)
    app.add_routes(agents.routes)
    app.add_routes(queues.routes)
    app.add_routes(pools.routes)  # GET /v1/pools, /v1/vendors
    app.add_routes(scorecard.routes)  # GET /v1/vendors/{id}/scorecard
    app.add_routes(vendor_gate.routes)  # POST /v1/vendors/{id}/pause, /resume
    app.add_routes(admin.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(channels.routes)
    app.add_routes(agent_events.routes)
    app.add_routes(customers.routes)  # DELETE /v1/customers/{id}, GET /v1/audit
    app.on_shutdown.append(agent_events.close_streams)  # end open streams first
    metrics.add_routes(app)  # /v1/metrics..., GET /metrics; ends its streams on shutdown

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        if service.redis is None:
            return problem(503, "not ready", "starting up", headers={"Retry-After": "1"})
        try:
            await service.redis.ping()  # -LOADING while a restarted server reads its AOF
            memory = await memory_headroom(service.redis, service.options.ready_memory_ratio)
        except Exception as exc:  # a Redis outage: not ready until it is back
            reason = unavailable(exc)
            if reason is None:
                raise
            return problem(503, "not ready", f"{reason}: {exc}", headers={"Retry-After": "1"})
        if not memory.ok:
            return problem(
                503,
                "not ready",
                f"redis memory is {memory.used_ratio:.0%} of its {memory.limit_source} limit "
                f"(unready from {memory.fail_at_ratio:.0%}): under noeviction, writes will "
                "soon be refused; raise maxmemory or shorten retention",
                headers={"Retry-After": "5"},
                memory=memory.as_json(),
            )
        return web.json_response(
            {"status": "ready", "tenants": sorted(service.engines), "memory": memory.as_json()}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/health", readyz)
    app.router.add_get("/openapi.json", openapi.openapi_json)
    if manage_service:

        async def on_startup(app: web.Application) -> None:
            await service.start()

        async def on_cleanup(app: web.Application) -> None:
            await service.stop()

        app.on_startup.append(on_startup)
        app.on_cleanup.append(on_cleanup)
    if reload_on_sighup:
        app.on_startup.append(_reload_on_sighup)
    app.cleanup_ctx.append(_flush_logs_periodically)
    if mail_listener is not None:
        app.cleanup_ctx.append(listen_for_mail(mail_listener))
    return app


async def _flush_logs_periodically(app: web.Application) -> AsyncIterator[None]:
    """Buffered log lines reach stderr within half a second, even when idle."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(0.5)
            flush_logs()

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    flush_logs()


async def _reload_on_sighup(app: web.Application) -> None:
    service = app[SERVICE]
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        try:
            version = await service.reload_from_file()
            log.info("SIGHUP: config reloaded, version %d", version)
        except SwitchboardError as exc:
            log.error("SIGHUP: config not reloaded, nothing changed: %s", exc.message)
        except Exception:
            log.exception("SIGHUP: config reload failed")

    def on_sighup() -> None:
        task = asyncio.create_task(reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
