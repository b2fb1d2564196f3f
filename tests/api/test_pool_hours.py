"""GET /v1/pools shows each site's own hours; a vendor pause and the hours compose
through the API as they do in the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .conftest import Api, ApiFactory

# sun-bpo runs a Manila site on the vendor's hours and a San José site (`near`) on its own.
BODY = """
[pools.inhouse]
kind = "inhouse"

[pools.manila]
kind = "outsourced"
vendor = "sun-bpo"

[pools.near]
kind = "outsourced"
vendor = "sun-bpo"
hours = "cr_day"

[vendors.sun-bpo]
location = "offshore"
timezone = "Asia/Manila"
hours = "office"

[calendars.office]
hours = { mon = ["08:00-18:00"], tue = ["08:00-18:00"] }

[calendars.cr_day]
timezone = "America/Costa_Rica"
hours = { mon = ["08:00-17:00"], tue = ["08:00-17:00"] }

[queues.chat]
channel = "chat"
pools = ["inhouse", "manila", "near"]
offer_timeout_s = 60

[queues.voice]
channel = "voice"
pools = ["inhouse"]

[queues.email]
channel = "email"
pools = ["inhouse"]
"""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


async def _pools(api: Api) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/v1/pools", headers=api.auth("supervisor"))
    assert r.status == 200, await r.text()
    return {p["id"]: p for p in (await r.json())["pools"]}


async def test_each_site_shows_its_own_hours(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    api.clock.set_ms(_ms("2026-11-23T10:00:00+08:00"))  # Monday 10:00 in Manila
    pools = await _pools(api)
    assert pools["manila"]["hours"] == {"calendar": "office", "timezone": "Asia/Manila"}
    assert pools["near"]["hours"] == {"calendar": "cr_day", "timezone": "America/Costa_Rica"}
    # Sunday 20:00 in San José: Manila works, San José does not
    assert pools["manila"]["open_now"] is True and pools["near"]["open_now"] is False
    api.clock.set_ms(_ms("2026-11-23T10:00:00-06:00"))  # Monday 10:00 in San José
    pools = await _pools(api)
    assert pools["manila"]["open_now"] is False and pools["near"]["open_now"] is True
    assert pools["inhouse"]["open_now"] is True


async def test_a_resume_outside_the_hours_keeps_the_site_closed(make_api: ApiFactory) -> None:
    api = await make_api(BODY)
    engine = api.service.engines[api.tenant]
    api.clock.set_ms(_ms("2026-11-23T10:00:00-06:00"))  # San José in hours
    await engine.run_due_timers()
    assert await engine.pool_is_open("near")
    r = await api.client.post("/v1/vendors/sun-bpo/pause", headers=api.auth("admin"))
    assert r.status == 200, await r.text()
    assert (await _pools(api))["near"]["open"] is False

    api.clock.set_ms(_ms("2026-11-23T18:00:00-06:00"))  # past 17:00 in San José
    await engine.run_due_timers()
    r = await api.client.post("/v1/vendors/sun-bpo/resume", headers=api.auth("admin"))
    assert r.status == 200, await r.text()
    assert not await engine.pool_is_open("near")  # the hours still hold it
    site = (await _pools(api))["near"]
    # `open`: no admin, pause or failure holds it; `open_now`: and within its hours
    assert site["open"] is True and site["open_now"] is False

    api.clock.set_ms(_ms("2026-11-24T08:00:00-06:00"))  # Tuesday morning
    await engine.run_due_timers()
    assert await engine.pool_is_open("near")
    assert (await _pools(api))["near"]["open_now"] is True
