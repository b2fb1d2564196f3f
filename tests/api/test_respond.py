"""POST /v1/contacts/{id}/respond (first response), the SLA in the contact view, and
a closed queue refusing contacts."""

from __future__ import annotations

from typing import Any

from ..factories import BASE_BODY
from .conftest import Api, ApiFactory

BODY = (
    BASE_BODY
    + """
[queues.email.sla]
first_response_s = 600
resolution_s = 3600

[calendars.mondays]
timezone = "UTC"
hours = { mon = ["09:00-10:00"] }

[queues.closed]
channel = "chat"
pools = ["inhouse"]
hours = "mondays"
when_closed = "refuse"

[queues.mail_hours]
channel = "email"
pools = ["inhouse"]
hours = "mondays"

[queues.mail_hours.sla]
first_response_s = 600
"""
)


async def _held_email(api: Api, agent: str = "a1") -> str:
    r = await api.client.put(
        f"/v1/agents/{agent}",
        json={"pool": "inhouse", "capacity": {"email": 3}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()
    r = await api.client.post("/v1/contacts", json={"channel": "email"}, headers=api.auth("ingest"))
    created = await r.json()
    assert created["agent"] == agent, created
    token = "a1" if agent == "a1" else "agent"  # a bound token, or the platform-wide one
    r = await api.client.post(f"/v1/offers/{created['id']}/accept", headers=api.auth(token))
    assert r.status == 200, await r.text()
    return str(created["id"])


async def _responded(api: Api) -> list[dict[str, str]]:
    keys = api.service.engines[api.tenant].keys
    out = []
    for _, fields in await api.service.redis.xrange(keys.events):
        e = {k.decode(): v.decode() for k, v in fields.items()}
        if e["type"] == "contact.responded":
            out.append(e)
    return out


async def test_respond_records_the_first_response_once(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    cid = await _held_email(api)
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
    view = await r.json()
    assert view["first_response_at"] is None
    assert (view["sla"]["kind"], view["sla"]["status"], view["sla"]["threshold_s"]) == (
        "first_response",
        "waiting",
        600.0,
    )
    assert view["sla"]["resolution"]["status"] == "waiting"
    api.clock.advance(90)
    r = await api.client.post(f"/v1/contacts/{cid}/respond", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    first = await r.json()
    assert first["first_response_at"] is not None
    assert (first["sla"]["status"], first["sla"]["answered_in_s"]) == ("met", 90.0)
    api.clock.advance(30)
    # again, with the platform-wide token naming the agent: same time, no new event
    r = await api.client.post(
        f"/v1/contacts/{cid}/respond", json={"agent": "a1"}, headers=api.auth("agent")
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["first_response_at"] == first["first_response_at"]
    (ev,) = await _responded(api)
    assert (ev["contact"], ev["agent"], ev["pool"], ev["response_ms"]) == (
        cid,
        "a1",
        "inhouse",
        "90000",
    )


async def test_respond_errors(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    r = await api.client.post("/v1/contacts/nope/respond", headers=api.auth("a1"))
    assert r.status == 404
    r = await api.client.post("/v1/contacts", json={"channel": "email"}, headers=api.auth("ingest"))
    queued = (await r.json())["id"]
    # not held by anyone yet
    r = await api.client.post(f"/v1/contacts/{queued}/respond", headers=api.auth("a1"))
    assert r.status == 409
    r = await api.client.post(f"/v1/contacts/{queued}/respond", headers=api.auth("admin"))
    assert r.status == 409 and (await r.json())["code"] == "invalid_state"
    cid = await _held_email(api, "a2")  # held by a2 (queued one goes to a2 too)
    r = await api.client.post(f"/v1/contacts/{cid}/respond", headers=api.auth("a1"))
    assert r.status == 409  # a1's token does not act for a2
    r = await api.client.post(
        f"/v1/contacts/{cid}/respond", json={"agent": "a1"}, headers=api.auth("agent")
    )
    assert r.status == 409  # names another agent than the holder
    r = await api.client.post(f"/v1/contacts/{cid}/respond", headers=api.auth("ingest"))
    assert r.status == 403
    r = await api.client.post(
        f"/v1/contacts/{cid}/respond", json={"agent": "x y"}, headers=api.auth("agent")
    )
    assert r.status == 422
    r = await api.client.post(
        f"/v1/contacts/{cid}/respond", json={"extra": 1}, headers=api.auth("agent")
    )
    assert r.status == 422
    assert await _responded(api) == []
    r = await api.client.post(f"/v1/contacts/{cid}/respond", headers=api.auth("admin"))
    assert r.status == 200


async def test_closed_queue_refuses_with_reason_and_opening(make_api: ApiFactory) -> None:
    api = await make_api(BODY)  # the virtual clock starts on a Thursday, 00:16 UTC
    r = await api.client.post(
        "/v1/contacts", json={"channel": "chat", "queue": "closed"}, headers=api.auth("ingest")
    )
    assert r.status == 409
    assert r.content_type == "application/problem+json"
    body: dict[str, Any] = await r.json()
    assert (body["code"], body["reason"], body["queue"]) == (
        "queue_closed",
        "queue_closed",
        "closed",
    )
    assert body["opens_at"] == "1970-01-05T09:00:00.000Z"
    assert body["opens_at_ms"] == 4 * 86_400_000 + 9 * 3_600_000


async def test_a_held_contact_waits_from_the_opening(make_api: ApiFactory) -> None:
    """Mail held from Thursday to Monday's opening and answered 60 s later: the
    view shows the arrival apart, and the wait, and so the SLA, from the opening."""
    api = await make_api(BODY)
    arrived = api.clock.now_ms()
    r = await api.client.post(
        "/v1/contacts", json={"channel": "email", "queue": "mail_hours"}, headers=api.auth("ingest")
    )
    assert r.status == 201, await r.text()
    cid = (await r.json())["id"]
    api.clock.set_ms(4 * 86_400_000 + 9 * 3_600_000)  # Monday 09:00 UTC
    await api.service.engines[api.tenant].run_due_timers()
    api.clock.advance(60)
    r = await api.client.put(
        "/v1/agents/a1",
        json={"pool": "inhouse", "capacity": {"email": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201)
    r = await api.client.post(f"/v1/offers/{cid}/accept", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    r = await api.client.post(f"/v1/contacts/{cid}/respond", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    view = await (
        await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
    ).json()
    assert view["arrived_at"] == "1970-01-01T00:16:40.000Z" and arrived == 1_000_000
    assert view["created_at"] == "1970-01-05T09:00:00.000Z"
    assert (view["sla"]["status"], view["sla"]["answered_in_s"]) == ("met", 60.0)
    (responded,) = await _responded(api)
    assert responded["response_ms"] == "60000"
