"""What reads return: SLA status, msgpack on request, pool-scoped agent lists."""

from __future__ import annotations

import msgpack

from .conftest import Api, ApiFactory


async def _agent(api: Api, aid: str, pool: str = "inhouse", status: str = "offline") -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={"pool": pool, "skills": {"billing": 3}, "capacity": {"chat": 2}, "status": status},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()


async def _sla(api: Api, cid: str) -> dict[str, object]:
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
    body = await r.json()
    assert isinstance(body["sla"], dict)
    return body["sla"]


async def test_sla_status_follows_the_wait_and_the_answer(make_api: ApiFactory) -> None:
    # the test chat queue keeps the default target: 80% in 20 s
    api = await make_api()
    ids = []
    for _ in range(3):
        r = await api.client.post(
            "/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest")
        )
        ids.append((await r.json())["id"])
    first = await _sla(api, ids[0])
    assert (first["status"], first["threshold_s"], first["target"]) == ("waiting", 20.0, 0.8)
    assert first["answered_in_s"] is None and str(first["due_at"]).endswith("Z")
    api.clock.advance(5)
    r = await api.client.post(f"/v1/contacts/{ids[2]}/abandon", headers=api.auth("ingest"))
    assert r.status == 200
    assert (await _sla(api, ids[2]))["status"] == "short_abandon"
    await _agent(api, "a1", status="available")  # takes ids[0] and ids[1] (capacity 2)
    r = await api.client.post(f"/v1/offers/{ids[0]}/accept", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    met = await _sla(api, ids[0])
    assert (met["status"], met["answered_in_s"]) == ("met", 5.0)
    api.clock.advance(25)  # inside the 30 s offer timeout
    assert (await _sla(api, ids[1]))["status"] == "breached"  # on offer, not answered
    r = await api.client.post(f"/v1/offers/{ids[1]}/accept", headers=api.auth("a1"))
    assert r.status == 200
    missed = await _sla(api, ids[1])
    assert (missed["status"], missed["answered_in_s"]) == ("missed", 30.0)


async def test_msgpack_responses_on_request(make_api: ApiFactory) -> None:
    api = await make_api()
    headers = {**api.auth("ingest"), "Accept": "application/msgpack"}
    body = msgpack.packb({"channel": "chat", "subject": "héllo"})
    r = await api.client.post(
        "/v1/contacts", data=body, headers={**headers, "Content-Type": "application/msgpack"}
    )
    assert r.status == 201 and r.content_type == "application/msgpack"
    created = msgpack.unpackb(await r.read())
    r = await api.client.get(
        f"/v1/contacts/{created['id']}",
        headers={**api.auth("supervisor"), "Accept": "application/msgpack"},
    )
    c = msgpack.unpackb(await r.read())
    assert c["subject"] == "héllo" and c["queue"] == created["queue"] == "chat"
    # JSON stays the default, and wins when preferred; problems stay problem+json
    r = await api.client.get(
        "/v1/queues",
        headers={**api.auth("supervisor"), "Accept": "application/json, application/msgpack;q=0.5"},
    )
    assert r.content_type == "application/json"
    r = await api.client.get("/v1/queues/nope", headers={**headers, **api.auth("supervisor")})
    assert r.status == 404 and r.content_type == "application/problem+json"


async def test_agent_list_is_scoped_to_a_supervisors_pool(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "i1")
    await _agent(api, "n1", pool="near", status="available")
    await _agent(api, "n2", pool="near")

    async def ids(who: str, query: str = "") -> list[str]:
        r = await api.client.get(f"/v1/agents{query}", headers=api.auth(who))
        assert r.status == 200, await r.text()
        return [a["id"] for a in (await r.json())["agents"]]

    assert await ids("supervisor") == ["i1", "n1", "n2"]
    assert await ids("admin", "?pool=inhouse") == ["i1"]
    assert await ids("near-supervisor") == ["n1", "n2"]
    assert await ids("near-supervisor", "?pool=inhouse") == []  # the scope still holds
    assert await ids("supervisor", "?status=available") == ["n1"]
    for who in ("agent", "ingest"):
        r = await api.client.get("/v1/agents", headers=api.auth(who))
        assert r.status == 403
    for query in ("?pool=nope", "?status=busy"):
        r = await api.client.get(f"/v1/agents{query}", headers=api.auth("admin"))
        assert r.status == 422 and r.content_type == "application/problem+json"
    # a scoped supervisor cannot read another pool's agent either
    r = await api.client.get("/v1/agents/i1", headers=api.auth("near-supervisor"))
    assert r.status == 404
