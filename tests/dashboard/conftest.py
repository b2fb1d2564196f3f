"""Dashboard fixtures: Debian's Chromium driven by Playwright, a scripted metrics
stream (the snapshot contract of docs/metrics.md, served next to the real page),
and a real `python -m router serve` process for the end-to-end tests.

Playwright's own browser download is never used: the tests launch the `chromium`
on PATH (`make test` installs Debian's package when it is missing). Without it the
tests fail and say so; they are never skipped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from redis.asyncio import Redis

from router.api.dashboard import dashboard_middleware
from router.api.problems import problems_middleware

from ..api.conftest import api_toml, make_api, token
from ..conftest import drop_tenant, new_tenant_id
from ..processes import serve_process

__all__ = ["make_api"]  # the API fixture, for the serving tests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"
GOOD_TOKEN = "wall-display-token"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session (a fresh context per test)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "Chromium is not installed: the dashboard tests need the `chromium` command "
            "(make test installs Debian's package: apt-get install chromium)",
            pytrace=False,
        )
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        yield b
        await b.close()


@dataclass
class Tab:
    """A page and what it said: console errors and uncaught exceptions."""

    page: Page
    errors: list[str] = field(default_factory=list)

    async def wait_for(self, expression: str, arg: Any = None, timeout_s: float = 10) -> Any:
        """Waits until the JS `expression` (a function of `arg`) is truthy; returns it."""
        handle = await self.page.wait_for_function(expression, arg=arg, timeout=timeout_s * 1000)
        return await handle.json_value()

    async def screenshot(self, tmp_path: Path, name: str = "dashboard.png") -> Path:
        """Saves a full-page screenshot under the test's tmp dir and as
        var/test-artifacts/<name>; prints both paths."""
        shot = tmp_path / name
        await self.page.screenshot(path=str(shot), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        kept = ARTIFACTS / name
        shutil.copyfile(shot, kept)
        print(f"dashboard screenshot: {shot} (copied to {kept})")
        return shot


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await context.new_page()
    t = Tab(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            t.errors.append(f"console: {msg.text} at {msg.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: t.errors.append(f"uncaught: {exc}"))
    yield t
    await context.close()


# -- the scripted stream -----------------------------------------------------------


def queue_figures(**over: Any) -> dict[str, Any]:
    """One queue of a snapshot, as the metrics contract shapes it."""
    q: dict[str, Any] = {
        "title": None,
        "channels": ["chat"],
        "waiting": 0,
        "longest_wait_s": 0.0,
        "offered": 0,
        "answered": 0,
        "abandoned": 0,
        "service_level": {"threshold_s": 20, "value": None},
        "service_level_target": 0.8,
        "asa_s": None,
        "aht_s": None,
        "abandon_rate": None,
        "sla_breaches": 0,
        "sla_warnings": 0,
        "agents_available": 0,
    }
    q.update(over)
    return q


def pool_figures(kind: str = "inhouse", vendor: str | None = None, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "title": None,
        "kind": kind,
        "vendor": vendor,
        "location": "offshore" if vendor else None,
        "agents": {"available": 3, "away": 1, "offline": 2},
        "occupancy": 0.7,
        "answered": 5,
        "asa_s": 6.0,
        "aht_s": 200.0,
        "service_level": {"threshold_s": None, "value": 0.9},
    }
    p.update(over)
    return p


def snapshot(
    queues: dict[str, dict[str, Any]],
    pools: dict[str, dict[str, Any]] | None = None,
    alerts: list[dict[str, Any]] | None = None,
    at: int = 1_700_000_000_000,
) -> dict[str, Any]:
    return {
        "tenant": "demo",
        "at": at,
        "window": {"name": "15m", "from": at - 900_000, "to": at},
        "queues": queues,
        "pools": pools if pools is not None else {"inhouse": pool_figures()},
        "alerts": alerts or [],
    }


class Stream:
    """`GET /v1/metrics/stream` as the contract describes it, fed by the test:
    `send()` writes one `event: metrics` frame to every open connection, and a
    new connection gets the last snapshot at once. Only GOOD_TOKEN is accepted."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None
        self.clients: set[asyncio.Queue[bytes | None]] = set()
        self.connects = 0
        self.windows: list[str] = []

    def send(self, snap: dict[str, Any]) -> None:
        self.last = snap
        frame = f"event: metrics\ndata: {json.dumps(snap)}\n\n".encode()
        for q in self.clients:
            q.put_nowait(frame)

    def comment(self) -> None:
        for q in self.clients:
            q.put_nowait(b": keepalive\n\n")

    def drop_all(self) -> None:
        """Ends every open stream, as a server restart would."""
        for q in self.clients:
            q.put_nowait(None)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {GOOD_TOKEN}":
            return web.json_response(
                {
                    "type": "about:blank",
                    "title": "unauthorized",
                    "status": 401,
                    "detail": "the bearer token is not valid",
                },
                status=401,
                content_type="application/problem+json",
            )
        self.connects += 1
        self.windows.append(request.query.get("window", ""))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.clients.add(q)
        try:
            await resp.write(b"retry: 1000\n\n")
            if self.last is not None:
                frame = f"event: metrics\ndata: {json.dumps(self.last)}\n\n"
                await resp.write(frame.encode())
            while (chunk := await q.get()) is not None:
                await resp.write(chunk)
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self.clients.discard(q)
        return resp

    async def wait_clients(self, n: int = 1, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.clients) < n:
                await asyncio.sleep(0.02)


