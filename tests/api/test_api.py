"""The v1 API end to end: auth, the contact and offer lifecycle, and bad input."""

from __future__ import annotations

from redis.asyncio import Redis

from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"


async def _agent(api: Api, aid: str = "a1", status: str = "available") -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={
            "name": "Ann",
            "pool": "inhouse",
            "skills": {"billing": 3},
            "capacity": {"voice": 1, "chat": 2},
            "status": status,
        },
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()


async def _n_contacts(redis: Redis, api: Api) -> int:
    return len([k async for k in redis.scan_iter(match=f"sb:{{{api.tenant}}}:c:*")])


async def test_requests_without_a_valid_token_get_401(make_api: ApiFactory) -> None:
    api = await make_api()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = await api.client.get("/v1/queues", headers=headers)
        assert r.status == 401 and r.content_type == PROBLEM
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert (await api.client.get("/healthz")).status == 200


async def test_wrong_role_gets_403_and_changes_nothing(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api()
    r = await api.client.put("/v1/agents/x1", json={"pool": "inhouse"}, headers=api.auth("ingest"))
    assert r.status == 403 and (await r.json())["detail"] == "this action needs the admin role"
    assert not await redis.exists(f"sb:{{{api.tenant}}}:a:x1")
    r = await api.client.post("/v1/contacts", json={"channel": "voice"}, headers=api.auth("agent"))
    assert r.status == 403
    assert await _n_contacts(redis, api) == 0


async def test_contact_lifecycle_over_http(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    r = await api.client.post(
        "/v1/contacts",
        json={
            "channel": "voice",
            "customer": {"id": "k1", "name": "Bo"},
            "subject": "card",
            "body": "x" * 5000,
            "priority": 1,
        },
        headers=api.auth("ingest"),
    )
    assert r.status == 201, await r.text()
    created = await r.json()
    cid = created["id"]
    assert (
        created["state"] == "reserved" and created["queue"] == "voice" and created["agent"] == "a1"
    )
    r = await api.client.get("/v1/agents/a1/offers", headers=api.auth("a1"))
    offers = (await r.json())["offers"]
    assert [o["id"] for o in offers] == [cid]
    assert offers[0]["contact"]["customer"] == {"id": "k1", "name": "Bo"}
    assert len(offers[0]["contact"]["preview"]) == 1000  # bounded preview
    assert offers[0]["expires_at"].endswith("Z")
    r = await api.client.post(f"/v1/offers/{cid}/accept", headers=api.auth("a1"))
    assert r.status == 200 and (await r.json())["contact"]["state"] == "assigned"
    r = await api.client.post(f"/v1/offers/{cid}/accept", headers=api.auth("a1"))
    assert r.status == 409 and r.content_type == PROBLEM
    r = await api.client.post(
        f"/v1/contacts/{cid}/complete", json={"disposition": "solved"}, headers=api.auth("a1")
    )
    assert r.status == 200 and (await r.json())["state"] == "wrap_up"
    r = await api.client.post(f"/v1/contacts/{cid}/complete", headers=api.auth("a1"))
    assert r.status == 200 and (await r.json())["state"] == "completed"
    r = await api.client.post(f"/v1/contacts/{cid}/wrapup-done", headers=api.auth("a1"))
    assert r.status == 409
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
    body = await r.json()
    assert body["state"] == "completed" and body["disposition"] == "solved"
    assert body["routing"]["chosen"] == "a1"


async def test_idempotency_key_returns_the_same_contact(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api()
    h = {**api.auth("ingest"), "Idempotency-Key": "req-1"}
    r1 = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=h)
    r2 = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=h)
    assert (r1.status, r2.status) == (201, 200)
    assert (await r1.json())["id"] == (await r2.json())["id"]
    assert await _n_contacts(redis, api) == 1


async def test_bad_input_gets_a_problem_that_names_the_field(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api()
    h = api.auth("ingest")
    cases = [
        ({"data": b"{not json", "headers": {**h, "Content-Type": "application/json"}}, 400, "body"),
        ({"json": [1, 2]}, 422, "body"),
        ({"json": {"channel": "voice", "colour": "red"}}, 422, "colour"),
        ({"json": {"channel": "voice", "priority": "high"}}, 422, "priority"),
        ({"json": {"channel": "voice", "priority": True}}, 422, "priority"),
        ({"json": {"channel": "fax"}}, 422, "channel"),
        ({"json": {}}, 422, "channel"),
        ({"json": {"channel": "voice", "queue": "nope"}}, 422, "queue"),
        ({"json": {"channel": "voice", "queue": "a:b"}}, 422, "queue"),
        ({"json": {"channel": "voice", "skills": {"spanish": 9}}}, 422, "skills.spanish"),
        ({"json": {"channel": "voice", "customer": {"ssn": "1"}}}, 422, "customer.ssn"),
        (
            {
                "json": {
                    "channel": "voice",
                    "attributes": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}},
                }
            },
            422,
            "attributes",
        ),
        (
            {"data": b"x" * (300 * 1024), "headers": {**h, "Content-Type": "application/json"}},
            413,
            None,
        ),
        (
            {"data": b"a=b", "headers": {**h, "Content-Type": "application/x-www-form-urlencoded"}},
            415,
            None,
        ),
    ]
    for kwargs, status, field in cases:
        kwargs.setdefault("headers", h)
        r = await api.client.post("/v1/contacts", **kwargs)
        assert r.status == status, (kwargs, await r.text())
        assert r.content_type == PROBLEM
        problem = await r.json()
        assert problem["status"] == status and problem["title"] and problem["detail"]
        if field:
            assert problem["detail"].startswith(field), (field, problem)
    assert await _n_contacts(redis, api) == 0


