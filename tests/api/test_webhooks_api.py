"""The webhook admin API: subscriptions and dead letters, over a running service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.webhooks import verify
from router.webhooks.store import MAX_RUNTIME_SUBSCRIPTIONS

from .conftest import Api, ApiFactory

ENV = "SB_TEST_API_WEBHOOK_SECRET"


class Sink:
    """A local receiver: records requests; answers `status` (a list, used in turn)."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.arrived = asyncio.Event()
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.got) < n:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()

    async def route(request: web.Request) -> web.Response:
        return await s.handle(request)  # looked up per request: a test may swap it

    app.router.add_post("/{tail:.*}", route)
    s.server = TestServer(app, host="127.0.0.1")
    await s.server.start_server()
    yield s
    await s.server.close()


def _config(url: str, max_attempts: int = 3, max_pending: int = 1000) -> str:
    return (
        f"[webhooks]\nmax_attempts = {max_attempts}\nmax_pending = {max_pending}\n"
        f'[[webhooks.subscriptions]]\nid = "crm"\nurl = "{url}"\n'
        f'events = ["sla.*"]\nsecret_env = "{ENV}"\n'
    )


async def _json(api: Api, method: str, path: str, token: str = "admin", **kw: Any) -> Any:
    r = await api.client.request(method, path, headers=api.auth(token), **kw)
    return r.status, await r.json()


async def test_list_create_and_delete_subscriptions(make_api: ApiFactory, sink: Sink) -> None:
    api = await make_api(extra=_config(sink.url("/crm")))
    status, body = await _json(api, "GET", "/v1/admin/webhooks")
    assert status == 200
    assert body["subscriptions"] == [
        {
            "id": "crm",
            "url": sink.url("/crm"),
            "events": ["sla.*"],
            "source": "config",
            "secret_env": ENV,
            "created_at": None,
            "pending": 0,
            "dropped": 0,
            "dropped_events": None,
        }
    ]
    new = {"id": "ops", "url": sink.url("/ops"), "events": ["contact.assigned", "sla.*"]}
    status, made = await _json(api, "POST", "/v1/admin/webhooks", json=new)
    assert status == 201
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 30
    assert made["source"] == "api" and made["events"] == new["events"]
    status, body = await _json(api, "GET", "/v1/admin/webhooks")
    listed = {s["id"]: s for s in body["subscriptions"]}
    assert set(listed) == {"crm", "ops"}
    assert "secret" not in listed["ops"]  # shown once, at creation
    assert listed["ops"]["created_at"] is not None

    status, problem = await _json(api, "POST", "/v1/admin/webhooks", json=new)
    assert status == 409 and "already exists" in problem["detail"]
    status, problem = await _json(api, "POST", "/v1/admin/webhooks", json={**new, "id": "crm"})
    assert status == 409 and "config" in problem["detail"]
    status, problem = await _json(api, "DELETE", "/v1/admin/webhooks/crm")
    assert status == 409 and "config file" in problem["detail"]
    status, body = await _json(api, "DELETE", "/v1/admin/webhooks/ops")
    assert status == 200 and body == {"id": "ops", "deleted": True, "dropped": 0}
    status, problem = await _json(api, "DELETE", "/v1/admin/webhooks/ops")
    assert status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://x.example/", "events": ["*"]}, "id"),
        ({"id": "a", "url": "ftp://x.example/", "events": ["*"]}, "url"),
        ({"id": "a", "url": "https://", "events": ["*"]}, "url"),
        ({"id": "a", "url": "https://x.example:port/", "events": ["*"]}, "url"),
        ({"id": "a", "url": "https://x.example/", "events": []}, "events"),
        ({"id": "a", "url": "https://x.example/", "events": "*"}, "events"),
        ({"id": "a", "url": "https://x.example/", "events": ["*", "Contact"]}, "events[1]"),
        ({"id": "a", "url": "https://x.example/", "events": [3]}, "events[0]"),
        ({"id": "a{b}", "url": "https://x.example/", "events": ["*"]}, "id"),
        ({"id": "a", "url": "https://x.example/", "events": ["*"], "secret": "x"}, "secret"),
    ],
)
async def test_bad_subscriptions_get_a_problem_naming_the_field(
    make_api: ApiFactory, body: dict[str, Any], field: str
) -> None:
    api = await make_api()
    r = await api.client.post("/v1/admin/webhooks", json=body, headers=api.auth("admin"))
    assert r.status == 422
    assert r.content_type == "application/problem+json"
    problem = await r.json()
    assert problem["field"] == field, problem


