"""The HTTP application: middlewares, routes, health, and the service lifecycle."""

from __future__ import annotations

from aiohttp import web

from ..service import Service
from . import agents, contacts, openapi, queues
from .auth import TokenTable, auth_middleware
from .context import SERVICE
from .problems import problem, problems_middleware

MAX_BODY_BYTES = 256 * 1024


def build_api(service: Service, *, manage_service: bool = True) -> web.Application:
    """The v1 API app. With `manage_service`, the app starts and stops the service."""
    app = web.Application(
        middlewares=[problems_middleware, auth_middleware(TokenTable(service.config))],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SERVICE] = service
    app.add_routes(contacts.routes)
    app.add_routes(agents.routes)
    app.add_routes(queues.routes)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        if service.redis is None:
            return problem(503, "not ready", "starting up", headers={"Retry-After": "1"})
        await service.redis.ping()
        return web.json_response({"status": "ready", "tenants": sorted(service.engines)})

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
    return app
