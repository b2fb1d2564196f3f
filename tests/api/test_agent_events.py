"""GET /v1/agents/{id}/events: real Server-Sent Events over HTTP, read line by line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.api import agent_events
from router.api.agent_events import accepts_event_stream, open_streams
from router.api.app import build_api
from router.api.render import rfc3339

from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"
EVENTS = "/v1/agents/{}/events"


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short intervals, so the suite does not wait out real ones."""
    monkeypatch.setattr(agent_events, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(agent_events, "RECHECK_S", 0.05)


class Sse:
    """An SSE reader over an aiohttp response: one field line at a time."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def block(self, timeout: float = 5.0) -> dict[str, str]:
        """The next block of fields, up to a blank line; a comment is {"": text}."""
        fields: dict[str, str] = {}
        while True:
            raw = await asyncio.wait_for(self.resp.content.readline(), timeout)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def event(self, timeout: float = 5.0) -> tuple[str, dict[str, Any], int]:
        """The next event (comments and `retry:` skipped): name, data, id."""
        while True:
            f = await self.block(timeout)
            if "event" in f:
                assert "\n" not in f["data"]
                return f["event"], json.loads(f["data"]), int(f["id"])

    async def until(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        """Data of the next `name` event, skipping others."""
        while True:
            event, data, _ = await self.event(timeout)
            if event == name:
                return data


async def _agent(api: Api, aid: str = "a1", status: str = "available") -> None:
    body = {"pool": "inhouse", "skills": {"billing": 3}, "capacity": {"voice": 1}}
    r = await api.client.put(
        f"/v1/agents/{aid}", json={**body, "status": status}, headers=api.auth("admin")
    )
    assert r.status in (200, 201), await r.text()


async def _contact(api: Api) -> str:
    r = await api.client.post("/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest"))
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def _open(api: Api, aid: str = "a1", token: str = "a1", **headers: str) -> Sse:
    r = await api.client.get(EVENTS.format(aid), headers={**api.auth(token), **headers})
    assert r.status == 200, await r.text()
    return Sse(r)


def _stream_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running the stream handler, found by walking what each one awaits."""
    found = []
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        while coro is not None:
            code = getattr(coro, "cr_code", None)
            if code is not None and code.co_filename == agent_events.__file__:
                found.append(task)
                break
            coro = getattr(coro, "cr_await", None)
    return found


async def _ends(sse: Sse, within: float = 3.0) -> None:
    """The stream ends (EOF) within `within` seconds, whatever it sends before."""
    deadline = time.monotonic() + within
    with pytest.raises(EOFError):
        while True:
            await sse.block(timeout=max(0.01, deadline - time.monotonic()))
    assert time.monotonic() < deadline


async def _settles(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "did not settle"
        await asyncio.sleep(0.02)


async def test_connect_sends_the_agent_then_the_offers_already_open(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    cid = await _contact(api)
    r = await api.client.get(EVENTS.format("a1"), headers=api.auth("a1"))
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Accel-Buffering"] == "no"
    sse = Sse(r)
    assert await sse.block() == {"retry": "3000"}
    name, agent, seq = await sse.event()
    expected = await (await api.client.get("/v1/agents/a1", headers=api.auth("a1"))).json()
    assert (name, seq) == ("agent", 1) and agent == expected
    assert agent["offers"] == [cid]
    name, offer, seq = await sse.event()
    assert (name, offer["id"], offer["contact"]["state"], seq) == ("offer", cid, "reserved", 2)
    r.close()


async def test_a_new_offer_arrives_on_the_wake_up_not_the_recheck(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_events, "RECHECK_S", 30.0)
    monkeypatch.setattr(agent_events, "KEEPALIVE_S", 30.0)
    api = await make_api()
    await _agent(api)
    sse = await _open(api)
    assert (await sse.event())[0] == "agent"
    started = time.monotonic()
    cid = await _contact(api)
    name, offer, seq = await sse.event(timeout=3)
    assert (name, offer["id"], seq) == ("offer", cid, 2)
    assert time.monotonic() - started < 2  # the wake-up, not a 30 s re-check
    sse.resp.close()


async def test_accept_closes_the_offer_and_the_contact_follows_its_states(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    await _agent(api)
    sse = await _open(api)
    assert (await sse.event())[0] == "agent"
    cid = await _contact(api)
    assert (await sse.until("offer"))["id"] == cid
    assert (await sse.until("agent"))["offers"] == [cid]  # the snapshot follows changes
    r = await api.client.post(f"/v1/offers/{cid}/accept", headers=api.auth("a1"))
    assert r.status == 200
    name, closed, seq_closed = await sse.event()
    assert (name, closed) == ("offer.closed", {"id": cid, "reason": "accepted"})
    name, contact, seq_contact = await sse.event()
    assert (name, contact["id"], contact["state"]) == ("contact", cid, "assigned")
    assert seq_contact == seq_closed + 1
    agent = await sse.until("agent")  # the snapshot again: its load changed
    assert agent["offers"] == [] and agent["contacts"] == [cid] and agent["load"]["voice"] == 1
    for expected in ("wrap_up", "completed"):  # voice has a wrap-up in the test tenant
        r = await api.client.post(f"/v1/contacts/{cid}/complete", headers=api.auth("a1"))
        assert r.status == 200
        contact = await sse.until("contact")
        assert (contact["id"], contact["state"]) == (cid, expected)
    sse.resp.close()


async def test_a_rejected_offer_closes_with_the_contacts_state(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    cid = await _contact(api)
    sse = await _open(api)
    assert (await sse.until("offer"))["id"] == cid
    r = await api.client.post(f"/v1/offers/{cid}/reject", headers=api.auth("a1"))
    assert r.status == 200
    # back in the queue: the record does not say reject from expiry, so the state it is
    assert await sse.until("offer.closed") == {"id": cid, "reason": "queued"}
    sse.resp.close()


async def test_the_stream_is_the_agents_heartbeat(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    api.clock.advance(5)
    sse = await _open(api)
    _, agent, _ = await sse.event()
    assert agent["last_seen"] == rfc3339(api.clock.now_ms())  # on connect
    later = api.clock.advance(30)
    assert await sse.block() == {"": "keepalive"}  # comes after the heartbeat it follows
    r = await api.client.get("/v1/agents/a1", headers=api.auth("admin"))
    assert (await r.json())["last_seen"] == rfc3339(later)
    sse.resp.close()


async def test_who_may_stream_and_what_they_must_accept(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "a1")
    await _agent(api, "a2")
    cases: list[tuple[str, str | None, dict[str, str], int]] = [
        ("a2", "a1", {}, 403),  # a bound token, another agent
        ("a1", "ingest", {}, 403),
        ("a1", "supervisor", {}, 403),
        ("a1", None, {}, 401),
        ("nobody", "admin", {}, 404),
        ("a:b", "admin", {}, 422),
        ("a1", "a1", {"Accept": "application/json"}, 406),
        ("a1", "a1", {"Accept": "text/event-stream;q=0, */*"}, 406),
    ]
    for aid, token, headers, status in cases:
        auth = api.auth(token) if token else {}
        r = await api.client.get(EVENTS.format(aid), headers={**auth, **headers})
        assert (r.status, r.content_type) == (status, PROBLEM), (aid, token, headers)
    for token, accept in (("a1", "*/*"), ("agent", "text/event-stream"), ("admin", "text/*")):
        sse = await _open(api, "a1", token, Accept=accept)
        assert (await sse.event())[0] == "agent"
        sse.resp.close()


async def test_a_revoked_token_ends_its_stream(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    r = await api.client.post("/v1/agents/a1/token", headers=api.auth("admin"))
    token = (await r.json())["token"]
    r = await api.client.get(EVENTS.format("a1"), headers={"Authorization": f"Bearer {token}"})
    sse = Sse(r)
    assert (await sse.event())[0] == "agent"
    assert await sse.block() == {"": "keepalive"}  # still authorized: the stream goes on
    r = await api.client.delete("/v1/agents/a1/token", headers=api.auth("admin"))
    assert r.status == 200
    await _ends(sse)
    r = await api.client.get(EVENTS.format("a1"), headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401


def test_accept_negotiation() -> None:
    assert accepts_event_stream(None) and accepts_event_stream("")
    assert accepts_event_stream("text/event-stream")
    assert accepts_event_stream("application/json, */*;q=0.1")
    assert accepts_event_stream("*/*;q=0, text/event-stream")  # the specific range decides
    assert not accepts_event_stream("application/json")
    assert not accepts_event_stream("text/event-stream;q=0")
    assert not accepts_event_stream("text/*;q=0, */*")
    assert not accepts_event_stream("text/event-stream;q=x")


async def test_streams_per_agent_are_bounded(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "a1")
    await _agent(api, "a2")
    app = api.client.app
    assert app is not None
    limit = agent_events.MAX_STREAMS_PER_AGENT
    streams = [await _open(api) for _ in range(limit)]
    for sse in streams:
        assert (await sse.event())[0] == "agent"
    assert open_streams(app, api.tenant, "a1") == limit
    r = await api.client.get(EVENTS.format("a1"), headers=api.auth("a1"))
    assert (r.status, r.content_type) == (429, PROBLEM)
    other = await _open(api, "a2", "agent")  # the bound is per agent
    assert (await other.event())[0] == "agent"
    streams[0].resp.close()
    await _settles(lambda: open_streams(app, api.tenant, "a1") < limit)
    again = await _open(api)
    assert (await again.event())[0] == "agent"
    for sse in [*streams[1:], other, again]:
        sse.resp.close()
    await _settles(lambda: open_streams(app) == 0)


async def test_a_disconnect_leaves_no_task(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    api = await make_api()
    await _agent(api)
    sse = await _open(api)
    assert (await sse.event())[0] == "agent"
    assert len(_stream_tasks()) == 1  # the walk finds a live stream
    sse.resp.close()
    await _settles(lambda: not _stream_tasks())
    assert open_streams(api.client.app) == 0  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@contextlib.asynccontextmanager
async def _served(api: Api) -> AsyncIterator[tuple[web.Application, web.AppRunner, str]]:
    """The API on api's service, served as `run_app` serves it: a handler is not
    cancelled when its client goes (the test server cancels it)."""
    app = build_api(api.service, manage_service=False)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield app, runner, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def test_a_disconnect_is_noticed_without_handler_cancellation(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No keepalive write to fail within the test: the stream must see the closed
    connection by itself, within a re-check."""
    monkeypatch.setattr(agent_events, "KEEPALIVE_S", 30.0)
    caplog.set_level(logging.WARNING)
    api = await make_api()
    await _agent(api)
    async with _served(api) as (app, _, url), aiohttp.ClientSession() as session:
        r = await session.get(url + EVENTS.format("a1"), headers=api.auth("a1"))
        assert (await Sse(r).event())[0] == "agent"
        assert open_streams(app) == 1 and len(_stream_tasks()) == 1
        r.close()
        await _settles(lambda: open_streams(app) == 0 and not _stream_tasks(), timeout=2)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_server_shutdown_ends_open_streams_promptly(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner would wait 60 s for a handler to finish; a stream ends at once,
    its client sees the end of the stream, and nothing is logged."""
    monkeypatch.setattr(agent_events, "KEEPALIVE_S", 30.0)
    caplog.set_level(logging.WARNING)
    api = await make_api()
    await _agent(api)
    async with aiohttp.ClientSession() as session:
        async with _served(api) as (app, runner, url):
            r = await session.get(url + EVENTS.format("a1"), headers=api.auth("a1"))
            sse = Sse(r)
            assert (await sse.event())[0] == "agent"
            started = time.monotonic()
            await asyncio.wait_for(runner.cleanup(), timeout=10)
            assert time.monotonic() - started < 3
        await _ends(sse)
        assert open_streams(app) == 0 and not _stream_tasks()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_test_servers_close_stops_the_service_with_a_stream_open(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    api = await make_api()
    await _agent(api)
    sse = await _open(api)
    assert (await sse.event())[0] == "agent"
    await asyncio.wait_for(api.client.close(), timeout=10)  # stops the service too
    assert not _stream_tasks()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
