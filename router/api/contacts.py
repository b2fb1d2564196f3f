"""Contacts: ingest, read, and the actions of their lifecycle."""

from __future__ import annotations

from aiohttp import web

from ..config.model import Role
from ..errors import ContactNotFound
from ..model import Contact, ContactState, Customer, NewContact
from ..subqueues import is_region
from .auth import Principal, principal
from .bodies import Body, invalid, read_body
from .context import engine_for
from .negotiate import respond
from .problems import ApiError
from .visibility import view_for

routes = web.RouteTableDef()

CONTACT_FIELDS = (
    "channel",
    "queue",
    "skills",
    "priority",
    "language",
    "customer",
    "subject",
    "body",
    "attributes",
    "external_id",
    "preferred_agent",
    "region",
)
CUSTOMER_FIELDS = ("id", "name", "email", "phone", "handle")


@routes.post("/v1/contacts")
async def create_contact(request: web.Request) -> web.Response:
    who = principal(request, Role.INGEST)
    engine = engine_for(request, who)
    body = await read_body(request, CONTACT_FIELDS)
    channel = body.text("channel", required=True, max_len=64) or ""
    if channel not in engine.tenant.channels:
        raise invalid("channel", f"must be one of {', '.join(engine.tenant.channels)}")
    queue = body.ident("queue") or engine.tenant.default_queues.get(channel)
    if queue is None:
        raise invalid("queue", f"is required: no default queue for channel {channel}")
    if queue not in engine.tenant.queues:
        raise invalid("queue", f"no queue named {queue!r}")
    cust = body.obj("customer")
    unknown = sorted(set(cust) - set(CUSTOMER_FIELDS))
    if unknown:
        raise invalid(
            f"customer.{unknown[0]}", f"unknown field; allowed: {', '.join(CUSTOMER_FIELDS)}"
        )
    for k, v in cust.items():
        if v is not None and (not isinstance(v, str) or len(v) > 320):
            raise invalid(f"customer.{k}", "must be a string of at most 320 characters")
    idem = request.headers.get("Idempotency-Key") or None
    if idem is not None and len(idem) > 200:
        raise invalid("Idempotency-Key", "must be at most 200 characters")
    external_id = body.text("external_id", max_len=500)
    new = NewContact(
        channel=channel,
        queue=queue,
        customer=Customer(
            id=cust.get("id"),
            name=cust.get("name"),
            email=cust.get("email"),
            phone=cust.get("phone"),
            social_handle=cust.get("handle"),
        ),
        subject=body.text("subject", max_len=10_000) or "",
        preview=body.text("body", max_len=60_000) or "",
        language=body.text("language", max_len=35),
        skills=body.levels("skills", 1, 5),
        priority=body.integer("priority", -1000, 1000, 0),
        attributes=body.obj("attributes"),
        external_id=external_id,
        idempotency_key=idem or (f"external:{external_id}" if external_id else None),
        preferred_agent=body.ident("preferred_agent"),
        region=_region(body),
    )
    result = await engine.create_contact(new)
    out: dict[str, str | int | float | None] = {
        "id": result.contact_id,
        "state": result.state.value,
        "queue": result.queue,
        "agent": result.agent,
    }
    if result.state is ContactState.QUEUED:
        # both come back from the create_contact script itself: no extra round trip
        out["position"] = result.position
        out["estimated_wait_s"] = result.estimated_wait_s
    return respond(request, out, 200 if result.duplicate else 201)


def _region(body: Body) -> str | None:
    """The data-residency tag: only pools allowed for it are offered the contact."""
    region = body.text("region", max_len=32)
    if region is not None and not is_region(region):
        raise invalid(
            "region", 'must be 1-32 characters of a-z 0-9 - starting with a letter, e.g. "eu"'
        )
    return region


async def _readable(request: web.Request, who: Principal, contact_id: str) -> Contact:
    """Supervisors and admins read any contact (a pool-scoped supervisor, its pool's);
    an agent reads the contacts it holds."""
    engine = engine_for(request, who)
    c = await engine.get_contact(contact_id)
    if Role.ADMIN in who.roles:
        return c
    if Role.SUPERVISOR in who.roles and (who.pool is None or c.pool == who.pool):
        return c
    if c.agent is not None and who.may_act_for(c.agent):
        return c
    raise ContactNotFound(f"contact {contact_id!r} does not exist")


@routes.get("/v1/contacts")
async def find_contacts(request: web.Request) -> web.Response:
    """Contacts by the platform's or provider's own id (a CallSid, a Message-ID...)."""
    who = principal(request, Role.INGEST, Role.SUPERVISOR, Role.ADMIN)
    external_id = request.query.get("external_id")
    if not external_id or len(external_id) > 500:
        raise invalid("external_id", "is required, at most 500 characters")
    found = await engine_for(request, who).find_by_external_id(external_id)
    if who.pool is not None and Role.ADMIN not in who.roles:
        found = [c for c in found if c.pool == who.pool]
    engine = engine_for(request, who)
    return respond(request, {"contacts": [await view_for(engine, who, c) for c in found]})


