"""POST /v1/vendors/{id}/pause and /resume: the vendor's pools stop and restart
taking offers, waiting contacts move on at their next stage, events, auth."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from ..factories import BASE_BODY
from ..invariants import assert_invariants
from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"

# chat: the near vendor first, in-house after 30 s (the next overflow stage)
BODY_EXTRA = """
[queues.vchat]
channel = "social"
pools = ["near"]
offer_timeout_s = 30

[[queues.vchat.overflow]]
after_s = 30
pools = ["inhouse"]
"""


async def _post(api: Api, path: str, who: str = "admin") -> tuple[int, dict[str, Any], str]:
    r = await api.client.post(path, headers=api.auth(who))
    return r.status, await r.json(), r.content_type


async def _agent(api: Api, aid: str, pool: str) -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={"pool": pool, "capacity": {"social": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status == 201, await r.text()


async def _contact(api: Api) -> str:
    r = await api.client.post(
        "/v1/contacts", json={"channel": "social", "queue": "vchat"}, headers=api.auth("ingest")
    )
    assert r.status == 201, await r.text()
    cid: str = (await r.json())["id"]
    return cid


async def _state(api: Api, cid: str) -> tuple[str, str | None]:
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))
    body = await r.json()
    return body["state"], body.get("agent")


async def test_pause_and_resume_a_vendor(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api(BASE_BODY + BODY_EXTRA)
    eng = api.service.engines[api.tenant]
    status, body, _ = await _post(api, "/v1/vendors/near-co/pause")
    assert status == 200
    assert body == {"vendor": "near-co", "paused": True, "pools": ["near"], "offers": 0}
    # repeating it changes nothing
    assert (await _post(api, "/v1/vendors/near-co/pause"))[1]["paused"] is True
    await _agent(api, "n1", "near")
    await _agent(api, "h1", "inhouse")  # only from the second stage
    first = await _contact(api)
    assert await _state(api, first) == ("queued", None)  # n1 is ready, but paused
    await assert_invariants(redis, eng.tenant)
    r = await api.client.get("/v1/pools", headers=api.auth("admin"))
    pools = {p["id"]: p for p in (await r.json())["pools"]}
    assert pools["near"]["open"] is False and pools["inhouse"]["open"] is True
    # resuming offers the waiting contact at once
    status, body, _ = await _post(api, "/v1/vendors/near-co/resume")
    assert status == 200
    assert body == {"vendor": "near-co", "paused": False, "pools": ["near"], "offers": 1}
    assert await _state(api, first) == ("reserved", "n1")
    evs = [
        {k.decode(): v.decode() for k, v in f.items()}
        for _, f in await redis.xrange(eng.keys.events)
    ]
    gates = [(e["pool"], e["open"], e["reason"]) for e in evs if e["type"] == "pool.gate_changed"]
    assert gates == [("near", "0", "vendor_paused"), ("near", "1", "vendor_resumed")]
    await assert_invariants(redis, eng.tenant)


async def test_contacts_of_a_paused_vendor_move_on_at_the_next_stage(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api(BASE_BODY + BODY_EXTRA)
    eng = api.service.engines[api.tenant]
    await _agent(api, "n1", "near")
    await _agent(api, "h1", "inhouse")  # only from the second stage
    assert (await _post(api, "/v1/vendors/near-co/pause"))[0] == 200
    cid = await _contact(api)
    assert await _state(api, cid) == ("queued", None)
    api.clock.advance(30)
    await eng.run_due_timers()
    assert await _state(api, cid) == ("reserved", "h1")
    await assert_invariants(redis, eng.tenant)


async def test_pause_needs_an_admin_and_a_known_vendor(make_api: ApiFactory) -> None:
    api = await make_api()
    status, body, ctype = await _post(api, "/v1/vendors/nobody/pause")
    assert (status, ctype) == (404, PROBLEM) and "nobody" in body["detail"]
    for who in ("supervisor", "near-supervisor", "ingest"):
        status, _, ctype = await _post(api, "/v1/vendors/near-co/resume", who)
        assert (status, ctype) == (403, PROBLEM)


async def test_resume_keeps_a_pool_an_admin_closed_separately(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api(BASE_BODY + BODY_EXTRA)
    eng = api.service.engines[api.tenant]
    await _agent(api, "n1", "near")
    await eng.set_pool_open("near", False, "maintenance")  # an admin's own closure
    assert (await _post(api, "/v1/vendors/near-co/pause"))[0] == 200
    status, body, _ = await _post(api, "/v1/vendors/near-co/resume")
    assert status == 200 and body["offers"] == 0
    assert not await eng.pool_is_open("near")  # the admin's cause still holds
    cid = await _contact(api)
    assert await _state(api, cid) == ("queued", None)
    assert await eng.set_pool_open("near", True, "maintenance_over") == 1
    assert await _state(api, cid) == ("reserved", "n1")
    evs = await _gate_events(redis, eng)
    assert evs == [("0", "maintenance", "admin"), ("1", "maintenance_over", "admin")]
    await assert_invariants(redis, eng.tenant)


async def _gate_events(redis: Redis, eng: Any) -> list[tuple[str, str, str]]:
    raw = await redis.xrange(eng.keys.events)
    out = []
    for _, f in raw:
        e = {k.decode(): v.decode() for k, v in f.items()}
        if e["type"] == "pool.gate_changed":
            out.append((e["open"], e["reason"], e["cause"]))
    return out
