"""Live metrics over HTTP: JSON snapshot, history, Server-Sent Events, Prometheus.

Every route needs a supervisor or admin token. A supervisor token scoped to a
pool sees that pool, and only the queues whose stages include it.

The SSE stream computes one snapshot per second per process for each (tenant,
scope, window) that has a listener, however many dashboards listen: the frame
is encoded once and the same bytes go to every stream (a `_Feed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config.model import Role
from ..engine import Engine
from ..metrics import definitions as d
from ..metrics.query import HISTORY_MAX_MS as HISTORY_MAX_MS
from ..metrics.query import WINDOWS, Scope, history, snapshot, totals
from .agent_events import open_event_stream, require_event_stream
from .auth import Principal, TokenTable, digest, principal
from .context import SERVICE, engine_for
from .negotiate import respond
from .problems import ApiError, Handler

log = logging.getLogger("switchboard.api.metrics")

routes = web.RouteTableDef()

FRAME_EVERY_S = 1.0  # at most one snapshot (and frame) per second per feed
KEEPALIVE_S = 15.0
RETRY_MS = 3000
HISTORY_DEFAULT_MS = 86_400_000  # history without `from`: the last 24 hours
PROMETHEUS_PATH = "/metrics"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def scope_of(who: Principal) -> Scope:
    """Admins see everything; a pool-scoped supervisor token sees its pool."""
    if Role.ADMIN in who.roles or who.pool is None:
        return Scope()
    return Scope(who.pool)


def _window(request: web.Request) -> str:
    window = request.query.get("window", "15m")
    if window not in WINDOWS:
        raise ApiError(
            400,
            "bad request",
            f"window: must be one of {', '.join(WINDOWS)}, got {window!r}",
            field="window",
        )
    return window


def parse_time(value: str, what: str) -> int:
    """A time as ms since the epoch, or ISO 8601 (a time without offset is UTC)."""
    v = value.strip()
    if v.isdigit() and len(v) <= 15:
        return int(v)
    try:
        when = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400,
            "bad request",
            f"{what}: must be ms since the epoch or an ISO 8601 time such as "
            f"2026-11-23T08:00:00Z, got {value[:64]!r}",
            field=what,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


# -- GET /v1/metrics, /v1/metrics/history -------------------------------------


@routes.get("/v1/metrics")
async def get_metrics(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    window = _window(request)
    return respond(request, await snapshot(engine_for(request, who), window, scope_of(who)))


@routes.get("/v1/metrics/history")
async def get_history(request: web.Request) -> web.Response:
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    engine = engine_for(request, who)
    q = request.query
    end = parse_time(q["to"], "to") if "to" in q else engine.clock.now_ms()
    start = parse_time(q["from"], "from") if "from" in q else end - HISTORY_DEFAULT_MS
    if start >= end:
        raise ApiError(400, "bad request", "from: must be before to", field="from")
    if end - start > HISTORY_MAX_MS:
        days = HISTORY_MAX_MS // 86_400_000
        raise ApiError(
            400,
            "bad request",
            f"from: the range may span at most {days} days; ask for it in parts",
            field="from",
        )
    queue = q.get("queue")
    scope = scope_of(who)
    if queue is not None and queue not in {x.id for x in scope.queues(engine.tenant)}:
        if queue in engine.tenant.queues:
            raise ApiError(403, "forbidden", f"this token may not see queue {queue!r}")
        raise ApiError(404, "not found", f"no queue named {queue[:64]!r}", field="queue")
    return respond(request, await history(engine, start, end, queue, scope))


# -- GET /v1/metrics/stream ----------------------------------------------------


@dataclass
class _Feed:
    """One snapshot per second for one (tenant, scope, window), shared by its streams."""

    engine: Engine
    window: str
    scope: Scope
    listeners: set[asyncio.Event] = field(default_factory=set)
    frame: bytes = b""
    version: int = 0
    first: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    _last: str = ""

    async def compute(self) -> None:
        snap = await snapshot(self.engine, self.window, self.scope)
        figures = _dumps({k: v for k, v in snap.items() if k not in ("at", "window")})
        if figures != self._last:
            self._last = figures
            self.frame = f"event: metrics\ndata: {_dumps(snap)}\n\n".encode()
            self.version += 1
            for woken in self.listeners:
                woken.set()


@dataclass
class _Hub:
    feeds: dict[tuple[str, str | None, str], _Feed] = field(default_factory=dict)
    wakes: set[asyncio.Event] = field(default_factory=set)
    closing: bool = False

    @contextlib.contextmanager
    def listen(
        self, engine: Engine, window: str, scope: Scope
    ) -> Iterator[tuple[_Feed, asyncio.Event]]:
        if self.closing:
            raise ApiError(503, "unavailable", "the server is shutting down; reconnect shortly")
        key = (engine.tenant.id, scope.pool, window)
        feed = self.feeds.get(key)
        if feed is None or feed.engine is not engine:
            feed = self.feeds[key] = _Feed(engine, window, scope)
        woken = asyncio.Event()
        feed.listeners.add(woken)
        self.wakes.add(woken)
        if feed.task is None:
            feed.first = asyncio.get_running_loop().create_future()
            feed.task = asyncio.create_task(self._run(key, feed))
        try:
            yield feed, woken
        finally:
            feed.listeners.discard(woken)
            self.wakes.discard(woken)

    async def _run(self, key: tuple[str, str | None, str], feed: _Feed) -> None:
        """Recompute while anyone listens; end (and forget the feed) when nobody does."""
        assert feed.first is not None
        try:
            while feed.listeners and not self.closing:
                try:
                    await feed.compute()
                    if not feed.first.done():
                        feed.first.set_result(None)
                except Exception as exc:
                    if not feed.first.done():
                        feed.first.set_exception(exc)
                        return
                    log.warning("metrics stream of %s: snapshot failed (%s)", key[0], exc)
                await asyncio.sleep(FRAME_EVERY_S)
        finally:
            feed.task = None
            if self.feeds.get(key) is feed and not feed.listeners:
                del self.feeds[key]
            if feed.first is not None and not feed.first.done():
                feed.first.cancel()


_hubs: weakref.WeakKeyDictionary[web.Application, _Hub] = weakref.WeakKeyDictionary()


def _hub(app: web.Application) -> _Hub:
    return _hubs.setdefault(app, _Hub())


def open_feeds(app: web.Application) -> dict[tuple[str, str | None, str], int]:
    """Per (tenant, pool scope, window): how many streams listen (tests, benchmarks)."""
    hub = _hubs.get(app)
    return {} if hub is None else {k: len(f.listeners) for k, f in hub.feeds.items()}


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every metrics stream now."""
    hub = _hub(app)
    hub.closing = True
    for woken in hub.wakes:
        woken.set()
    for feed in list(hub.feeds.values()):
        if feed.task is not None:
            feed.task.cancel()  # no snapshot is left running after shutdown


