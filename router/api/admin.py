"""Administration: reloading the configuration."""

from __future__ import annotations

from aiohttp import web

from ..config.model import Role
from ..errors import ConfigError
from .auth import principal
from .bodies import read_body
from .context import SERVICE
from .negotiate import respond
from .problems import ApiError

routes = web.RouteTableDef()


@routes.post("/v1/admin/reload")
async def reload(request: web.Request) -> web.Response:
    """Re-read the server's config file and switch every process to it. A config
    that does not validate answers 422 naming the file and key, and changes nothing.
    The file serves every tenant in it, so any tenant's admin may ask for a reload."""
    who = principal(request, Role.ADMIN)
    await read_body(request, ())
    service = request.app[SERVICE]
    try:
        version = await service.reload_from_file()
    except ConfigError as exc:
        raise ApiError(422, "config invalid", exc.message) from None
    mine = service.config.tenants[who.tenant]
    return respond(
        request,
        {"version": version, "queues": sorted(mine.queues), "pools": sorted(mine.pools)},
    )