def scorecard_figures(vendor: str, **over: Any) -> dict[str, Any]:
    """A vendor scorecard as GET /v1/vendors/{id}/scorecard shapes it: an empty month."""
    sc: dict[str, Any] = {
        "vendor": vendor,
        "name": vendor,
        "from": 1_700_000_000_000,
        "to": 1_702_592_000_000,
        "timezone": "UTC",
        "pools": [],
        "volume": {
            "answered": 0,
            "handled": 0,
            "days": 30,
            "cap": None,
            "commitment": None,
            "commitment_met": None,
        },
        "service_level": {"threshold_s": None, "value": None},
        "service_level_target": None,
        "asa_s": None,
        "aht_s": None,
        "abandoned": 0,
        "abandon_rate": None,
        "csat": None,
        "nps": None,
        "cost": None,
        "sla_breaches": 0,
    }
    sc.update(over)
    return sc


@dataclass
class Scorecards:
    """`GET /v1/vendors/{id}/scorecard`, scripted: `cards[id]`, else an empty one."""

    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # vendor ids, in request order

    async def handler(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {GOOD_TOKEN}":
            raise web.HTTPUnauthorized()
        vid = request.match_info["id"]
        self.asked.append(vid)
        return web.json_response(self.cards.get(vid) or scorecard_figures(vid))


@dataclass
class StubSite:
    stream: Stream
    url: str  # the dashboard's URL: http://127.0.0.1:<port>/dashboard/
    scorecards: Scorecards = field(default_factory=Scorecards)


@pytest.fixture
async def stub() -> AsyncIterator[StubSite]:
    """The real dashboard files, with the metrics stream (and the vendor
    scorecards) scripted by the test."""
    stream = Stream()
    cards = Scorecards()
    app = web.Application(middlewares=[problems_middleware, dashboard_middleware])
    app.router.add_get("/v1/metrics/stream", stream.handler)
    app.router.add_get("/v1/vendors/{id}/scorecard", cards.handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield StubSite(stream, str(server.make_url("/dashboard/")), cards)
    stream.drop_all()
    await server.close()


# -- a real server -----------------------------------------------------------------

LIVE_BODY = """
[routing]
presence_timeout_s = 0

[pools.inhouse]
kind = "inhouse"
name = "Head office"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.chat]
name = "Chat support"
channel = "chat"
pools = ["inhouse"]
sla = { threshold_s = 1, target = 0.8 }

[[queues.chat.overflow]]
after_s = 600
pools = ["near"]

[queues.voice]
name = "Voice"
channel = "voice"
pools = ["inhouse"]
sla = { threshold_s = 20, target = 0.8 }

[queues.email]
channel = "email"
pools = ["inhouse"]
"""


@dataclass
class LiveServer:
    base: str  # http://127.0.0.1:<port>
    tenant: str
    log: Path

    def token(self, name: str) -> str:
        return token(self.tenant, name)

    async def post_contact(self, channel: str = "chat") -> str:
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                f"{self.base}/v1/contacts",
                json={"channel": channel},
                headers={"Authorization": f"Bearer {self.token('ingest')}"},
            )
            body = await r.json()
            assert r.status == 201, body
            return str(body["id"])


@pytest.fixture
async def live(tmp_path: Path, redis_url: str, redis: Redis) -> AsyncIterator[LiveServer]:
    """`python -m router serve` on a free port, in real time, on the session's Valkey:
    a chat queue with a 1 s service-level threshold and no agents, so it falls
    below target (and breaches) as soon as a contact waits."""
    tid = new_tenant_id()
    config = tmp_path / "switchboard.toml"
    config.write_text(api_toml(tid, LIVE_BODY))
    log = tmp_path / "serve.log"
    try:
        async with serve_process(config, redis_url, log) as base:
            yield LiveServer(base, tid, log)
    finally:
        await drop_tenant(redis, tid)
