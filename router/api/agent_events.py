"""`GET /v1/agents/{id}/events`: Server-Sent Events for agent desktops.

The stream tells a desktop what its agent has, without polling: the agent on
connect, each open offer, when an offer closes, and each change of the agent's
contacts. It is a heartbeat too, so an open stream keeps the agent present.

Only new offers publish a wake-up (router/wakeups.py); accepts, expiries,
completions and transfers do not. So each stream re-reads its agent's state on
every wake-up and at least every `RECHECK_S`, and sends the difference: an
offer arrives at once, other changes within `RECHECK_S`. State is the truth, so
a lost wake-up or a reconnect never loses anything: a new stream starts with a
full snapshot. Event ids are a per-connection sequence, not a resume point.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from ..config.model import Role
from ..engine import Engine
from ..errors import AgentNotFound, ContactNotFound
from ..ids import validate_id
from ..model import Agent, Contact, ContactState
from .auth import Principal, digest, principal
from .context import SERVICE
from .problems import ApiError
from .render import agent_json, offer_json
from .visibility import view_for

log = logging.getLogger("switchboard.api.events")

routes = web.RouteTableDef()

KEEPALIVE_S = 15.0  # `: keepalive` comment and heartbeat (sooner if presence needs it)
RECHECK_S = 1.0  # re-read state at least this often: only offers publish a wake-up
MAX_STREAMS_PER_AGENT = 4  # per agent and server process
RETRY_MS = 3000  # the `retry:` hint sent first: how long a client waits to reconnect
EVENT_STREAM = "text/event-stream"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass
class _Hub:
    """The streams of one app: per-agent counts, and their wake-ups for shutdown."""

    open: dict[tuple[str, str], int] = field(default_factory=dict)
    wakes: set[asyncio.Event] = field(default_factory=set)
    closing: bool = False

    @contextlib.contextmanager
    def slot(self, tenant: str, agent: str, woken: asyncio.Event) -> Iterator[None]:
        key = (tenant, agent)
        if self.closing:
            raise ApiError(503, "unavailable", "the server is shutting down; reconnect shortly")
        if self.open.get(key, 0) >= MAX_STREAMS_PER_AGENT:
            raise ApiError(
                429,
                "too many streams",
                f"agent {agent} already has {MAX_STREAMS_PER_AGENT} open event streams; "
                "close one first",
            )
        self.open[key] = self.open.get(key, 0) + 1
        self.wakes.add(woken)
        try:
            yield
        finally:
            self.wakes.discard(woken)
            self.open[key] -= 1
            if not self.open[key]:
                del self.open[key]


_hubs: weakref.WeakKeyDictionary[web.Application, _Hub] = weakref.WeakKeyDictionary()


def _hub(app: web.Application) -> _Hub:
    return _hubs.setdefault(app, _Hub())


def open_streams(app: web.Application, tenant: str | None = None, agent: str | None = None) -> int:
    """How many event streams `app` is serving (for one agent, when given)."""
    hub = _hubs.get(app)
    if hub is None:
        return 0
    return sum(
        n
        for (t, a), n in hub.open.items()
        if (tenant is None or t == tenant) and (agent is None or a == agent)
    )


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every stream now, so the server need not wait them out."""
    hub = _hub(app)
    hub.closing = True
    for woken in hub.wakes:
        woken.set()


def accepts_event_stream(accept: str | None) -> bool:
    """Whether an Accept header admits text/event-stream: the most specific
    matching range decides (RFC 9110 12.5.1); no header admits anything."""
    if accept is None or not accept.strip():
        return True
    best: tuple[int, float] | None = None  # (specificity, q)
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        rank = {EVENT_STREAM: 2, "text/*": 1, "*/*": 0}.get(media.lower())
        if rank is None:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if best is None or rank > best[0]:
            best = (rank, q)
    return best is not None and best[1] > 0


