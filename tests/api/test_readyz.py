"""/readyz: memory headroom, and unready before noeviction refuses writes."""

from __future__ import annotations

import dataclasses

from redis.asyncio import Redis

from router.api.problems import PROBLEM_JSON

from .conftest import ApiFactory


async def test_ready_reports_memory_headroom(make_api: ApiFactory) -> None:
    api = await make_api()
    resp = await api.client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert api.tenant in body["tenants"]
    memory = body["memory"]
    assert memory["policy"] == "noeviction"
    assert memory["used_bytes"] > 0
    assert memory["ok"] is True
    # the test server has no maxmemory: the machine's memory is the limit that matters
    assert memory["limit_source"] == "system"
    assert 0 < memory["used_ratio"] < 0.9
    assert memory["headroom_bytes"] == memory["limit_bytes"] - memory["used_bytes"]


async def test_maxmemory_is_the_limit_when_set(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api()
    used = int((await redis.info("memory"))["used_memory"])
    limit = used * 20  # far above what the suite uses, so no other test can be refused
    await redis.config_set("maxmemory", str(limit))
    try:
        body = await (await api.client.get("/readyz")).json()
    finally:
        await redis.config_set("maxmemory", "0")
    memory = body["memory"]
    assert memory["limit_source"] == "maxmemory"
    assert memory["limit_bytes"] == limit
    assert 0.01 < memory["used_ratio"] < 0.2


async def test_unready_past_the_memory_ratio(make_api: ApiFactory) -> None:
    api = await make_api()
    api.service.options = dataclasses.replace(api.service.options, ready_memory_ratio=1e-9)
    resp = await api.client.get("/readyz")
    assert resp.status == 503
    assert resp.content_type == PROBLEM_JSON
    assert resp.headers["Retry-After"] == "5"
    body = await resp.json()
    assert body["memory"]["ok"] is False
    assert "noeviction" in body["detail"]
    # liveness is not readiness: the process itself is fine
    assert (await api.client.get("/healthz")).status == 200
