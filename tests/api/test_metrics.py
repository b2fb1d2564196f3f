"""GET /v1/metrics, /v1/metrics/history, /v1/metrics/stream and /metrics: auth,
pool scope, validation, live frames, and the Prometheus exposition."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import ClientResponse
from prometheus_client.parser import text_string_to_metric_families

from router.api import metrics as metrics_api

from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"


async def _contact(api: Api, channel: str = "chat") -> str:
    r = await api.client.post("/v1/contacts", json={"channel": channel}, headers=api.auth("ingest"))
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def _until(api: Api, check: Any, path: str = "/v1/metrics") -> dict[str, Any]:
    """GET `path` until `check(body)` holds (the consumer runs every 0.1 s)."""
    deadline = time.monotonic() + 10
    while True:
        r = await api.client.get(path, headers=api.auth("supervisor"))
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        if check(body) or time.monotonic() > deadline:
            assert check(body), body
            return body
        await asyncio.sleep(0.05)


async def test_metrics_need_a_supervisor_or_admin_token(make_api: ApiFactory) -> None:
    api = await make_api()
    for path in ("/v1/metrics", "/v1/metrics/history", "/v1/metrics/stream", "/metrics"):
        r = await api.client.get(path)
        assert r.status == 401 and r.content_type == PROBLEM, path
        for name in ("agent", "ingest", "a1"):
            r = await api.client.get(path, headers=api.auth(name))
            assert r.status == 403 and r.content_type == PROBLEM, (path, name)
    r = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await api.client.post("/metrics", headers=api.auth("supervisor"))
    assert r.status == 405 and r.content_type == PROBLEM and r.headers["Allow"] == "GET,HEAD"
    r = await api.client.head("/metrics", headers=api.auth("supervisor"))
    assert r.status == 200
    for name in ("supervisor", "admin"):
        r = await api.client.get("/v1/metrics", headers=api.auth(name))
        assert r.status == 200, name


async def test_snapshot_counts_contacts_and_shows_live_state(make_api: ApiFactory) -> None:
    api = await make_api()
    await _contact(api)
    await _contact(api)
    body = await _until(api, lambda b: b["queues"]["chat"]["offered"] == 2)
    chat = body["queues"]["chat"]
    assert chat["waiting"] == 2 and chat["answered"] == 0
    assert chat["service_level"] == {"threshold_s": 20.0, "value": 0.0}
    assert chat["asa_s"] is None and chat["abandon_rate"] == 0.0
    assert body["tenant"] == api.tenant and body["window"]["name"] == "15m"
    assert set(body["pools"]) == {"inhouse", "near", "off"}
    assert body["pools"]["near"]["vendor"] == "near-co"
    r = await api.client.get("/v1/metrics?window=today", headers=api.auth("supervisor"))
    assert (await r.json())["window"]["name"] == "today"


async def test_a_pool_scoped_supervisor_sees_its_pool_and_its_queues(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.get("/v1/metrics?window=1h", headers=api.auth("near-supervisor"))
    body = await r.json()
    assert set(body["pools"]) == {"near"}
    assert set(body["queues"]) == {"voice", "chat"}  # email is in-house only
    r = await api.client.get("/v1/metrics/history?queue=email", headers=api.auth("near-supervisor"))
    assert r.status == 403 and r.content_type == PROBLEM
    r = await api.client.get("/v1/metrics/history", headers=api.auth("near-supervisor"))
    assert set((await r.json())["intervals"][-1]["pools"]) == {"near"}


async def test_bad_input_is_a_problem_naming_the_parameter(make_api: ApiFactory) -> None:
    api = await make_api()
    sup = api.auth("supervisor")
    cases = {
        "/v1/metrics?window=2h": (400, "window"),
        "/v1/metrics/stream?window=week": (400, "window"),
        "/v1/metrics/history?from=yesterday": (400, "from"),
        "/v1/metrics/history?to=2026-13-01": (400, "to"),
        "/v1/metrics/history?from=2000&to=1000": (400, "from"),
        "/v1/metrics/history?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z": (400, "from"),
        "/v1/metrics/history?queue=nope": (404, "queue"),
    }
    for path, (status, name) in cases.items():
        r = await api.client.get(path, headers=sup)
        assert r.status == status and r.content_type == PROBLEM, path
        assert name in (await r.json())["detail"], path


async def test_history_takes_iso_times_and_ms(make_api: ApiFactory) -> None:
    api = await make_api()
    await _contact(api, "voice")
    now = api.clock.now_ms()
    start = now - now % 900_000
    await _until(
        api,
        lambda b: b["intervals"][-1]["queues"]["voice"]["offered"] == 1,
        f"/v1/metrics/history?from={start}&to={start + 900_000}&queue=voice",
    )
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1000))
    r = await api.client.get(
        f"/v1/metrics/history?from={iso}Z&to={start + 1_800_000}&queue=voice",
        headers=api.auth("supervisor"),
    )
    body = await r.json()
    assert [i["from"] for i in body["intervals"]] == [start, start + 900_000]
    assert set(body["intervals"][0]["queues"]) == {"voice"} and body["intervals"][0]["pools"] == {}
    assert body["intervals"][0]["queues"]["voice"]["offered"] == 1
    # a time without an offset is UTC
    r = await api.client.get(
        f"/v1/metrics/history?from={iso}&to={start + 900_000}", headers=api.auth("supervisor")
    )
    assert (await r.json())["from"] == start


async def _frames(r: ClientResponse) -> Any:
    """Yields (event, data) of each SSE frame, and ("comment", text) of comments."""
    event = ""
    while True:
        line = (await r.content.readline()).decode()
        if not line:
            return
        line = line.rstrip("\n")
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


async def test_the_stream_sends_a_frame_at_once_and_when_contacts_arrive(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    r = await api.client.get("/v1/metrics/stream", headers=api.auth("supervisor"))
    assert r.status == 200 and r.content_type == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    frames = _frames(r)
    event, first = await asyncio.wait_for(anext(frames), 5)
    assert event == "metrics" and first["queues"]["chat"]["offered"] == 0
    assert first["window"]["name"] == "15m"
    await _contact(api)
    async with asyncio.timeout(10):
        async for event, data in frames:
            if event == "metrics" and data["queues"]["chat"]["waiting"] == 1:
                break
    # one feed per (tenant, scope, window), shared by every stream on it
    r2 = await api.client.get("/v1/metrics/stream", headers=api.auth("supervisor"))
    assert (await asyncio.wait_for(anext(_frames(r2)), 5))[0] == "metrics"
    feeds = metrics_api.open_feeds(api.client.app)
    assert feeds == {(api.tenant, None, "15m"): 2}
    r.close()
    r2.close()


async def test_the_stream_is_scoped_and_ends_on_shutdown(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.get("/v1/metrics/stream?window=1h", headers=api.auth("near-supervisor"))
    frames = _frames(r)
    _, first = await asyncio.wait_for(anext(frames), 5)
    assert set(first["pools"]) == {"near"} and first["window"]["name"] == "1h"
    assert (api.tenant, "near", "1h") in metrics_api.open_feeds(api.client.app)
    await metrics_api.close_streams(api.client.app)
    async with asyncio.timeout(5):
        async for _ in frames:
            pass  # ends: the server closed it
    r = await api.client.get("/v1/metrics/stream", headers=api.auth("supervisor"))
    assert r.status == 503 and r.content_type == PROBLEM


async def test_the_stream_refuses_clients_that_do_not_accept_event_streams(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    r = await api.client.get(
        "/v1/metrics/stream", headers={**api.auth("supervisor"), "Accept": "application/json"}
    )
    assert r.status == 406 and r.content_type == PROBLEM


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_prometheus_exposition_parses_with_tenant_queue_and_pool_labels(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    await _contact(api)
    await _until(api, lambda b: b["queues"]["chat"]["offered"] == 1)
    r = await api.client.get("/metrics", headers=api.auth("supervisor"))
    assert r.status == 200 and r.content_type == "text/plain"
    samples = _samples(await r.text())
    t = api.tenant
    assert samples[("switchboard_queue_offered_total", (("queue", "chat"), ("tenant", t)))] == 1
    assert samples[("switchboard_queue_waiting", (("queue", "chat"), ("tenant", t)))] == 1
    assert samples[("switchboard_queue_service_level", (("queue", "chat"), ("tenant", t)))] == 0
    assert ("switchboard_queue_asa_seconds", (("queue", "chat"), ("tenant", t))) not in samples
    key = ("switchboard_pool_agents", (("pool", "near"), ("status", "offline"), ("tenant", t)))
    assert samples[key] == 0
    pools = {dict(labels).get("pool") for _, labels in samples} - {None}
    assert pools == {"inhouse", "near", "off"}
    # a vendor's token: its pool, and the queues it serves
    r = await api.client.get("/metrics", headers=api.auth("near-supervisor"))
    scoped = _samples(await r.text())
    assert {dict(labels).get("pool") for _, labels in scoped} - {None} == {"near"}
    assert {dict(labels).get("queue") for _, labels in scoped} - {None} == {"voice", "chat"}
