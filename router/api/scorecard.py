"""GET /v1/vendors/{id}/scorecard: a vendor's figures over a period beside its
contract (router/scorecard.py, docs/vendors.md "Scorecards").

Admins and supervisors read any vendor's; a supervisor token scoped to a pool
reads only the scorecard of that pool's vendor.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from .. import scorecard as sc
from ..config.model import Role
from .auth import principal
from .context import engine_for
from .metrics import parse_time
from .negotiate import respond
from .problems import ApiError

routes = web.RouteTableDef()


def _time(query: Mapping[str, str], name: str) -> int:
    """A time as /v1/metrics/history reads it, within the years calendar math can use."""
    value = parse_time(query[name], name)
    if not 0 <= value < sc.LATEST_MS:
        raise ApiError(400, "bad request", f"{name}: must be between 1970 and 9998", field=name)
    return value


@routes.get("/v1/vendors/{id}/scorecard")
async def get_scorecard(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    tenant = engine.tenant
    vid = request.match_info["id"]
    vendor = tenant.vendors.get(vid)
    if vendor is None:
        raise ApiError(404, "not found", f"no vendor named {vid[:64]!r}", field="id")
    only: str | None = None
    if Role.ADMIN not in who.roles and who.pool is not None:
        pool = tenant.pools.get(who.pool)
        if pool is None or pool.vendor != vendor.id:
            raise ApiError(403, "forbidden", f"this token may not see vendor {vid[:64]!r}")
        only = pool.id
    q = request.query
    now = engine.clock.now_ms()
    if "from" not in q and "to" not in q:  # the current month, in the vendor's zone
        start, end = sc.month_bounds(vendor.timezone, now)
    elif "to" not in q:
        start, end = _time(q, "from"), now
    else:
        end = _time(q, "to")
        start = _time(q, "from") if "from" in q else sc.month_bounds(vendor.timezone, end - 1)[0]
    if start >= end:
        raise ApiError(400, "bad request", "from: must be before to", field="from")
    if end - start > sc.SCORECARD_MAX_MS:
        days = sc.SCORECARD_MAX_MS // 86_400_000
        raise ApiError(
            400,
            "bad request",
            f"from: the range may span at most {days} days; ask for it in parts",
            field="from",
        )
    return respond(request, await sc.scorecard(engine, vendor, start, end, only))
