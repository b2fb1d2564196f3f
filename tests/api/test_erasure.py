"""DELETE /v1/customers/{id}: a customer's personal data leaves every contact and
record (found by id, email or phone), anonymous routing state and metrics stay,
repeats are harmless, events and audit carry no personal data, admins only."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from router.keys import TenantKeys

from .conftest import Api, ApiFactory

EMAIL, PHONE = "jane.doe@example.com", "+34612345123"


async def _contact(api: Api, customer: dict[str, str], **extra: Any) -> str:
    r = await api.client.post(
        "/v1/contacts",
        json={
            "channel": "chat",
            "customer": customer,
            "subject": "my order",
            "body": f"write to {customer.get('email', '?')}",
            "attributes": {"iban": "ES00"},
            **extra,
        },
        headers=api.auth("ingest"),
    )
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def _get(api: Api, cid: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def _erase(api: Api, customer: str, who: str = "admin") -> tuple[int, Any]:
    r = await api.client.delete(f"/v1/customers/{customer}", headers=api.auth(who))
    return r.status, await r.json(content_type=None)


async def _contacts_erased(api: Api, customer: str) -> int:
    status, body = await _erase(api, customer)
    assert status == 200, body
    assert set(body) == {"erasure", "contacts"} and body["erasure"].startswith("er-")
    return int(body["contacts"])


async def test_erasure_clears_every_contact_of_the_customer(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api()
    keys = TenantKeys(api.tenant)
    engine = api.service.engines[api.tenant]
    r = await api.client.put(
        "/v1/agents/a1",
        json={"pool": "inhouse", "capacity": {"chat": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status == 201
    jane = {"id": "crm-42", "name": "Jane", "email": EMAIL, "phone": PHONE}
    answered = await _contact(api, jane, external_id="ext-1")
    waiting = await _contact(api, jane)  # a1 is full: this one waits
    other = await _contact(api, {"id": "crm-7", "email": "bob@example.com"})
    await redis.lpush(keys.timeline(answered), json.dumps({"kind": "message", "text": EMAIL}))
    await redis.set(keys.customer_last_agent(engine.customer_digest("crm-42")), "a1")
    before = {cid: await _get(api, cid) for cid in (answered, waiting)}
    assert before[answered]["agent"] == "a1" and before[waiting]["state"] == "queued"

    status, body = await _erase(api, "crm-42")
    assert status == 200, body
    assert body["contacts"] == 2 and body["erasure"].startswith("er-")
    for cid in (answered, waiting):
        after = await _get(api, cid)
        assert after["customer"] == {} and after["subject"] == "" and after["preview"] == ""
        assert after["attributes"] == {} and after["external_id"] is None
        assert after["timeline"] == []
        for k in ("state", "queue", "agent", "pool", "created_at", "channel"):
            assert after[k] == before[cid][k], k
        assert EMAIL not in json.dumps(after) and PHONE not in json.dumps(after)
    assert not await redis.exists(keys.customer_last_agent(engine.customer_digest("crm-42")))
    assert (await _get(api, other))["customer"]["email"] == "bob@example.com"
    # events name the erasure, never the customer
    stream = await redis.xrange(keys.events)
    erased = [f for _, f in stream if f[b"type"] == b"contact.erased"]
    assert sorted(f[b"contact"].decode() for f in erased) == sorted([answered, waiting])
    assert all(f[b"erasure"].decode() == body["erasure"] for f in erased)
    assert not any(b"crm-42" in v or EMAIL.encode() in v for f in erased for v in f.values())
    # an erased contact goes on through its lifecycle
    r = await api.client.post(f"/v1/offers/{answered}/accept", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    r = await api.client.post(f"/v1/contacts/{answered}/complete", headers=api.auth("a1"))
    assert r.status == 200, await r.text()
    # a repeat is harmless; the audit records both, without personal data
    assert await _contacts_erased(api, "crm-42") == 0
    r = await api.client.get("/v1/audit", headers=api.auth("admin"))
    audit = (await r.json())["entries"]
    assert [(e["action"], e["contacts"]) for e in audit] == [("erase", 2), ("erase", 0)]
    assert "crm-42" not in json.dumps(audit)


async def test_erasure_by_email_or_phone_finds_contacts_without_a_customer_id(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    by_mail = await _contact(api, {"name": "Jane", "email": "Jane.Doe@Example.com"})
    by_phone = await _contact(api, {"phone": "+34 612 345 123"})
    kept = await _contact(api, {"email": "bob@example.com", "phone": "+34 699 000 111"})
    assert await _contacts_erased(api, EMAIL) == 1
    assert (await _get(api, by_mail))["customer"] == {}
    assert (await _get(api, by_phone))["customer"] != {}
    assert await _contacts_erased(api, "+34 (612) 345-123") == 1
    assert (await _get(api, by_phone))["customer"] == {}
    assert (await _get(api, kept))["customer"]["email"] == "bob@example.com"


async def test_only_admins_erase(make_api: ApiFactory) -> None:
    api = await make_api()
    cid = await _contact(api, {"id": "crm-42", "email": EMAIL})
    for who in ("supervisor", "near-supervisor", "agent", "a1", "ingest"):
        status, problem = await _erase(api, "crm-42", who)
        assert status == 403, (who, problem)
    assert (await _get(api, cid))["customer"]["email"] == EMAIL
    status, problem = await _erase(api, "x" * 321)
    assert status == 400 and problem["field"] == "id"


async def test_a_contact_found_under_two_identities_is_erased_once(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api()
    cid = await _contact(api, {"id": EMAIL, "email": EMAIL})
    assert await _contacts_erased(api, EMAIL) == 1
    assert (await _get(api, cid))["customer"] == {}
    stream = await redis.xrange(TenantKeys(api.tenant).events)
    assert [f[b"contact"].decode() for _, f in stream if f[b"type"] == b"contact.erased"] == [cid]


async def test_erasure_by_social_handle(make_api: ApiFactory) -> None:
    api = await make_api()
    cid = await _contact(api, {"handle": "@Jane_Doe"})
    kept = await _contact(api, {"handle": "@bob"})
    assert await _contacts_erased(api, "@jane_doe") == 1
    assert (await _get(api, cid))["customer"] == {}
    assert (await _get(api, kept))["customer"] != {}


async def test_ids_of_expired_contacts_do_not_stall_an_erasure(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api()
    engine = api.service.engines[api.tenant]
    keys = TenantKeys(api.tenant)
    live = await _contact(api, {"id": "crm-9"})
    # many index entries whose contacts expired long ago
    index = keys.customer_contacts(engine.customer_digest("crm-9"))
    await redis.sadd(index, *[f"gone{i}" for i in range(450)])
    erased = await engine.erase_customer(
        engine.customer_digest("crm-9"), [engine.customer_digest("crm-9")], "er-test", batch=100
    )
    assert erased == 1
    assert not await redis.exists(index)
    assert (await _get(api, live))["customer"] == {}