async def test_a_bound_agent_token_acts_for_its_agent_only(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "a1")
    await _agent(api, "a2", status="away")
    r = await api.client.post(
        "/v1/agents/a2/status", json={"status": "available"}, headers=api.auth("a1")
    )
    assert r.status == 403
    r = await api.client.post(
        "/v1/agents/a2/status", json={"status": "available"}, headers=api.auth("agent")
    )
    assert r.status == 200 and (await r.json())["status"] == "available"


async def test_a_pool_scoped_supervisor_sees_only_its_pool(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "a1")
    r = await api.client.get("/v1/agents/a1", headers=api.auth("near-supervisor"))
    assert r.status == 404
    r = await api.client.get("/v1/agents/a1", headers=api.auth("supervisor"))
    assert r.status == 200 and (await r.json())["pool"] == "inhouse"


async def test_tenants_never_see_each_other(make_api: ApiFactory) -> None:
    one, two = await make_api(), await make_api()
    r = await one.client.post("/v1/contacts", json={"channel": "chat"}, headers=one.auth("ingest"))
    cid = (await r.json())["id"]
    # the second tenant's admin token, against the first tenant's server and contact
    r = await one.client.get(f"/v1/contacts/{cid}", headers=two.auth("admin"))
    assert r.status == 401  # tokens of another tenant mean nothing here
    r = await two.client.get(f"/v1/contacts/{cid}", headers=two.auth("admin"))
    assert r.status == 404


async def test_queues_show_live_state(make_api: ApiFactory) -> None:
    api = await make_api()
    for _ in range(3):
        await api.client.post("/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest"))
    api.clock.advance(12)
    r = await api.client.get("/v1/queues/voice", headers=api.auth("supervisor"))
    q = await r.json()
    assert q["waiting"] == 3 and q["longest_wait_s"] == 12.0 and q["agents_available"] == 0
    assert q["sla"] == {"threshold_s": 20.0, "target": 0.8}
    await _agent(api)
    r = await api.client.get("/v1/queues", headers=api.auth("supervisor"))
    by_name = {q["name"]: q for q in (await r.json())["queues"]}
    assert by_name["voice"]["waiting"] == 2
    assert (await api.client.get("/v1/queues/nope", headers=api.auth("supervisor"))).status == 404


async def test_offer_long_poll_wakes_when_an_offer_is_made(make_api: ApiFactory) -> None:
    import asyncio
    import time

    api = await make_api()
    await _agent(api)
    started = time.monotonic()
    poll = asyncio.create_task(
        api.client.get("/v1/agents/a1/offers?wait=20", headers=api.auth("a1"))
    )
    await asyncio.sleep(0.3)
    assert not poll.done()  # nothing to offer yet: the poll waits
    r = await api.client.post("/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest"))
    cid = (await r.json())["id"]
    resp = await asyncio.wait_for(poll, timeout=5)
    assert [o["id"] for o in (await resp.json())["offers"]] == [cid]
    assert time.monotonic() - started < 5  # woken, not timed out
    r = await api.client.get("/v1/agents/a1/offers?wait=0.2", headers=api.auth("agent"))
    assert len((await r.json())["offers"]) == 1  # open offers answer at once
    r = await api.client.get("/v1/agents/a1/offers?wait=abc", headers=api.auth("a1"))
    assert r.status == 422


async def test_offer_long_poll_times_out_with_an_empty_list(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api)
    r = await api.client.get("/v1/agents/a1/offers?wait=0.5", headers=api.auth("a1"))
    assert r.status == 200 and (await r.json()) == {"offers": []}


async def test_external_id_finds_the_contact_and_dedupes(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api()
    body = {"channel": "chat", "external_id": "CA123"}
    r1 = await api.client.post("/v1/contacts", json=body, headers=api.auth("ingest"))
    r2 = await api.client.post("/v1/contacts", json=body, headers=api.auth("ingest"))
    assert (r1.status, r2.status) == (201, 200)
    first = await r1.json()
    assert first["state"] == "queued" and first["position"] == 1
    r = await api.client.get("/v1/contacts?external_id=CA123", headers=api.auth("supervisor"))
    assert [c["id"] for c in (await r.json())["contacts"]] == [first["id"]]
    r = await api.client.get("/v1/contacts?external_id=nope", headers=api.auth("supervisor"))
    assert (await r.json()) == {"contacts": []}
    assert (await api.client.get("/v1/contacts", headers=api.auth("supervisor"))).status == 422
    assert await _n_contacts(redis, api) == 1