@routes.get("/v1/metrics/stream")
async def metrics_stream(request: web.Request) -> web.StreamResponse:
    """`event: metrics` frames: at once, then at most once a second when a figure
    changed; `: keepalive` every KEEPALIVE_S. Ends when the client or the server goes,
    or when the token is no longer configured."""
    who = principal(request, Role.SUPERVISOR, Role.ADMIN)
    window = _window(request)
    require_event_stream(request)
    engine = engine_for(request, who)
    hub = _hub(request.app)
    token = digest(request.headers.get("Authorization", "").partition(" ")[2].strip())
    with hub.listen(engine, window, scope_of(who)) as (feed, woken):
        assert feed.first is not None
        await asyncio.shield(feed.first)  # the first snapshot; its errors become problems
        resp = await open_event_stream(request)
        try:
            await _stream(request, resp, hub, feed, woken, token)
        except ConnectionError:
            return resp
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp


async def _stream(
    request: web.Request,
    resp: web.StreamResponse,
    hub: _Hub,
    feed: _Feed,
    woken: asyncio.Event,
    token: str,
) -> None:
    loop = asyncio.get_running_loop()
    sent = feed.version
    await resp.write(f"retry: {RETRY_MS}\n\n".encode() + feed.frame)
    beat_at = loop.time() + KEEPALIVE_S
    while True:
        wait = beat_at - loop.time()
        if wait > 0 and not woken.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await woken.wait()
        woken.clear()
        transport = request.transport
        if hub.closing or transport is None or transport.is_closing():
            return
        if feed.version != sent:
            sent = feed.version
            await resp.write(feed.frame)
        if loop.time() >= beat_at:
            if not any(t.sha256 == token for t in feed.engine.tenant.tokens):
                return  # the token was removed by a reload: a reconnect gets its 401
            await resp.write(b": keepalive\n\n")
            beat_at = loop.time() + KEEPALIVE_S


# -- GET /metrics (Prometheus) ------------------------------------------------


_tables: weakref.WeakKeyDictionary[web.Application, TokenTable] = weakref.WeakKeyDictionary()


def _scraper(request: web.Request) -> Principal:
    """/metrics is outside /v1, so it checks its bearer token itself."""
    service = request.app[SERVICE]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <supervisor token>")
    table = _tables.get(request.app)
    if table is None or table.config is not service.config:
        table = _tables[request.app] = TokenTable(service.config)
    who = table.lookup(token)
    if who is None or who.tenant not in service.engines:
        raise ApiError(401, "unauthorized", "the bearer token is not valid")
    if not who.roles & {Role.SUPERVISOR, Role.ADMIN}:
        raise ApiError(403, "forbidden", "this action needs the supervisor or admin role")
    return who