@routes.get("/v1/contacts/{id}")
async def get_contact(request: web.Request) -> web.Response:
    who = principal(request)
    cid = request.match_info["id"]
    engine = engine_for(request, who)
    c = await _readable(request, who, cid)
    return respond(request, await view_for(engine, who, c, timeline=await engine.timeline(cid)))


@routes.post("/v1/contacts/{id}/abandon")
async def abandon(request: web.Request) -> web.Response:
    who = principal(request, Role.INGEST, Role.ADMIN)
    body = await read_body(request, ("reason",))
    engine = engine_for(request, who)
    cid = request.match_info["id"]
    await engine.abandon(cid, body.ident("reason") or "")
    return respond(request, await view_for(engine, who, await engine.get_contact(cid)))


async def _holder(request: web.Request, who: Principal, cid: str) -> str | None:
    """The agent the caller acts as for this contact (None for supervisors/admins)."""
    engine = engine_for(request, who)
    c = await engine.get_contact(cid)
    if Role.ADMIN in who.roles or Role.SUPERVISOR in who.roles:
        return None
    if c.agent is None or not who.may_act_for(c.agent):
        if Role.AGENT in who.roles:
            raise ApiError(409, "conflict", f"contact {cid} is not held by this agent")
        raise ApiError(403, "forbidden", "this action needs the agent, supervisor or admin role")
    return c.agent


@routes.post("/v1/contacts/{id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
    body = await read_body(request, ("queue", "agent"))
    queue, agent = body.ident("queue"), body.ident("agent")
    if (queue is None) == (agent is None):
        raise invalid("queue", "give exactly one of queue or agent")
    cid = request.match_info["id"]
    by = await _holder(request, who, cid)
    engine = engine_for(request, who)
    await engine.transfer(cid, queue=queue, agent=agent, by_agent=by)
    return respond(request, await view_for(engine, who, await engine.get_contact(cid), by))


@routes.post("/v1/contacts/{id}/complete")
async def complete(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT, Role.ADMIN)
    body = await read_body(request, ("disposition",))
    cid = request.match_info["id"]
    by = await _holder(request, who, cid)
    engine = engine_for(request, who)
    await engine.complete(cid, by, body.ident("disposition") or "")
    return respond(request, await view_for(engine, who, await engine.get_contact(cid), by))


@routes.post("/v1/contacts/{id}/wrapup-done")
async def wrapup_done(request: web.Request) -> web.Response:
    who = principal(request, Role.AGENT, Role.ADMIN)
    body = await read_body(request, ("disposition",))
    cid = request.match_info["id"]
    by = await _holder(request, who, cid)
    engine = engine_for(request, who)
    c0 = await engine.get_contact(cid)
    if c0.state is not ContactState.WRAP_UP:
        raise ApiError(409, "conflict", f"contact {cid} is {c0.state.value}, not in wrap-up")
    await engine.finish_wrap_up(cid, by, body.ident("disposition") or "")
    return respond(request, await view_for(engine, who, await engine.get_contact(cid), by))


@routes.post("/v1/contacts/{id}/respond")
async def respond_first(request: web.Request) -> web.Response:
    """The first reply to an async contact: meets its first-response SLA, once."""
    who = principal(request, Role.AGENT, Role.ADMIN)
    body = await read_body(request, ("agent",))
    named = body.ident("agent")
    cid = request.match_info["id"]
    engine = engine_for(request, who)
    c = await engine.get_contact(cid)
    if Role.ADMIN not in who.roles and (c.agent is None or not who.may_act_for(c.agent)):
        raise ApiError(409, "conflict", f"contact {cid} is not held by this agent")
    if named is not None and named != c.agent:
        raise ApiError(409, "conflict", f"contact {cid} is not held by agent {named}")
    await engine.respond(cid, c.agent if Role.ADMIN not in who.roles else named)
    return respond(request, await view_for(engine, who, await engine.get_contact(cid), c.agent))


def _score(body: Body, name: str, lo: int, hi: int) -> int | None:
    if name not in body.data:
        return None
    v = body.data[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid(name, f"must be an integer {lo}..{hi}, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise invalid(name, f"must be an integer {lo}..{hi}, got {v}")
    return v


@routes.post("/v1/contacts/{id}/survey")
async def survey(request: web.Request) -> web.Response:
    """The customer's survey answer (CSAT 1-5 and/or NPS 0-10), relayed by the platform
    (ingest role) or entered by an admin: 201 when recorded, 200 for a repeat of the
    same survey; 409 for a contact never answered or surveyed with other values."""
    who = principal(request, Role.INGEST, Role.ADMIN)
    body = await read_body(request, ("csat", "nps"))
    csat, nps = _score(body, "csat", 1, 5), _score(body, "nps", 0, 10)
    if csat is None and nps is None:
        raise invalid("csat", "give csat (1-5), nps (0-10) or both")
    engine = engine_for(request, who)
    new, record = await engine.survey(request.match_info["id"], csat, nps)
    return respond(request, record, 201 if new else 200)
