"""GET /v1/pools and GET /v1/vendors: contracts, open now in virtual time, live load
against the caps, pool scope, auth."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from router.api.app import build_api
from router.clock import VirtualClock
from router.config import load_config_text
from router.service import Service, ServiceOptions

from ..conftest import drop_tenant, new_tenant_id
from ..factories import BASE_BODY
from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"

# near-co works two shifts on weekdays in Costa Rica (UTC-6, no DST): 08-12 and 13-17.
CONTRACT = """[vendors.near-co]
name = "Near Co"
location = "nearshore"
timezone = "America/Costa_Rica"
hours = "near_shifts"
channels = ["voice", "chat"]
max_concurrent = 3
max_per_hour = 10
max_per_day = 50
min_per_day = 20
price_per_minute = 0.5
currency = "USD"
sla_target = "80%"
sla_threshold_s = 30
region = "latam"

[vendors.near-co.visibility]
email = "tokenize"
hide = ["iban"]

[calendars.near_shifts]
hours = { mon = ["08:00-12:00", "13:00-17:00"], tue = ["08:00-12:00", "13:00-17:00"], wed = ["08:00-12:00", "13:00-17:00"], thu = ["08:00-12:00", "13:00-17:00"], fri = ["08:00-12:00", "13:00-17:00"] }
"""
BODY = BASE_BODY.replace('[vendors.near-co]\nname = "Near Co"\nlocation = "nearshore"\n', CONTRACT)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


MONDAY_10_CR = _ms("2026-11-23T10:00:00-06:00")  # in the morning shift
MONDAY_LUNCH_CR = _ms("2026-11-23T12:30:00-06:00")  # between the two shifts
SATURDAY_CR = _ms("2026-11-28T10:00:00-06:00")


async def _get(api: Api, path: str, who: str = "supervisor") -> dict[str, Any]:
    r = await api.client.get(path, headers=api.auth(who))
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def _pools(api: Api, who: str = "supervisor") -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in (await _get(api, "/v1/pools", who))["pools"]}


async def _near_agents(api: Api, n: int) -> None:
    for i in range(n):
        r = await api.client.put(
            f"/v1/agents/n{i}",
            json={"pool": "near", "capacity": {"chat": 2}, "status": "available"},
            headers=api.auth("admin"),
        )
        assert r.status == 201, await r.text()


async def _chat(api: Api) -> dict[str, Any]:
    r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest"))
    assert r.status == 201, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def test_both_need_a_supervisor_or_admin_token(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    for path in ("/v1/pools", "/v1/vendors"):
        r = await api.client.get(path)
        assert r.status == 401 and r.content_type == PROBLEM
        r = await api.client.get(path, headers={"Authorization": "Bearer nope"})
        assert r.status == 401 and r.content_type == PROBLEM
        for name in ("agent", "ingest", "a1"):
            r = await api.client.get(path, headers=api.auth(name))
            assert r.status == 403 and r.content_type == PROBLEM, (path, name)
        for name in ("supervisor", "admin", "near-supervisor"):
            r = await api.client.get(path, headers=api.auth(name))
            assert r.status == 200, (path, name)


async def test_pools_show_kind_vendor_location_and_hours(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    api.clock.set_ms(MONDAY_10_CR)
    pools = await _pools(api)
    assert list(pools) == ["inhouse", "near", "off"]
    assert pools["inhouse"] == {
        "id": "inhouse",
        "name": "inhouse",
        "kind": "inhouse",
        "vendor": None,
        "location": None,
        "open": True,
        "hours": {"calendar": None, "timezone": "UTC"},
        "open_now": True,
        "load": {
            "concurrent": {"value": 0, "cap": None},
            "this_hour": {"value": 0, "cap": None},
            "today": {"value": 0, "cap": None},
        },
    }
    near = pools["near"]
    assert (near["kind"], near["vendor"], near["location"]) == (
        "outsourced",
        "near-co",
        "nearshore",
    )
    assert near["hours"] == {"calendar": "near_shifts", "timezone": "America/Costa_Rica"}
    assert near["open_now"] is True
    assert [near["load"][k]["cap"] for k in ("concurrent", "this_hour", "today")] == [3, 10, 50]
    off = pools["off"]  # a vendor without hours or caps: always open, uncapped
    assert off["hours"] == {"calendar": None, "timezone": "UTC"} and off["open_now"] is True
    assert off["load"]["concurrent"] == {"value": 0, "cap": None}


async def test_open_now_follows_the_vendor_shifts_and_the_pool_gate(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    api.clock.set_ms(MONDAY_10_CR - 3 * 3_600_000)  # 07:00 in Costa Rica: not yet
    assert (await _pools(api))["near"]["open_now"] is False
    api.clock.set_ms(MONDAY_10_CR)
    assert (await _pools(api))["near"]["open_now"] is True
    api.clock.set_ms(MONDAY_LUNCH_CR)  # the split shift's break
    pools = await _pools(api)
    assert pools["near"]["open_now"] is False and pools["near"]["open"] is True
    assert pools["inhouse"]["open_now"] is True  # in-house has no vendor hours
    vendors = (await _get(api, "/v1/vendors"))["vendors"]
    assert [v["open_now"] for v in vendors] == [False, True]
    api.clock.set_ms(SATURDAY_CR)
    assert (await _pools(api))["near"]["open_now"] is False

    # in hours, but the gate is closed: not open now
    api.clock.set_ms(SATURDAY_CR + 2 * 86_400_000)  # Monday again
    await api.service.engines[api.tenant].set_pool_open("near", False)
    pools = await _pools(api)
    assert pools["near"]["open"] is False and pools["near"]["open_now"] is False


async def test_load_counts_held_contacts_and_answers_beside_the_caps(
    make_api: ApiFactory,
) -> None:
    api = await make_api(BODY)
    api.clock.set_ms(MONDAY_10_CR + 5 * 60_000)
    # the gate follows the hours on the timer loop's next tick: take it now
    await api.service.engines[api.tenant].run_due_timers()
    await _near_agents(api, 2)
    first, second = await _chat(api), await _chat(api)  # offered to the near agents
    assert first["state"] == second["state"] == "reserved", (first, second)
    r = await api.client.post(f"/v1/offers/{first['id']}/accept", headers=api.auth("agent"))
    assert r.status == 200, await r.text()

    near = await _near_until(api, 1)
    assert near["load"] == {
        "concurrent": {"value": 2, "cap": 3},  # one reserved, one assigned
        "this_hour": {"value": 1, "cap": 10},
        "today": {"value": 1, "cap": 50},
    }
    assert (await _pools(api))["inhouse"]["load"]["concurrent"]["value"] == 0
    r = await api.client.post(f"/v1/offers/{second['id']}/accept", headers=api.auth("agent"))
    assert r.status == 200, await r.text()
    assert (await _near_until(api, 2))["load"]["concurrent"]["value"] == 2

    # the next hour (Costa Rica time) starts a new count; the day goes on
    api.clock.set_ms(_ms("2026-11-23T11:00:00-06:00"))
    near = (await _pools(api))["near"]
    assert near["load"]["this_hour"]["value"] == 0 and near["load"]["today"]["value"] == 2
    vendor = (await _get(api, "/v1/vendors"))["vendors"][0]
    assert vendor["id"] == "near-co" and vendor["load"] == near["load"]

    # completing a contact ends its concurrency (chat has no wrap-up here)
    r = await api.client.post(f"/v1/contacts/{first['id']}/complete", headers=api.auth("agent"))
    assert r.status == 200, await r.text()
    assert (await _pools(api))["near"]["load"]["concurrent"]["value"] == 1

    # a new Costa Rica day: today starts again at 0
    api.clock.set_ms(_ms("2026-11-24T00:05:00-06:00"))
    assert (await _pools(api))["near"]["load"]["today"]["value"] == 0


async def _near_until(api: Api, answered: int) -> dict[str, Any]:
    """The near pool once the metrics consumer (every 0.1 s) counted `answered`."""
    deadline = time.monotonic() + 10
    while True:
        near = (await _pools(api))["near"]
        if near["load"]["this_hour"]["value"] == answered or time.monotonic() > deadline:
            return near
        await asyncio.sleep(0.05)


async def test_vendors_list_contracts_and_pools(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    api.clock.set_ms(MONDAY_10_CR)
    vendors = (await _get(api, "/v1/vendors", "admin"))["vendors"]
    assert [v["id"] for v in vendors] == ["near-co", "off-co"]
    near, off = vendors
    zero = {"value": 0, "cap": None}
    assert near == {
        "id": "near-co",
        "name": "Near Co",
        "location": "nearshore",
        "timezone": "America/Costa_Rica",
        "hours": "near_shifts",
        "open_now": True,
        "channels": ["voice", "chat"],
        "queues": None,
        "caps": {"max_concurrent": 3, "max_per_hour": 10, "max_per_day": 50},
        "commitment": {"min_per_day": 20, "min_per_month": None},
        "price": {"amount": 0.5, "unit": "minute", "currency": "USD"},
        "sla": {"target": 0.8, "threshold_s": 30.0},
        "region": "latam",
        "visibility": {"email": "tokenize", "phone": "mask", "hide": ["iban"]},
        "pools": ["near"],
        "load": {
            "concurrent": {"value": 0, "cap": 3},
            "this_hour": {"value": 0, "cap": 10},
            "today": {"value": 0, "cap": 50},
        },
    }
    assert off["price"] is None and off["sla"] == {"target": None, "threshold_s": None}
    assert off["visibility"] == {"email": "mask", "phone": "mask", "hide": []}
    assert off["load"] == {"concurrent": zero, "this_hour": zero, "today": zero}
    assert off["pools"] == ["off"] and off["hours"] is None


async def test_a_pool_scoped_token_sees_its_pool_and_its_vendor_only(
    make_api: ApiFactory,
) -> None:
    api = await make_api(BODY)
    assert list(await _pools(api, "near-supervisor")) == ["near"]
    vendors = (await _get(api, "/v1/vendors", "near-supervisor"))["vendors"]
    assert [(v["id"], v["pools"]) for v in vendors] == [("near-co", ["near"])]
    assert len((await _get(api, "/v1/vendors"))["vendors"]) == 2


async def test_msgpack_is_served_too(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    r = await api.client.get(
        "/v1/pools", headers={**api.auth("supervisor"), "Accept": "application/msgpack"}
    )
    assert r.status == 200 and r.content_type == "application/msgpack"


async def test_the_demo_vendor_token_sees_the_offshore_pool_only(
    redis_url: str, redis: Redis
) -> None:
    """config/demo.toml as shipped (under a fresh tenant id): `demo-vendor-offshore`
    is Manila Connect's supervisor."""
    demo = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
    tid = new_tenant_id()
    text = demo.read_text().replace('id = "demo"', f'id = "{tid}"', 1)
    config = load_config_text(text, str(demo))
    clock = VirtualClock(_ms("2026-11-24T03:00:00+08:00"))  # Tuesday 03:00 in Manila
    service = Service(config, ServiceOptions(redis_url=redis_url), clock)
    client = TestClient(TestServer(build_api(service)))
    await client.start_server()
    try:
        auth = {"Authorization": "Bearer demo-vendor-offshore"}
        r = await client.get("/v1/pools", headers=auth)
        assert r.status == 200, await r.text()
        (pool,) = (await r.json())["pools"]
        assert (pool["id"], pool["vendor"], pool["location"]) == (
            "offshore",
            "manila-connect",
            "offshore",
        )
        assert pool["hours"] == {"calendar": "manila_shifts", "timezone": "Asia/Manila"}
        assert pool["open_now"] is True  # Manila works around the clock
        assert pool["load"]["concurrent"] == {"value": 0, "cap": 60}
        r = await client.get("/v1/vendors", headers=auth)
        (vendor,) = (await r.json())["vendors"]
        assert vendor["id"] == "manila-connect" and vendor["pools"] == ["offshore"]
        assert vendor["visibility"]["email"] == "tokenize"
        r = await client.get("/v1/metrics", headers=auth)
        assert set((await r.json())["pools"]) == {"offshore"}
        r = await client.put("/v1/agents/x", json={"pool": "offshore"}, headers=auth)
        assert r.status == 403  # a supervisor, not an admin

        # the admin sees both vendors; Costa Contact's shifts end at 22:00 local
        admin = {"Authorization": "Bearer demo-admin"}
        r = await client.get("/v1/vendors", headers=admin)
        by_id = {x["id"]: x for x in (await r.json())["vendors"]}
        assert set(by_id) == {"costa-contact", "manila-connect"}
        assert by_id["costa-contact"]["open_now"] is True  # Monday 13:00 in Costa Rica
        clock.set_ms(_ms("2026-11-24T22:30:00-06:00"))  # Tuesday 22:30 in Costa Rica
        r = await client.get("/v1/vendors", headers=admin)
        by_id = {x["id"]: x for x in (await r.json())["vendors"]}
        assert by_id["costa-contact"]["open_now"] is False
        assert by_id["manila-connect"]["open_now"] is True
    finally:
        await client.close()
        await drop_tenant(redis, tid)


async def test_a_site_supervisor_gets_its_own_sites_load_only(make_api: ApiFactory) -> None:
    """near2 is another site of near-co: its held contacts must not show in the
    vendor load a supervisor scoped to `near` reads."""
    body = BODY.replace(
        '[queues.chat]\nchannel = "chat"\npools = ["inhouse", "near"]',
        '[pools.near2]\nkind = "outsourced"\nvendor = "near-co"\n\n'
        '[queues.chat]\nchannel = "chat"\npools = ["inhouse", "near2"]',
    )
    api = await make_api(body)
    api.clock.set_ms(MONDAY_10_CR)
    await api.service.engines[api.tenant].run_due_timers()
    r = await api.client.put(
        "/v1/agents/m1",
        json={"pool": "near2", "capacity": {"chat": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status == 201, await r.text()
    assert (await _chat(api))["state"] == "reserved"
    admin = (await _get(api, "/v1/vendors", "admin"))["vendors"][0]
    assert admin["pools"] == ["near", "near2"] and admin["load"]["concurrent"]["value"] == 1
    site = (await _get(api, "/v1/vendors", "near-supervisor"))["vendors"][0]
    assert site["pools"] == ["near"] and site["load"]["concurrent"]["value"] == 0
