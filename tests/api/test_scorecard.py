"""GET /v1/vendors/{id}/scorecard: default period (the vendor's month), from/to as
ISO or ms, the figures of real traffic, roles and pool scope, bad ranges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.metrics.consumer import drain
from router.model import AgentStatus, NewContact

from ..factories import BASE_BODY, agent
from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"

CONTRACT = """[vendors.near-co]
name = "Near Co"
location = "nearshore"
timezone = "America/Costa_Rica"
max_per_day = 50
min_per_day = 20
price_per_contact = 1.25
currency = "USD"
sla_target = "80%"
"""
BODY = BASE_BODY.replace('[vendors.near-co]\nname = "Near Co"\nlocation = "nearshore"\n', CONTRACT)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


T0 = _ms("2026-11-10T09:00:00-06:00")
NOV = (_ms("2026-11-01T00:00:00-06:00"), _ms("2026-12-01T00:00:00-06:00"))


async def _traffic(api: Api) -> None:
    """One chat answered by the nearshore pool after 10 s, handled 60 s, CSAT 4."""
    api.clock.set_ms(T0)
    e = api.service.engines[api.tenant]
    await e.upsert_agent(agent("n1", "near", skills={}, capacity={"chat": 1}))
    await e.set_agent_status("n1", AgentStatus.AVAILABLE)
    r = await e.create_contact(NewContact(channel="chat", queue="chat"))
    assert r.agent == "n1"
    api.clock.set_ms(T0 + 10_000)
    await e.accept(r.contact_id, "n1")
    api.clock.set_ms(T0 + 70_000)
    await e.complete(r.contact_id, "n1", skip_wrap_up=True)
    await e.survey(r.contact_id, csat=4)
    assert await drain(e) > 0


async def _get(api: Api, query: str = "", who: str = "supervisor", vendor: str = "near-co") -> Any:
    return await api.client.get(f"/v1/vendors/{vendor}/scorecard{query}", headers=api.auth(who))


async def _ok(api: Api, query: str = "", who: str = "supervisor") -> dict[str, Any]:
    r = await _get(api, query, who)
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def test_default_period_is_the_vendors_month_and_figures_are_those_of_the_traffic(
    make_api: ApiFactory,
) -> None:
    api = await make_api(BODY)
    await _traffic(api)
    card = await _ok(api)
    assert (card["from"], card["to"]) == NOV  # November in Costa Rica, not in UTC
    assert card["volume"] == {
        "answered": 1,
        "handled": 1,
        "days": 30,
        "cap": 1500,  # 50 x 30
        "commitment": 600,  # 20 x 30
        "commitment_met": False,
    }
    assert card["service_level"] == {"threshold_s": None, "value": 1.0}  # 10 s <= 20 s
    assert card["service_level_target"] == 0.8
    assert (card["asa_s"], card["aht_s"], card["abandon_rate"]) == (10.0, 60.0, 0.0)
    assert (card["csat"], card["nps"], card["sla_breaches"]) == (4.0, None, 0)
    assert card["cost"] == {"amount": 1.25, "currency": "USD"}
    assert card["pools"] == ["near"]

    # the same day as ISO times and as ms; `from` alone runs to now
    day = "?from=2026-11-10T00:00:00-06:00&to=2026-11-11T00:00:00-06:00"
    iso = await _ok(api, day)
    ms = await _ok(api, f"?from={_ms('2026-11-10T06:00:00+00:00')}&to={_ms('2026-11-11T06:00:00')}")
    assert iso == ms and iso["volume"]["days"] == 1 and iso["cost"] == card["cost"]
    since = await _ok(api, "?from=2026-11-10T14:00:00Z")
    assert since["to"] == api.clock.now_ms() and since["volume"]["answered"] == 1
    # `to` alone: from the start of its month
    until = await _ok(api, "?to=2026-11-05T00:00:00Z")
    assert until["from"] == NOV[0] and until["volume"]["answered"] == 0
    assert until["cost"] == {"amount": 0.0, "currency": "USD"} and until["asa_s"] is None

    # a vendor without a price: cost null
    off = await _get(api, vendor="off-co")
    assert off.status == 200 and (await off.json())["cost"] is None


async def test_roles_scope_and_bad_input(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    assert (await _get(api, who="admin")).status == 200
    # a token scoped to the nearshore pool: its own vendor only
    assert (await _get(api, who="near-supervisor")).status == 200
    r = await _get(api, who="near-supervisor", vendor="off-co")
    assert r.status == 403 and r.content_type == PROBLEM
    assert (await _get(api, who="agent")).status == 403
    r = await api.client.get("/v1/vendors/near-co/scorecard")
    assert r.status == 401
    r = await _get(api, vendor="nobody")
    assert r.status == 404 and r.content_type == PROBLEM
    assert "nobody" in (await r.json())["detail"]
    for query, field in (
        ("?from=yesterday", "from"),
        ("?to=2026-13-01", "to"),
        ("?from=2026-11-10T00:00:00Z&to=2026-11-10T00:00:00Z", "from"),  # empty range
        ("?from=2026-11-11T00:00:00Z&to=2026-11-10T00:00:00Z", "from"),  # backwards
        ("?from=2026-09-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from"),  # over 32 days
        ("?to=999999999999999", "to"),  # year 33658
        ("?from=0001-01-01T00:00:00Z", "from"),  # before 1970
        ("?from=9999-12-30T00:00:00Z", "from"),
    ):
        r = await _get(api, query)
        assert r.status == 400 and r.content_type == PROBLEM, (query, await r.text())
        assert (await r.json())["field"] == field, query


async def test_a_site_supervisor_sees_its_own_site_only(make_api: ApiFactory) -> None:
    """near-supervisor is scoped to pool `near`; `near2` is another site of the
    same vendor, whose figures it must not get (nor derive by difference)."""
    body = BODY.replace(
        '[queues.chat]\nchannel = "chat"\npools = ["inhouse", "near"]',
        '[pools.near2]\nkind = "outsourced"\nvendor = "near-co"\n\n'
        '[queues.chat]\nchannel = "chat"\npools = ["inhouse", "near", "near2"]',
    )
    api = await make_api(body)
    e = api.service.engines[api.tenant]
    api.clock.set_ms(T0)
    await e.upsert_agent(agent("m1", "near2", skills={}, capacity={"chat": 1}))
    await e.set_agent_status("m1", AgentStatus.AVAILABLE)
    r = await e.create_contact(NewContact(channel="chat", queue="chat"))
    assert r.agent == "m1"
    await e.accept(r.contact_id, "m1")
    await e.complete(r.contact_id, "m1", skip_wrap_up=True)
    await _traffic(api)  # one more, answered at the `near` site
    full = await _ok(api, who="admin")
    assert full["pools"] == ["near", "near2"] and full["volume"]["answered"] == 2
    site = await _ok(api, who="near-supervisor")
    assert site["pools"] == ["near"] and site["volume"]["answered"] == 1
    assert site["csat"] == 4.0
