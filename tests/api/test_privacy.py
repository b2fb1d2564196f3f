"""Data protection in the API: an outsourced pool sees its vendor's policy in every
response (offers, long poll, event stream, contact reads and lists, actions),
including a contact transferred to a named agent of that pool; in-house staff,
tenant-wide supervisors and admins see everything; reads are audited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.api import agent_events
from router.api.visibility import pseudonym_secret
from router.privacy import customer_identity, pseudonym

from ..factories import BASE_BODY
from .conftest import Api, ApiFactory
from .test_agent_events import Sse

VENDOR = '[vendors.near-co]\nname = "Near Co"\nlocation = "nearshore"\n'
BODY = BASE_BODY.replace(
    VENDOR,
    VENDOR + '\n[vendors.near-co.visibility]\nemail = "tokenize"\nphone = "mask"\n'
    'hide = ["iban"]\n',
)
EMAIL, PHONE, IBAN = "jane.doe@example.com", "+34612345123", "ES9121000418450200051332"
CUSTOMER = {"id": "crm-42", "name": "Jane", "email": EMAIL, "phone": PHONE}


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_events, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(agent_events, "RECHECK_S", 0.05)


async def _put_agent(api: Api, aid: str, pool: str, status: str) -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={"pool": pool, "capacity": {"chat": 2}, "status": status},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()


async def _call(api: Api, method: str, path: str, headers: dict[str, str], **kw: Any) -> str:
    r = await api.client.request(method, path, headers=headers, **kw)
    text = await r.text()
    assert r.status in (200, 201), (path, text)
    return text


def _hidden(text: str) -> None:
    """None of the raw personal data the policy covers is in this response."""
    for raw in (EMAIL, PHONE, IBAN, "crm-42"):
        assert raw not in text, (raw, text)


async def _setup(api: Api) -> tuple[str, dict[str, str]]:
    """A chat contact answered in-house by a1, then transferred to n1 of the
    outsourced pool `near`; returns its id and n1's bound token header."""
    await _put_agent(api, "a1", "inhouse", "available")
    await _put_agent(api, "n1", "near", "offline")
    r = await api.client.post("/v1/agents/n1/token", headers=api.auth("admin"))
    n1 = {"Authorization": f"Bearer {(await r.json())['token']}"}
    created = json.loads(
        await _call(
            api,
            "POST",
            "/v1/contacts",
            api.auth("ingest"),
            json={
                "channel": "chat",
                "customer": CUSTOMER,
                "subject": f"Refund for {EMAIL}",
                "body": f"Call me back on {PHONE}",
                "attributes": {"iban": IBAN, "plan": "gold"},
                "external_id": "ext-1",
            },
        )
    )
    cid = created["id"]
    assert created["agent"] == "a1", created
    await _call(api, "POST", f"/v1/offers/{cid}/accept", api.auth("a1"))
    await _call(api, "POST", "/v1/agents/n1/status", n1, json={"status": "available"})
    return cid, n1


async def test_transfer_to_a_named_outsourced_agent_is_masked_everywhere(
    make_api: ApiFactory,
) -> None:
    api = await make_api(BODY)
    cid, n1 = await _setup(api)
    engine = api.service.engines[api.tenant]
    token = pseudonym(await pseudonym_secret(engine), customer_identity(CUSTOMER))
    events = await api.client.get("/v1/agents/n1/events", headers=n1)
    assert events.status == 200
    sse = Sse(events)
    # the in-house agent who transfers sees everything
    moved = await _call(
        api, "POST", f"/v1/contacts/{cid}/transfer", api.auth("a1"), json={"agent": "n1"}
    )
    assert EMAIL in moved and PHONE in moved and IBAN in moved
    offer = await sse.until("offer")
    assert offer["id"] == cid
    seen = [
        json.dumps(offer),
        await _call(api, "GET", "/v1/agents/n1/offers", n1),
        await _call(api, "GET", "/v1/agents/n1/offers?wait=1", n1),
        await _call(api, "GET", f"/v1/contacts/{cid}", n1),
        await _call(api, "POST", f"/v1/offers/{cid}/accept", n1),
        await _call(api, "GET", f"/v1/contacts/{cid}", api.auth("near-supervisor")),
        await _call(api, "GET", "/v1/contacts?external_id=ext-1", api.auth("near-supervisor")),
        json.dumps(await sse.until("contact")),
        await _call(api, "POST", f"/v1/contacts/{cid}/complete", n1),
    ]
    events.close()
    for text in seen:
        _hidden(text)
    contact = json.loads(seen[3])
    assert contact["customer"] == {
        "id": token,
        "name": "Jane",
        "email": token,
        "phone": "+34 *** *** 123",
    }
    assert contact["attributes"] == {"plan": "gold"}
    assert contact["subject"] == f"Refund for {token}"
    assert contact["preview"] == "Call me back on +34 *** *** 123"
    # admins and a tenant-wide supervisor see everything
    for who in ("admin", "supervisor"):
        full = await _call(api, "GET", f"/v1/contacts/{cid}", api.auth(who))
        assert EMAIL in full and PHONE in full and IBAN in full


