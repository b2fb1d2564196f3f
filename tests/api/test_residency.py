"""Data residency over HTTP: POST /v1/contacts takes `region`, contact views show
it, and a region no pool may serve, or a transfer that would break it, is refused
with a problem naming the region and the queue or pool."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from ..factories import BASE_BODY
from ..invariants import assert_invariants
from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"

# in-house serves eu only; near (vendor near-co, no region) serves no tagged contact
BODY = (
    BASE_BODY.replace(
        '[pools.inhouse]\nkind = "inhouse"\n',
        '[pools.inhouse]\nkind = "inhouse"\nregions = ["eu"]\n',
    )
    + """
[queues.nearchat]
channel = "chat"
pools = ["near"]
"""
)


async def _agent(api: Api, aid: str, pool: str) -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={"pool": pool, "capacity": {"chat": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status == 201, await r.text()


async def _create(api: Api, **body: Any) -> tuple[int, dict[str, Any], str]:
    r = await api.client.post(
        "/v1/contacts", json={"channel": "chat", **body}, headers=api.auth("ingest")
    )
    return r.status, await r.json(), r.content_type


async def _read(api: Api, cid: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))
    assert r.status == 200
    out: dict[str, Any] = await r.json()
    return out


async def test_region_is_taken_at_ingest_and_shown(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api(BODY)
    await _agent(api, "n1", "near")  # idle longest
    api.clock.advance(1)
    await _agent(api, "h1", "inhouse")
    status, body, _ = await _create(api, queue="chat", region="eu")
    assert status == 201 and body["agent"] == "h1"
    view = await _read(api, body["id"])
    assert view["region"] == "eu" and view["skills"] == {} and view["pool"] == "inhouse"
    status, plain, _ = await _create(api, queue="chat")
    assert status == 201 and plain["agent"] == "n1"
    assert (await _read(api, plain["id"]))["region"] is None
    # a supervisor sees it too
    r = await api.client.get(f"/v1/contacts/{body['id']}", headers=api.auth("supervisor"))
    assert (await r.json())["region"] == "eu"
    await assert_invariants(redis, api.service.engines[api.tenant].tenant)


async def test_bad_regions_get_422(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api(BODY)
    eng = api.service.engines[api.tenant]
    before = await redis.xlen(eng.keys.events)
    for bad in ("EU", "e u", "x" * 33, 5, "-eu", ""):
        status, body, ctype = await _create(api, queue="chat", region=bad)
        assert (status, ctype, body["field"]) == (422, PROBLEM, "region"), (bad, body)
    # well-formed, but no pool of the queue may serve it: nothing is written
    status, body, ctype = await _create(api, queue="chat", region="us")
    assert (status, ctype) == (422, PROBLEM)
    assert "region 'us'" in body["detail"] and "queue 'chat'" in body["detail"]
    status, body, _ = await _create(api, queue="nearchat", region="eu")
    assert status == 422 and "queue 'nearchat'" in body["detail"]
    assert await redis.xlen(eng.keys.events) == before


async def test_a_transfer_that_would_break_the_region_is_refused(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api(BODY)
    await _agent(api, "h1", "inhouse")
    await _agent(api, "n1", "near")
    status, body, _ = await _create(api, queue="chat", region="eu")
    cid = body["id"]
    assert status == 201 and body["agent"] == "h1"
    r = await api.client.post(
        f"/v1/contacts/{cid}/transfer", json={"agent": "n1"}, headers=api.auth("supervisor")
    )
    problem = await r.json()
    assert (r.status, r.content_type) == (409, PROBLEM)
    assert "pool near" in problem["detail"] and "'eu'" in problem["detail"]
    assert problem["region"] == "eu" and problem["pool"] == "near"
    r = await api.client.post(
        f"/v1/contacts/{cid}/transfer", json={"queue": "nearchat"}, headers=api.auth("supervisor")
    )
    problem = await r.json()
    assert (r.status, r.content_type) == (422, PROBLEM)
    assert "region 'eu'" in problem["detail"]
    view = await _read(api, cid)
    assert view["agent"] == "h1" and view["state"] == "reserved"
    await assert_invariants(redis, api.service.engines[api.tenant].tenant)
