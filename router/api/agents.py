"""Agents and their offers: registration, status, heartbeat, accept and reject."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from ..config.model import Role
from ..engine import Engine
from ..errors import AgentNotFound
from ..ids import validate_id
from ..model import AgentSpec, AgentStatus, ContactState
from .auth import Principal, digest, new_agent_token, principal
from .bodies import invalid, read_body
from .context import SERVICE, engine_for
from .negotiate import respond
from .problems import ApiError
from .render import agent_json, offer_json
from .visibility import view_for

routes = web.RouteTableDef()


def _acting_agent(who: Principal, agent_id: str) -> None:
    if Role.ADMIN in who.roles or who.may_act_for(agent_id):
        return
    raise ApiError(403, "forbidden", f"this token may not act for agent {agent_id}")


@routes.put("/v1/agents/{id}")
async def put_agent(request: web.Request) -> web.Response:
    who = principal(request, Role.ADMIN)
    aid = validate_id(request.match_info["id"], "id")
    body = await read_body(request, ("name", "pool", "skills", "capacity", "status"))
    engine = engine_for(request, who)
    pool = body.ident("pool", required=True) or ""
    if pool not in engine.tenant.pools:
        raise invalid("pool", f"no pool named {pool!r}")
    capacity = body.levels("capacity", 0, 100)
    for ch in capacity:
        if ch not in engine.tenant.channels:
            raise invalid(f"capacity.{ch}", "is not a channel of this tenant")
    status_text = body.text("status", max_len=16) or "offline"
    if status_text not in {s.value for s in AgentStatus}:
        raise invalid("status", "must be available, away or offline")
    spec = AgentSpec(
        id=aid,
        pool=pool,
        name=body.text("name", max_len=200) or "",
        skills=body.levels("skills", 1, 5),
        capacity=capacity,
    )
    existed = aid in await engine.agent_ids()
    await engine.upsert_agent(spec, AgentStatus(status_text))
    return await _agent_response(request, who, aid, status=200 if existed else 201)


async def _agent_response(
    request: web.Request, who: Principal, aid: str, status: int = 200
) -> web.Response:
    engine = engine_for(request, who)
    a = await engine.get_agent(aid)
    scoped_out = Role.SUPERVISOR in who.roles and who.pool is not None and a.pool != who.pool
    if scoped_out and not (Role.ADMIN in who.roles or who.may_act_for(aid)):
        raise AgentNotFound(f"agent {aid!r} does not exist")
    states = await asyncio.gather(*(engine.get_contact(c) for c in a.contacts))
    offers = [c.id for c in states if c.state is ContactState.RESERVED]
    return respond(request, agent_json(a, offers), status)


@routes.get("/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    """Every agent of the tenant; a pool-scoped supervisor sees its pool's only.
    `?pool=` and `?status=` narrow the list."""
    who = principal(request, Role.ADMIN, Role.SUPERVISOR)
    engine = engine_for(request, who)
    pool = request.query.get("pool")
    if pool is not None and pool not in engine.tenant.pools:
        raise invalid("pool", f"no pool named {pool[:64]!r}")
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in AgentStatus}:
        raise invalid("status", "must be available, away or offline")
    scope = who.pool if Role.ADMIN not in who.roles else None
    agents = await asyncio.gather(*(engine.get_agent(a) for a in await engine.agent_ids()))
    out = []
    for a in sorted(agents, key=lambda a: a.id):
        if (scope and a.pool != scope) or (pool and a.pool != pool):
            continue
        if status and a.status.value != status:
            continue
        states = await asyncio.gather(*(engine.get_contact(c) for c in a.contacts))
        out.append(agent_json(a, [c.id for c in states if c.state is ContactState.RESERVED]))
    return respond(request, {"agents": out})


@routes.get("/v1/agents/{id}")
async def get_agent(request: web.Request) -> web.Response:
    who = principal(request, Role.ADMIN, Role.SUPERVISOR, Role.AGENT)
    aid = request.match_info["id"]
    if Role.ADMIN not in who.roles and Role.SUPERVISOR not in who.roles:
        _acting_agent(who, aid)
    return await _agent_response(request, who, aid)


@routes.post("/v1/agents/{id}/status")
async def set_status(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT, Role.ADMIN)
    aid = request.match_info["id"]
    _acting_agent(who, aid)
    body = await read_body(request, ("status", "reason"))
    status = body.text("status", required=True, max_len=16) or ""
    if status not in {s.value for s in AgentStatus}:
        raise invalid("status", "must be available, away or offline")
    await engine_for(request, who).set_agent_status(aid, status, body.ident("reason") or "")
    return await _agent_response(request, who, aid)


@routes.post("/v1/agents/{id}/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT)
    aid = request.match_info["id"]
    _acting_agent(who, aid)
    status = await engine_for(request, who).heartbeat(aid)
    return respond(request, {"agent": aid, "status": status.value})


@routes.post("/v1/agents/{id}/token")
async def issue_token(request: web.Request) -> web.Response:
    """A token that acts for this one agent (for its desktop). Shown once: only
    its SHA-256 is kept, so a lost token is revoked and issued again."""
    who = principal(request, Role.ADMIN)
    aid = validate_id(request.match_info["id"], "id")
    await read_body(request, ())
    token = new_agent_token(who.tenant)
    count = await engine_for(request, who).issue_agent_token(aid, digest(token))
    return respond(
        request, {"agent": aid, "token": token, "roles": ["agent"], "tokens": count}, 201
    )


@routes.delete("/v1/agents/{id}/token")
async def revoke_tokens(request: web.Request) -> web.Response:
    """Revoke every token issued for this agent; config tokens are not affected."""
    who = principal(request, Role.ADMIN)
    aid = validate_id(request.match_info["id"], "id")
    await engine_for(request, who).revoke_agent_tokens(aid)
    return respond(request, {"agent": aid, "tokens": 0})


MAX_WAIT_S = 60


async def _current_offers(engine: Engine, who: Principal, aid: str) -> list[dict[str, Any]]:
    a = await engine.get_agent(aid)
    contacts = await asyncio.gather(*(engine.get_contact(c) for c in a.contacts))
    return [
        offer_json(c, await view_for(engine, who, c, aid))
        for c in contacts
        if c.state is ContactState.RESERVED
    ]


@routes.get("/v1/agents/{id}/offers")
async def offers(request: web.Request) -> web.Response:
    """The agent's open offers. With `wait=S`, a long poll: answers as soon as an
    offer exists, or with an empty list after S seconds. Counts as a heartbeat."""
    who = principal(request, Role.AGENT, Role.ADMIN)
    aid = request.match_info["id"]
    _acting_agent(who, aid)
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise invalid("wait", "must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise invalid("wait", f"must be between 0 and {MAX_WAIT_S}")
    engine = engine_for(request, who)
    await engine.heartbeat(aid)
    wakeups = request.app[SERVICE].wakeups
    if wait == 0 or wakeups is None:
        return respond(request, {"offers": await _current_offers(engine, who, aid)})
    deadline = asyncio.get_running_loop().time() + wait
    with wakeups.waiter(who.tenant, aid) as woken:
        while True:
            woken.clear()
            held = await _current_offers(engine, who, aid)
            left = deadline - asyncio.get_running_loop().time()
            if held or left <= 0:
                return respond(request, {"offers": held})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=left)


async def _offer_agent(request: web.Request, who: Principal, offer_id: str) -> str:
    """An offer's id is its contact's id; the agent is the one it is reserved for."""
    c = await engine_for(request, who).get_contact(offer_id)
    if c.state is not ContactState.RESERVED or c.agent is None:
        raise ApiError(
            409, "conflict", f"offer {offer_id} is no longer open (contact is {c.state.value})"
        )
    _acting_agent(who, c.agent)
    return c.agent


@routes.post("/v1/offers/{id}/accept")
async def accept(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT)
    oid = request.match_info["id"]
    await read_body(request, ())
    engine = engine_for(request, who)
    agent = await _offer_agent(request, who, oid)
    await engine.accept(oid, agent)
    c = await engine.get_contact(oid)
    return respond(request, offer_json(c, await view_for(engine, who, c, agent)))


@routes.post("/v1/offers/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT)
    oid = request.match_info["id"]
    body = await read_body(request, ("reason",))
    engine = engine_for(request, who)
    agent = await _offer_agent(request, who, oid)
    await engine.reject(oid, agent, body.ident("reason") or "")
    return respond(request, {"id": oid, "rejected": True})
