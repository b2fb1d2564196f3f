"""POST /v1/contacts tells a queued contact its place in line and its estimated wait."""

from __future__ import annotations

from typing import Any

from .conftest import Api, ApiFactory


async def _post(api: Api, channel: str, status: int = 201) -> dict[str, Any]:
    r = await api.client.post("/v1/contacts", json={"channel": channel}, headers=api.auth("ingest"))
    assert r.status == status, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def test_queued_contacts_get_position_and_estimated_wait(make_api: ApiFactory) -> None:
    api = await make_api()
    # nobody can take chats: a place in line, but no basis for an estimate
    first = await _post(api, "chat")
    assert first["state"] == "queued" and first["position"] == 1
    assert "estimated_wait_s" in first and first["estimated_wait_s"] is None
    api.clock.advance(0.001)  # contacts of the same ms line up by id
    assert (await _post(api, "chat"))["position"] == 2

    r = await api.client.put(
        "/v1/agents/a1",
        json={"pool": "inhouse", "skills": {"billing": 3}, "capacity": {"voice": 1}},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()
    r = await api.client.post(
        "/v1/agents/a1/status", json={"status": "available"}, headers=api.auth("a1")
    )
    assert r.status == 200, await r.text()

    # one voice contact handled in 40 s of talk and 10 s of wrap-up (within the
    # tenant's 60 s presence timeout: the agent sends no heartbeat here)
    offered = await _post(api, "voice")
    assert offered["state"] == "reserved" and offered["agent"] == "a1"
    assert "position" not in offered and "estimated_wait_s" not in offered
    cid = offered["id"]
    assert (await api.client.post(f"/v1/offers/{cid}/accept", headers=api.auth("a1"))).status == 200
    api.clock.advance(40)
    r = await api.client.post(f"/v1/contacts/{cid}/complete", headers=api.auth("a1"))
    assert (await r.json())["state"] == "wrap_up"
    api.clock.advance(10)
    # wrap-up ends by its timer (the service's timer loop may get there first)
    await api.service.engines[api.tenant].run_due_timers()
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))
    assert (await r.json())["state"] == "completed"

    assert (await _post(api, "voice"))["agent"] == "a1"  # busy again
    api.clock.advance(0.001)
    waiting = await _post(api, "voice")
    assert waiting["state"] == "queued" and waiting["position"] == 1
    assert waiting["estimated_wait_s"] == 50.0  # one agent, 50 s per contact
    api.clock.advance(0.001)
    assert (await _post(api, "voice"))["estimated_wait_s"] == 100.0