def require_event_stream(request: web.Request) -> None:
    """406 before any work when the client does not take text/event-stream."""
    if not accepts_event_stream(request.headers.get("Accept")):
        raise ApiError(406, "not acceptable", f"this resource is {EVENT_STREAM}; accept it")


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    """Send the head of an SSE response; after this, errors can no longer be problems.
    `X-Accel-Buffering: no` keeps nginx-style proxies from holding frames back."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": EVENT_STREAM,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    return resp


def _frame(seq: int, event: str, data: dict[str, Any]) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {_dumps(data)}\n\n".encode()


async def _contact_or_none(engine: Engine, cid: str) -> Contact | None:
    try:
        return await engine.get_contact(cid)
    except ContactNotFound:  # finished and expired between two reads
        return None


def _closed_reason(c: Contact | None, aid: str) -> str:
    """Why an announced offer is no longer open, as far as the contact tells:
    `accepted` if this agent took it, else the contact's state (`queued` after a
    reject, an expiry or the agent leaving, which the record does not tell apart;
    `reserved` when offered to someone else; `abandoned`), `gone` without a record."""
    if c is None:
        return "gone"
    taken = {ContactState.ASSIGNED, ContactState.WRAP_UP, ContactState.COMPLETED}
    if c.state in taken and c.agent == aid and c.assigned_ms is not None:
        return "accepted"
    return c.state.value


@dataclass
class _Diff:
    """What this stream has told its client, to send only what changed."""

    aid: str
    who: Principal  # the caller: its pool's visibility policy shapes each contact
    offers: set[str] = field(default_factory=set)  # announced and still open
    held: dict[str, ContactState] = field(default_factory=dict)  # other contacts, as sent
    agent: dict[str, Any] | None = None  # last `agent` data, without last_seen

    async def step(self, engine: Engine) -> list[tuple[str, dict[str, Any]]]:
        a = await engine.get_agent(self.aid)
        found = await asyncio.gather(*(_contact_or_none(engine, c) for c in sorted(a.contacts)))
        now = {c.id: c for c in found if c is not None}
        first = self.agent is None
        out: list[tuple[str, dict[str, Any]]] = []
        snapshot = self._agent_event(a, now)
        if first and snapshot is not None:
            out.append(snapshot)  # on connect the agent comes first, then what it has
        open_now = [c for c in now.values() if c.state is ContactState.RESERVED and c.agent == a.id]
        for cid in sorted(self.offers - {c.id for c in open_now}):
            c = now.get(cid) or await _contact_or_none(engine, cid)
            out.append(("offer.closed", {"id": cid, "reason": _closed_reason(c, a.id)}))
        out += [
            ("offer", offer_json(c, await view_for(engine, self.who, c, self.aid)))
            for c in open_now
            if c.id not in self.offers
        ]
        self.offers = {c.id for c in open_now}
        held = {cid: c for cid, c in now.items() if cid not in self.offers}
        for cid in sorted(self.held.keys() - held.keys()):  # completed or moved away
            gone = await _contact_or_none(engine, cid)
            if gone is not None:
                out.append(("contact", await view_for(engine, self.who, gone, self.aid)))
        out += [
            ("contact", await view_for(engine, self.who, c, self.aid))
            for c in held.values()
            if self.held.get(c.id) != c.state
        ]
        self.held = {cid: c.state for cid, c in held.items()}
        if not first and snapshot is not None:
            out.append(snapshot)  # after the changes it reflects
        return out

    def _agent_event(
        self, a: Agent, contacts: dict[str, Contact]
    ) -> tuple[str, dict[str, Any]] | None:
        """The agent as GET /v1/agents/{id} shows it, when it changed (last_seen aside:
        it moves with every heartbeat, this stream's own included)."""
        offers = [c for c in sorted(a.contacts) if _reserved(contacts.get(c))]
        data = agent_json(a, offers)
        key = {k: v for k, v in data.items() if k != "last_seen"}
        if key == self.agent:
            return None
        self.agent = key
        return ("agent", data)


def _reserved(c: Contact | None) -> bool:
    return c is not None and c.state is ContactState.RESERVED


def _acting_agent(who: Principal, agent_id: str) -> None:
    if Role.ADMIN in who.roles or who.may_act_for(agent_id):
        return
    raise ApiError(403, "forbidden", f"this token may not act for agent {agent_id}")


async def _still_authorized(engine: Engine, token_digest: str) -> bool:
    """Whether the stream's token still exists: a stream outlives any request, so a
    token revoked (issued ones) or removed by a reload (configured ones) ends it."""
    if any(t.sha256 == token_digest for t in engine.tenant.tokens):
        return True
    return await engine.agent_for_token(token_digest) is not None


def _heartbeat_every(engine: Engine) -> float:
    """The keepalive interval, short enough that presence never times out."""
    presence = engine.tenant.routing.presence_timeout_s
    return min(KEEPALIVE_S, presence / 3) if presence > 0 else KEEPALIVE_S


@routes.get("/v1/agents/{id}/events")
async def agent_events(request: web.Request) -> web.StreamResponse:
    """The agent's events as Server-Sent Events, until the client or the server
    goes. Counts as the agent's heartbeat while it is open."""
    who = principal(request, Role.AGENT, Role.ADMIN)
    aid = validate_id(request.match_info["id"], "id")
    _acting_agent(who, aid)
    require_event_stream(request)
    service = request.app[SERVICE]
    engine = service.engines[who.tenant]
    with contextlib.ExitStack() as stack:
        # wake-ups first, then the snapshot: an offer made in between still wakes us
        woken = (
            stack.enter_context(service.wakeups.waiter(who.tenant, aid))
            if service.wakeups is not None
            else asyncio.Event()
        )
        stack.enter_context(_hub(request.app).slot(who.tenant, aid, woken))
        await engine.heartbeat(aid)  # 404 for an unknown agent
        diff = _Diff(aid, who)
        first = await diff.step(engine)  # until prepare(), errors become problems
        resp = await open_event_stream(request)
        try:
            await _stream(request, resp, who, aid, diff, first, woken)
        except ConnectionError:
            return resp  # the client went while we wrote
        except (RedisError, RedisClusterException) as exc:
            log.warning("event stream of agent %s ended: redis unavailable (%s)", aid, exc)
        except AgentNotFound:
            pass  # the agent is gone: nothing more to tell
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp


async def _stream(
    request: web.Request,
    resp: web.StreamResponse,
    who: Principal,
    aid: str,
    diff: _Diff,
    first: list[tuple[str, dict[str, Any]]],
    woken: asyncio.Event,
) -> None:
    """Write events until the client disconnects or the server shuts down."""
    service = request.app[SERVICE]
    hub = _hub(request.app)
    loop = asyncio.get_running_loop()
    token = digest(request.headers.get("Authorization", "").partition(" ")[2].strip())
    seq = 0

    async def send(events: list[tuple[str, dict[str, Any]]], head: bytes = b"") -> None:
        nonlocal seq
        chunk = [head]
        for name, data in events:
            seq += 1
            chunk.append(_frame(seq, name, data))
        if len(chunk) > 1 or head:
            await resp.write(b"".join(chunk))

    await send(first, f"retry: {RETRY_MS}\n\n".encode())
    engine = service.engines[who.tenant]
    beat_at = loop.time() + _heartbeat_every(engine)
    while True:
        wait = min(RECHECK_S, beat_at - loop.time())
        if wait > 0 and not woken.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await woken.wait()
        woken.clear()
        transport = request.transport
        if hub.closing or transport is None or transport.is_closing():
            return  # shutdown, or the client went (seen here when handlers are not cancelled)
        engine_now = service.engines.get(who.tenant)
        if engine_now is None:
            return  # the tenant was removed by a reload
        engine = engine_now
        await send(await diff.step(engine))
        if loop.time() >= beat_at:
            if not await _still_authorized(engine, token):
                return  # a reconnect gets its 401
            await engine.heartbeat(aid)
            await send([], b": keepalive\n\n")
            beat_at = loop.time() + _heartbeat_every(engine)
