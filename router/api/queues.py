"""Queues: their configuration and live state."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..config.model import QueueConfig, Role
from ..engine import Engine
from .auth import principal
from .context import engine_for
from .negotiate import respond

routes = web.RouteTableDef()


async def _queue_json(engine: Engine, q: QueueConfig) -> dict[str, Any]:
    live = await engine.queue_snapshot(q.id)
    return {
        "name": q.id,
        "title": q.name,
        "channels": list(q.channels),
        "skills": q.skills,
        "pools": list(q.pools_at(len(q.stages) - 1)),
        "stages": [
            {
                "after_s": s.after_s,
                "pools": list(s.pools),
                "min_proficiency": s.min_proficiency,
                "estimated_wait_s": s.estimated_wait_s,
                "when_unstaffed": s.when_unstaffed,
            }
            for s in q.stages
        ],
        "strategy": q.strategy.value,
        "sla": {"threshold_s": q.sla.threshold_s, "target": q.sla.target},
        **live,
    }


@routes.get("/v1/queues")
async def list_queues(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    out = [await _queue_json(engine, q) for q in engine.tenant.queues.values()]
    return respond(request, {"queues": out})


@routes.get("/v1/queues/{name}")
async def get_queue(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    q = engine.tenant.queues.get(request.match_info["name"])
    if q is None:
        raise web.HTTPNotFound(reason=f"no queue named {request.match_info['name']!r}")
    return respond(request, await _queue_json(engine, q))