async def test_only_admins_manage_webhooks(make_api: ApiFactory) -> None:
    api = await make_api()
    for method, path in (
        ("GET", "/v1/admin/webhooks"),
        ("POST", "/v1/admin/webhooks"),
        ("GET", "/v1/admin/webhooks/dead-letters"),
    ):
        r = await api.client.request(method, path, headers=api.auth("supervisor"), json={})
        assert r.status == 403, (method, path)
    r = await api.client.get("/v1/admin/webhooks")
    assert r.status == 401


async def test_a_runtime_subscription_receives_signed_events(
    make_api: ApiFactory, sink: Sink
) -> None:
    api = await make_api()
    new = {"id": "ops", "url": sink.url("/ops"), "events": ["contact.received"]}
    _, made = await _json(api, "POST", "/v1/admin/webhooks", json=new)
    r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest"))
    assert r.status == 201
    contact = (await r.json())["id"]
    await sink.wait_for(1)
    headers, body = sink.got[0]
    now_s = api.clock.now_ms() // 1000
    assert verify(made["secret"], headers["Switchboard-Signature"], body, now_s)
    event = json.loads(body)
    assert event["type"] == "contact.received" and event["data"]["contact"] == contact
    assert event["tenant"] == api.tenant


async def test_dead_letters_are_listed_retried_and_deleted(
    make_api: ApiFactory, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "config-secret")
    api = await make_api(extra=_config(sink.url("/crm"), max_attempts=1))
    sink.statuses = [500, 500]
    fields: dict[Any, Any] = {
        "v": "1",
        "type": "sla.breached",
        "at": str(api.clock.now_ms()),
        "contact": "c1",
    }
    events = api.service.engines[api.tenant].keys.events
    for _ in range(2):
        assert api.service.redis is not None
        await api.service.redis.xadd(events, fields)
    await sink.wait_for(2)
    async with asyncio.timeout(5):
        while True:
            status, page = await _json(api, "GET", "/v1/admin/webhooks/dead-letters")
            if page["total"] == 2:
                break
            await asyncio.sleep(0.05)
    assert status == 200
    first = page["dead_letters"][0]
    assert first["subscription"] == "crm" and first["attempts"] == 1
    assert first["last_status"] == 500 and first["type"] == "sla.breached"
    assert first["payload"]["data"]["contact"] == "c1"
    assert page["next_offset"] is None
    status, half = await _json(api, "GET", "/v1/admin/webhooks/dead-letters?limit=1")
    assert half["next_offset"] == 1 and len(half["dead_letters"]) == 1
    status, rest = await _json(api, "GET", "/v1/admin/webhooks/dead-letters?limit=1&offset=1")
    assert rest["next_offset"] is None
    assert {half["dead_letters"][0]["id"], rest["dead_letters"][0]["id"]} == {
        d["id"] for d in page["dead_letters"]
    }

    status, body = await _json(api, "POST", f"/v1/admin/webhooks/dead-letters/{first['id']}/retry")
    assert status == 202 and body == {"id": first["id"], "retried": True}
    await sink.wait_for(3)
    assert json.loads(sink.got[2][1])["id"] == first["event_id"]
    status, _ = await _json(api, "POST", f"/v1/admin/webhooks/dead-letters/{first['id']}/retry")
    assert status == 404
    other = page["dead_letters"][1]["id"]
    status, body = await _json(api, "DELETE", f"/v1/admin/webhooks/dead-letters/{other}")
    assert status == 200 and body == {"id": other, "deleted": True}
    status, _ = await _json(api, "DELETE", f"/v1/admin/webhooks/dead-letters/{other}")
    assert status == 404
    async with asyncio.timeout(5):
        while (await _json(api, "GET", "/v1/admin/webhooks/dead-letters"))[1]["total"]:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")],
)
async def test_bad_paging_gets_a_problem(make_api: ApiFactory, query: str, field: str) -> None:
    api = await make_api()
    r = await api.client.get(f"/v1/admin/webhooks/dead-letters?{query}", headers=api.auth("admin"))
    assert r.status == 422
    assert (await r.json())["field"] == field


