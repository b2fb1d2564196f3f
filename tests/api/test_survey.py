"""POST /v1/contacts/{id}/survey: who may call it, the 422 of every bad score, the
409s (never answered, surveyed before), 404, and the idempotent repeat."""

from __future__ import annotations

from typing import Any

from .conftest import Api, ApiFactory

BODY = """
[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }

[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "inhouse"

[queues.voice]
channel = "voice"
pools = ["inhouse"]

[queues.chat]
channel = "chat"
pools = ["inhouse"]

[queues.email]
channel = "email"
pools = ["inhouse"]
"""


async def _contact(api: Api, *, answered: bool = True, agent: str = "a1") -> str:
    if answered:
        r = await api.client.put(
            f"/v1/agents/{agent}",
            json={"pool": "inhouse", "capacity": {"chat": 3}, "status": "available"},
            headers=api.auth("admin"),
        )
        assert r.status in (200, 201), await r.text()
    r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest"))
    created = await r.json()
    if answered:
        assert created["agent"] == agent, created
        r = await api.client.post(f"/v1/offers/{created['id']}/accept", headers=api.auth("a1"))
        assert r.status == 200, await r.text()
    return str(created["id"])


async def _survey(api: Api, cid: str, body: Any, who: str = "ingest") -> tuple[int, Any]:
    r = await api.client.post(f"/v1/contacts/{cid}/survey", json=body, headers=api.auth(who))
    return r.status, await r.json(content_type=None)


BAD: list[tuple[Any, str]] = [
    ({}, "csat"),
    ({"csat": 0}, "csat"),
    ({"csat": 6}, "csat"),
    ({"csat": 4.5}, "csat"),
    ({"csat": 4.0}, "csat"),
    ({"csat": "4"}, "csat"),
    ({"csat": True}, "csat"),
    ({"csat": None}, "csat"),
    ({"nps": -1}, "nps"),
    ({"nps": 11}, "nps"),
    ({"nps": "9"}, "nps"),
    ({"csat": 3, "nps": 10.5}, "nps"),
    ({"csat": 3, "comment": "great"}, "comment"),
    ([5], "body"),
]


async def test_bad_scores_are_422_naming_the_field(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    cid = await _contact(api)
    for body, field in BAD:
        status, problem = await _survey(api, cid, body)
        assert status == 422, (body, problem)
        assert problem["field"] == field and problem["detail"].startswith(f"{field}:"), problem
    # nothing was recorded: a valid survey still goes through, at the range's ends
    assert (await _survey(api, cid, {"csat": 1, "nps": 10}))[0] == 201
    cid2 = await _contact(api)
    assert (await _survey(api, cid2, {"csat": 5, "nps": 0}))[0] == 201


async def test_survey_records_once_and_repeats_idempotently(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    cid = await _contact(api)
    api.clock.set_ms(api.clock.now_ms() + 2 * 3_600_000)  # two hours later
    at = api.clock.now_ms()
    status, rec = await _survey(api, cid, {"csat": 5, "nps": 9})
    assert status == 201, rec
    assert rec == {"contact": cid, "agent": "a1", "pool": "inhouse", "csat": 5, "nps": 9, "at": at}
    api.clock.set_ms(at + 1000)
    status, again = await _survey(api, cid, {"nps": 9, "csat": 5}, who="admin")
    assert (status, again) == (200, rec)
    status, problem = await _survey(api, cid, {"csat": 1})
    assert status == 409 and "surveyed already" in problem["detail"], problem
    events = await api.service.redis.xrange(api.service.engines[api.tenant].keys.events)
    assert sum(1 for _, f in events if f[b"type"] == b"contact.surveyed") == 1


async def test_survey_of_a_contact_never_answered_is_409(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    cid = await _contact(api, answered=False)
    status, problem = await _survey(api, cid, {"nps": 7})
    assert status == 409 and "not answered" in problem["detail"], problem


async def test_unknown_contact_is_404_and_roles(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    assert (await _survey(api, "no-such-contact", {"csat": 3}))[0] == 404
    cid = await _contact(api)
    for who in ("agent", "a1", "supervisor"):
        status, problem = await _survey(api, cid, {"csat": 3}, who=who)
        assert status == 403, (who, problem)
    r = await api.client.post(f"/v1/contacts/{cid}/survey", json={"csat": 3})
    assert r.status == 401
    assert (await _survey(api, cid, {"csat": 3}, who="admin"))[0] == 201