class _Families(Collector):
    """The families computed for one scrape (prometheus_client collects them)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


_QUEUE_COUNTERS = (
    ("offered", d.OFFERED, 1, "Contacts that entered the queue (once per contact per queue)"),
    ("answered", d.ANSWERED, 1, "Contacts answered (first assignment in the queue)"),
    (
        "answered_within_threshold",
        d.ANSWERED_WITHIN,
        1,
        "Contacts answered within the queue's service-level threshold "
        "(first-response queues: first responses within it)",
    ),
    ("answer_wait_seconds", d.WAIT_MS, 1000, "Sum of the waits of answered contacts (ASA)"),
    ("abandoned", d.ABANDONED, 1, "Contacts abandoned before an answer"),
    ("abandoned_within_grace", d.ABANDONED_IN_GRACE, 1, "Abandons within the abandon grace"),
    ("handled", d.HANDLED, 1, "Answered contacts completed"),
    ("handle_seconds", d.HANDLE_MS, 1000, "Sum of handle times (talk + wrap-up)"),
    ("sla_breaches", d.BREACHES, 1, "SLA breaches (sla.breached events)"),
    ("sla_warnings", d.WARNINGS, 1, "SLA warnings (sla.warning events)"),
    ("csat_score_sum", d.CSAT_SUM, 1, "Sum of CSAT answers (1-5) of customer surveys"),
    ("csat_answers", d.CSAT_COUNT, 1, "Customer surveys with a CSAT answer"),
    ("nps_promoters", d.NPS_PROMOTERS, 1, "NPS answers of 9-10"),
    ("nps_detractors", d.NPS_DETRACTORS, 1, "NPS answers of 0-6"),
    ("nps_answers", d.NPS_COUNT, 1, "Customer surveys with an NPS answer"),
)
_QUEUE_COUNTERS_SCOPED = tuple(c for c in _QUEUE_COUNTERS if c[1] not in d.SURVEY_COUNTERS)
_POOL_COUNTERS = (
    ("answered", d.ANSWERED, 1, "Contacts answered by the pool's agents"),
    (
        "answered_within_threshold",
        d.ANSWERED_WITHIN,
        1,
        "Answers within their queue's service-level threshold",
    ),
    ("answer_wait_seconds", d.WAIT_MS, 1000, "Sum of the waits of answered contacts"),
    ("handled", d.HANDLED, 1, "Contacts completed by the pool's agents"),
    ("handle_seconds", d.HANDLE_MS, 1000, "Sum of handle times (talk + wrap-up)"),
    (
        "available_seconds",
        d.AVAILABLE_MS,
        1000,
        "Time the pool's agents spent available (spans that ended)",
    ),
    ("csat_score_sum", d.CSAT_SUM, 1, "Sum of CSAT answers (1-5) of customer surveys"),
    ("csat_answers", d.CSAT_COUNT, 1, "Customer surveys with a CSAT answer"),
    ("nps_promoters", d.NPS_PROMOTERS, 1, "NPS answers of 9-10"),
    ("nps_detractors", d.NPS_DETRACTORS, 1, "NPS answers of 0-6"),
    ("nps_answers", d.NPS_COUNT, 1, "Customer surveys with an NPS answer"),
)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"switchboard_{name}", doc, labels=labels)


def _families(
    snap: dict[str, Any],
    q_tot: dict[str, dict[str, int]],
    p_tot: dict[str, dict[str, int]],
    queue_counters: tuple[tuple[str, str, int, str], ...] = (),
) -> list[Metric]:
    """Counters are the consumer's totals only, so they never go down between scrapes
    (available time counts spans that ended; agents available now are the gauge
    `switchboard_pool_agents{status="available"}`)."""
    tenant = snap["tenant"]
    out: list[Metric] = []
    ql, pl = ["tenant", "queue"], ["tenant", "pool"]
    for name, key, scale, doc in queue_counters or _QUEUE_COUNTERS:
        fam = CounterMetricFamily(f"switchboard_queue_{name}", doc, labels=ql)
        for q in snap["queues"]:
            fam.add_metric([tenant, q], q_tot.get(q, {}).get(key, 0) / scale)
        out.append(fam)
    for name, key, scale, doc in _POOL_COUNTERS:
        fam = CounterMetricFamily(f"switchboard_pool_{name}", doc, labels=pl)
        for p in snap["pools"]:
            fam.add_metric([tenant, p], p_tot.get(p, {}).get(key, 0) / scale)
        out.append(fam)
    window = snap["window"]["name"]
    queue_gauges: tuple[tuple[str, str, Any], ...] = (
        ("queue_waiting", "Contacts waiting now", lambda v: v["waiting"]),
        ("queue_held", "New contacts held now while the queue is closed", lambda v: v["held"]),
        (
            "queue_longest_wait_seconds",
            "Wait of the longest-waiting contact now",
            lambda v: v["longest_wait_s"],
        ),
        (
            "queue_agents_available",
            "Agents ready for the queue now",
            lambda v: v["agents_available"],
        ),
        (
            "queue_service_level",
            f"Service level over the last {window} (0..1)",
            lambda v: v["service_level"]["value"],
        ),
        (
            "queue_service_level_target",
            "Service-level target (0..1)",
            lambda v: v["service_level_target"],
        ),
        (
            "queue_service_level_threshold_seconds",
            "Service-level threshold",
            lambda v: v["service_level"]["threshold_s"],
        ),
        (
            "queue_asa_seconds",
            f"Average speed of answer over the last {window}",
            lambda v: v["asa_s"],
        ),
        ("queue_aht_seconds", f"Average handle time over the last {window}", lambda v: v["aht_s"]),
        (
            "queue_abandon_rate",
            f"Abandoned / offered over the last {window}",
            lambda v: v["abandon_rate"],
        ),
    )
    for name, doc, get in queue_gauges:
        gauge = _gauge(name, doc, ql)
        for q, v in snap["queues"].items():
            value = get(v)
            if value is not None:  # no data: no sample, rather than a made-up 0
                gauge.add_metric([tenant, q], float(value))
        out.append(gauge)
    agents = _gauge("pool_agents", "Agents of the pool by status now", [*pl, "status"])
    pool_gauges: tuple[tuple[str, str, Any], ...] = (
        ("pool_occupancy", f"Occupancy over the last {window} (0..1)", lambda v: v["occupancy"]),
        (
            "pool_service_level",
            f"Answers within their queue's threshold over the last {window} (0..1)",
            lambda v: v["service_level"]["value"],
        ),
        (
            "pool_asa_seconds",
            f"Average speed of answer over the last {window}",
            lambda v: v["asa_s"],
        ),
        ("pool_aht_seconds", f"Average handle time over the last {window}", lambda v: v["aht_s"]),
    )
    for p, v in snap["pools"].items():
        for status, n in sorted(v["agents"].items()):
            agents.add_metric([tenant, p, status], float(n))
    out.append(agents)
    for name, doc, get in pool_gauges:
        gauge = _gauge(name, doc, pl)
        for p, v in snap["pools"].items():
            value = get(v)
            if value is not None:
                gauge.add_metric([tenant, p], float(value))
        out.append(gauge)
    return out


async def prometheus(request: web.Request) -> web.Response:
    """GET /metrics: the text exposition of the token's tenant (and pool scope)."""
    who = _scraper(request)
    engine = request.app[SERVICE].engines[who.tenant]
    body = await exposition(engine, scope_of(who))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def exposition(engine: Engine, scope: Scope) -> bytes:
    """The Prometheus text of one tenant, as `scope` may see it."""
    snap = await snapshot(engine, "15m", scope)
    q_tot, p_tot = await totals(engine)

    registry = CollectorRegistry(auto_describe=False)
    # as in the snapshot: a pool-scoped reader gets no queue-level survey figures
    queue_counters = _QUEUE_COUNTERS if scope.pool is None else _QUEUE_COUNTERS_SCOPED
    registry.register(_Families(_families(snap, q_tot, p_tot, queue_counters)))
    return generate_latest(registry)


@web.middleware
async def prometheus_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serves GET /metrics. Like the dashboard, it is served by a middleware, not a
    route: it is an operations endpoint in Prometheus' format, not part of the v1
    API that the OpenAPI document describes. Unlike the dashboard, it needs a token."""
    if request.path != PROMETHEUS_PATH:
        return await handler(request)
    if request.method not in ("GET", "HEAD"):
        raise ApiError(
            405,
            "method not allowed",
            f"{PROMETHEUS_PATH} answers GET and HEAD, not {request.method}",
            headers={"Allow": "GET,HEAD"},
        )
    return await prometheus(request)


def add_routes(app: web.Application) -> None:
    """Register the metrics routes, GET /metrics (a middleware, after the others:
    inside the problem and request-id middlewares), and the shutdown hook that ends
    open streams."""
    app.add_routes(routes)
    app.middlewares.append(prometheus_middleware)
    app.on_shutdown.append(close_streams)
