"""Administration of outbound webhooks: subscriptions and dead letters (admin token).

Config subscriptions are listed but read-only (change the file and reload);
subscriptions made here live in Redis with a secret the server generates and
returns once, in the 201 answer. See docs/webhooks.md.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..config.model import Role
from ..config.webhooks import MAX_EVENTS, MAX_URL, event_problem, url_problem
from ..ids import ID_PATTERN
from ..webhooks.store import (
    MAX_RUNTIME_SUBSCRIPTIONS,
    DropRun,
    Drops,
    Subscription,
    WebhookStore,
)
from .auth import principal
from .bodies import invalid, read_body
from .context import SERVICE
from .negotiate import respond
from .problems import ApiError
from .render import rfc3339

routes = web.RouteTableDef()

DEAD_LETTER_ID = r"[0-9]{1,20}-[0-9]{1,20}\." + ID_PATTERN
_DEAD_RE = re.compile(DEAD_LETTER_ID + r"\Z")
MAX_PAGE = 500
DEFAULT_PAGE = 100


def _store(request: web.Request, tenant: str) -> WebhookStore:
    runner = request.app[SERVICE].webhooks
    if runner is None:
        raise ApiError(503, "not ready", "starting up", headers={"Retry-After": "1"})
    return runner.store(tenant)


def _sub_json(sub: Subscription, pending: int, drops: Drops | None = None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "url": sub.url,
        "events": list(sub.events),
        "source": sub.source,
        "secret_env": sub.secret_env or None,
        "created_at": rfc3339(sub.created_ms),
        "pending": pending,
        "dropped": drops.count if drops else 0,
        "dropped_events": None
        if drops is None
        else {
            **_run_json(
                DropRun(
                    drops.first_event,
                    drops.last_event,
                    drops.first_ms,
                    drops.last_ms,
                    drops.run_count,
                    drops.ended_ms,
                )
            ),
            "previous": [_run_json(r) for r in drops.previous],
        },
    }


def _run_json(run: DropRun) -> dict[str, Any]:
    """One outage's drops: replay first_event_id..last_event_id from the stream."""
    return {
        "first_event_id": run.first_event,
        "last_event_id": run.last_event,
        "first_at": rfc3339(run.first_ms),
        "last_at": rfc3339(run.last_ms),
        "count": run.count,
        "ended_at": None if run.ended_ms is None else rfc3339(run.ended_ms),
    }