async def test_the_pseudonym_is_stable_across_contacts_and_reads(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    await _put_agent(api, "n1", "near", "available")
    seen = set()
    for _ in range(2):
        r = await api.client.post(
            "/v1/contacts",
            json={"channel": "chat", "customer": {"email": EMAIL}},
            headers=api.auth("ingest"),
        )
        cid = (await r.json())["id"]
        for _ in range(2):
            r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("near-supervisor"))
            seen.add((await r.json())["customer"]["email"])
        await _call(api, "POST", f"/v1/offers/{cid}/accept", api.auth("agent"))
    assert len(seen) == 1 and seen.pop().startswith("cus_")


async def test_reads_by_outsourced_pools_are_audited_for_admins(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    cid, n1 = await _setup(api)
    await _call(api, "POST", f"/v1/contacts/{cid}/transfer", api.auth("a1"), json={"agent": "n1"})
    await _call(api, "GET", f"/v1/contacts/{cid}", n1)
    await _call(api, "POST", f"/v1/offers/{cid}/accept", n1)
    await _call(api, "GET", f"/v1/contacts/{cid}", api.auth("near-supervisor"))
    await _call(api, "GET", f"/v1/contacts/{cid}", api.auth("admin"))  # not audited
    body = json.loads(await _call(api, "GET", "/v1/audit", api.auth("admin")))
    entries = body["entries"]
    assert [(e["action"], e["who"]) for e in entries] == [
        ("read", "agent n1"),
        ("read", "agent n1"),
        ("read", f"{api.tenant}-near-supervisor"),
    ]
    first = entries[0]
    assert first["pool"] == "near" and first["vendor"] == "near-co"
    assert first["agent"] == "n1" and first["contact"] == cid
    assert {"customer.email", "customer.phone", "customer.name"} <= set(first["fields"])
    assert entries[2]["agent"] is None
    _hidden(json.dumps(body))
    # filters, and who may ask
    empty = json.loads(await _call(api, "GET", "/v1/audit?pool=inhouse", api.auth("admin")))
    assert empty["entries"] == []
    one = json.loads(await _call(api, "GET", "/v1/audit?limit=1", api.auth("admin")))
    assert len(one["entries"]) == 1 and one["truncated"] is True
    now = api.clock.now_ms()
    later = await _call(api, "GET", f"/v1/audit?from={now + 1}&to={now + 9}", api.auth("admin"))
    assert json.loads(later)["entries"] == []
    for who in ("supervisor", "near-supervisor", "agent", "ingest"):
        r = await api.client.get("/v1/audit", headers=api.auth(who))
        assert r.status == 403, who
    for query, field in (("limit=0", "limit"), ("pool=zz", "pool"), ("from=x", "from")):
        r = await api.client.get(f"/v1/audit?{query}", headers=api.auth("admin"))
        assert r.status == 400, query
        assert (await r.json())["detail"].startswith(field)


async def test_an_offer_made_directly_to_an_outsourced_agent_is_masked(
    make_api: ApiFactory,
) -> None:
    api = await make_api(BODY)
    await _put_agent(api, "n1", "near", "available")
    r = await api.client.post(
        "/v1/contacts",
        json={"channel": "chat", "customer": CUSTOMER, "attributes": {"iban": IBAN}},
        headers=api.auth("ingest"),
    )
    assert (await r.json())["agent"] == "n1"
    # a platform-wide agent token acting for n1 gets n1's view
    text = await _call(api, "GET", "/v1/agents/n1/offers", api.auth("agent"))
    _hidden(text)
    assert json.loads(text)["offers"][0]["contact"]["customer"]["phone"] == "+34 *** *** 123"
