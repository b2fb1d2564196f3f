"""POST /v1/vendors/{id}/pause and /resume: an admin stops or restarts offers to
a vendor as a whole (docs/vendors.md "Pause and resume").

A pause closes the gate of each of the vendor's pools (pool_gate.lua, event
`pool.gate_changed` with reason `vendor_paused`), so routing skips them exactly
like any closed pool; a resume opens them and routes what waited meanwhile.
"""

from __future__ import annotations

from aiohttp import web

from ..config.model import Role
from .auth import principal
from .context import engine_for
from .negotiate import respond
from .problems import ApiError

routes = web.RouteTableDef()


async def _gate(request: web.Request, is_open: bool) -> web.Response:
    who = principal(request, Role.ADMIN)
    engine = engine_for(request, who)
    vid = request.match_info["id"]
    if vid not in engine.tenant.vendors:
        raise ApiError(404, "not found", f"no vendor named {vid[:64]!r}", field="id")
    pools = sorted(p.id for p in engine.tenant.pools.values() if p.vendor == vid)
    reason = "vendor_resumed" if is_open else "vendor_paused"
    offers = 0
    for pool in pools:
        offers += await engine.set_pool_open(pool, is_open, reason, cause="paused")
    return respond(
        request, {"vendor": vid, "paused": not is_open, "pools": pools, "offers": offers}
    )


@routes.post("/v1/vendors/{id}/pause")
async def pause_vendor(request: web.Request) -> web.Response:
    return await _gate(request, False)


@routes.post("/v1/vendors/{id}/resume")
async def resume_vendor(request: web.Request) -> web.Response:
    return await _gate(request, True)