@routes.get("/v1/admin/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    """Every subscription, config and runtime, with its waiting deliveries."""
    who = principal(request, Role.ADMIN)
    engine = request.app[SERVICE].engines[who.tenant]
    store = _store(request, who.tenant)
    subs = await store.subscriptions(engine.tenant)
    pending = await store.pending(list(subs))
    drops = await store.drops(list(subs))
    return respond(
        request,
        {"subscriptions": [_sub_json(s, pending[i], drops[i]) for i, s in subs.items()]},
    )


@routes.post("/v1/admin/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    who = principal(request, Role.ADMIN)
    body = await read_body(request, ("id", "url", "events"))
    sub_id = body.ident("id", required=True)
    url = body.text("url", required=True, max_len=MAX_URL)
    assert sub_id is not None and url is not None
    problem = url_problem(url)
    if problem:
        raise invalid("url", problem)
    raw = body.data.get("events")
    if not isinstance(raw, list) or not raw:
        raise invalid("events", "must be a non-empty array of event types ('*' for all)")
    if len(raw) > MAX_EVENTS:
        raise invalid("events", f"at most {MAX_EVENTS} event types")
    events: list[str] = []
    for i, e in enumerate(raw):
        if not isinstance(e, str):
            raise invalid(f"events[{i}]", f"must be a string, got {type(e).__name__}")
        problem = event_problem(e)
        if problem:
            raise invalid(f"events[{i}]", problem)
        if e not in events:
            events.append(e)
    engine = request.app[SERVICE].engines[who.tenant]
    store = _store(request, who.tenant)
    if any(s.id == sub_id for s in engine.tenant.webhooks.subscriptions):
        raise ApiError(409, "conflict", f"id: the config already has a subscription {sub_id}")
    sub = await store.create(sub_id, url, events, MAX_RUNTIME_SUBSCRIPTIONS)
    if sub == "exists":
        raise ApiError(409, "conflict", f"id: subscription {sub_id} already exists")
    if not isinstance(sub, Subscription):  # the limit is reached
        raise ApiError(
            409,
            "conflict",
            f"at most {MAX_RUNTIME_SUBSCRIPTIONS} subscriptions may be made through the API",
        )
    return respond(request, {**_sub_json(sub, 0), "secret": sub.secret}, status=201)


def _sub_id(request: web.Request) -> str:
    sid = request.match_info["id"]
    if not re.fullmatch(ID_PATTERN, sid):
        raise invalid("id", "must be 1-64 characters of A-Z a-z 0-9 _ . -, starting alphanumeric")
    return sid


@routes.delete("/v1/admin/webhooks/{id}")
async def delete_webhook(request: web.Request) -> web.Response:
    """Delete a subscription made through the API; its waiting deliveries are dropped."""
    who = principal(request, Role.ADMIN)
    sid = _sub_id(request)
    engine = request.app[SERVICE].engines[who.tenant]
    if any(s.id == sid for s in engine.tenant.webhooks.subscriptions):
        raise ApiError(
            409,
            "conflict",
            f"subscription {sid} is defined in the config file: remove it there and reload",
        )
    existed, dropped = await _store(request, who.tenant).delete(sid)
    if not existed:
        raise ApiError(404, "not found", f"no webhook subscription {sid}")
    return respond(request, {"id": sid, "deleted": True, "dropped": dropped})


def _query_int(request: web.Request, name: str, lo: int, hi: int, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise invalid(name, f"must be an integer between {lo} and {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise invalid(name, f"must be an integer between {lo} and {hi}")
    return value


@routes.get("/v1/admin/webhooks/dead-letters")
async def list_dead_letters(request: web.Request) -> web.Response:
    """Deliveries that failed max_attempts times, newest first, a page at a time."""
    who = principal(request, Role.ADMIN)
    offset = _query_int(request, "offset", 0, 10**9, 0)
    limit = _query_int(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE)
    items, total = await _store(request, who.tenant).dead_letters(offset, limit)
    out = []
    for d in items:
        created, dead = d.pop("created_ms"), d.pop("dead_ms")
        out.append({**d, "created_at": rfc3339(created), "dead_at": rfc3339(dead)})
    nxt = offset + limit if offset + limit < total else None
    return respond(
        request,
        {"dead_letters": out, "total": total, "offset": offset, "limit": limit, "next_offset": nxt},
    )


def _dead_id(request: web.Request) -> str:
    did = request.match_info["id"]
    if not _DEAD_RE.match(did):
        raise invalid("id", "must be a dead letter's id: <event id>.<subscription>")
    return did


@routes.post("/v1/admin/webhooks/dead-letters/{id}/retry")
async def retry_dead_letter(request: web.Request) -> web.Response:
    """Send a dead letter again, due now, with max_attempts attempts."""
    who = principal(request, Role.ADMIN)
    did = _dead_id(request)
    await read_body(request, ())
    engine = request.app[SERVICE].engines[who.tenant]
    store = _store(request, who.tenant)
    sub = await store.dead_sub(did)
    if sub is None:
        raise ApiError(404, "not found", f"no dead letter {did}")
    if sub not in await store.subscriptions(engine.tenant):
        raise ApiError(409, "conflict", f"subscription {sub} no longer exists; delete the letter")
    if not await store.retry_dead(did):
        raise ApiError(404, "not found", f"no dead letter {did}")
    return respond(request, {"id": did, "retried": True}, status=202)


@routes.delete("/v1/admin/webhooks/dead-letters/{id}")
async def delete_dead_letter(request: web.Request) -> web.Response:
    who = principal(request, Role.ADMIN)
    did = _dead_id(request)
    if not await _store(request, who.tenant).delete_dead(did):
        raise ApiError(404, "not found", f"no dead letter {did}")
    return respond(request, {"id": did, "deleted": True})