async def test_bad_dead_letter_ids_get_a_problem(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.delete("/v1/admin/webhooks/dead-letters/nope", headers=api.auth("admin"))
    assert r.status == 422
    r = await api.client.delete(
        "/v1/admin/webhooks/dead-letters/1-0.crm", headers=api.auth("admin")
    )
    assert r.status == 404


async def test_a_slow_receiver_does_not_slow_the_api(make_api: ApiFactory, sink: Sink) -> None:
    api = await make_api()
    hold = asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        sink.got.append((dict(request.headers), await request.read()))
        sink.arrived.set()
        await hold.wait()
        return web.Response(status=200)

    sink.handle = stalled  # type: ignore[method-assign]
    new = {"id": "slow", "url": sink.url("/slow"), "events": ["*"]}
    status, _ = await _json(api, "POST", "/v1/admin/webhooks", json=new)
    assert status == 201
    r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest"))
    assert r.status == 201
    await sink.wait_for(1)  # the receiver now sits on its requests
    try:
        worst = 0.0
        for _ in range(20):
            started = asyncio.get_running_loop().time()
            r = await api.client.post(
                "/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest")
            )
            assert r.status == 201
            worst = max(worst, asyncio.get_running_loop().time() - started)
        assert worst < 0.5, worst
        assert len(sink.got) <= 4, len(sink.got)  # its concurrency limit: the rest wait their turn
        async with asyncio.timeout(5):  # every event still becomes a delivery
            while True:
                status, body = await _json(api, "GET", "/v1/admin/webhooks")
                if body["subscriptions"][0]["pending"] >= 42:  # 21 x received, queued
                    break
                await asyncio.sleep(0.05)
        assert len(sink.got) <= 4
    finally:
        hold.set()


async def test_simultaneous_creates_never_exceed_the_limit(make_api: ApiFactory) -> None:
    api = await make_api()
    assert api.service.webhooks is not None
    store = api.service.webhooks.store(api.tenant)
    for i in range(MAX_RUNTIME_SUBSCRIPTIONS - 3):
        assert not isinstance(await store.create(f"s{i}", "https://x.example/", ["*"]), str)

    async def create(i: int) -> int:
        new = {"id": f"new{i}", "url": "https://x.example/", "events": ["*"]}
        status, body = await _json(api, "POST", "/v1/admin/webhooks", json=new)
        if status == 409:
            assert f"at most {MAX_RUNTIME_SUBSCRIPTIONS}" in body["detail"]
        return int(status)

    statuses = await asyncio.gather(*(create(i) for i in range(12)))
    assert sorted(statuses) == [201] * 3 + [409] * 9
    assert await store.runtime_count() == MAX_RUNTIME_SUBSCRIPTIONS
    status, body = await _json(api, "GET", "/v1/admin/webhooks")
    assert status == 200 and len(body["subscriptions"]) == MAX_RUNTIME_SUBSCRIPTIONS


async def test_deliveries_past_max_pending_are_shown_as_dropped(
    make_api: ApiFactory, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "config-secret")
    api = await make_api(extra=_config(sink.url("/crm"), max_pending=1))
    sink.statuses = [500] * 10  # the first delivery fails and waits 30 s (virtual) to retry
    fields: dict[Any, Any] = {"v": "1", "type": "sla.breached", "at": "0", "contact": "c1"}
    assert api.service.redis is not None
    events = api.service.engines[api.tenant].keys.events
    ids = [await api.service.redis.xadd(events, fields) for _ in range(4)]
    async with asyncio.timeout(5):
        while True:
            _, body = await _json(api, "GET", "/v1/admin/webhooks")
            [crm] = body["subscriptions"]
            if crm["dropped"] == 3:
                break
            await asyncio.sleep(0.05)
    assert crm["pending"] == 1
    trace = crm["dropped_events"]
    assert trace["first_event_id"] == ids[1].decode()
    assert trace["last_event_id"] == ids[3].decode()
    assert trace["first_at"].endswith("Z") and trace["last_at"] >= trace["first_at"]
    assert trace["count"] == 3 and trace["ended_at"] is None  # still dropping
    assert trace["previous"] == []
    # an earlier outage, as webhook_enqueue records it when a new run starts
    keys = api.service.engines[api.tenant].keys
    run = {"first": "5-0", "last": "9-0", "first_at": 1000, "last_at": 2000, "count": 4}
    await api.service.redis.hset(
        keys.webhook_dropped("crm"), "previous", json.dumps([{**run, "ended_at": 3000}])
    )
    _, body = await _json(api, "GET", "/v1/admin/webhooks")
    [prev] = body["subscriptions"][0]["dropped_events"]["previous"]
    assert prev == {
        "first_event_id": "5-0",
        "last_event_id": "9-0",
        "first_at": "1970-01-01T00:00:01.000Z",
        "last_at": "1970-01-01T00:00:02.000Z",
        "count": 4,
        "ended_at": "1970-01-01T00:00:03.000Z",
    }
