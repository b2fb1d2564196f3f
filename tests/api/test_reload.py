"""Config reload: validated first, applied atomically, followed by every process,
and the contacts of a removed queue moved to the fallback."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from router.api.app import build_api
from router.engine import Engine
from router.errors import QueueNotFound
from router.model import NewContact

from ..factories import BASE_BODY
from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"
# a third chat queue that the reload removes; chat's fallback is the "chat" queue
WITH_SALES = BASE_BODY + '\n[queues.sales]\nchannel = "chat"\npools = ["near"]\n'


async def _reload(api: Api) -> tuple[int, dict[str, object]]:
    r = await api.client.post("/v1/admin/reload", headers=api.auth("admin"))
    return r.status, await r.json()


async def _contact(api: Api, queue: str) -> str:
    r = await api.client.post(
        "/v1/contacts", json={"channel": "chat", "queue": queue}, headers=api.auth("ingest")
    )
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def _followed(api: Api, version: int) -> None:
    for _ in range(200):
        if api.service.config_versions.get(api.tenant, 0) >= version:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the other process did not follow the reload")


async def test_removing_a_queue_moves_its_waiting_contacts_for_every_process(
    make_api: ApiFactory, redis: Redis, tmp_path: Path
) -> None:
    cfg = tmp_path / "sb.toml"
    one = await make_api(WITH_SALES, config_file=cfg)
    two = await make_api(share_with=one)
    waiting = [await _contact(two, "sales") for _ in range(3)]
    old_view = two.service.engines[two.tenant].tenant
    cfg.write_text(
        cfg.read_text().replace('[queues.sales]\nchannel = "chat"\npools = ["near"]', "")
    )
    status, body = await _reload(one)
    assert status == 200, body
    assert "sales" not in body["queues"] and body["version"] == 1
    for cid in waiting:
        r = await one.client.get(f"/v1/contacts/{cid}", headers=one.auth("supervisor"))
        c = await r.json()
        assert (c["queue"], c["state"], c["stage"]) == ("chat", "queued", 0)
    events = [f for _, f in await redis.xrange(f"sb:{{{one.tenant}}}:events")]
    moved = [f for f in events if f.get(b"reason") == b"queue_removed"]
    assert sorted(f[b"contact"].decode() for f in moved) == sorted(waiting)
    assert {f[b"from_queue"] for f in moved} == {b"sales"}
    # the other process follows: it no longer knows the queue...
    await _followed(two, 1)
    r = await two.client.post(
        "/v1/contacts", json={"channel": "chat", "queue": "sales"}, headers=two.auth("ingest")
    )
    assert r.status == 422 and "sales" in (await r.json())["detail"]
    # ...and Redis refuses it even to a process that has not caught up yet
    lagging = Engine(redis, old_view, one.clock)
    with pytest.raises(QueueNotFound, match="removed from the configuration"):
        await lagging.create_contact(NewContact(channel="chat", queue="sales"))


async def test_an_offered_contact_of_a_removed_queue_returns_to_the_fallback(
    make_api: ApiFactory, tmp_path: Path
) -> None:
    cfg = tmp_path / "sb.toml"
    api = await make_api(WITH_SALES, config_file=cfg)
    r = await api.client.put(
        "/v1/agents/n1",
        json={"pool": "near", "capacity": {"chat": 1}, "status": "available"},
        headers=api.auth("admin"),
    )
    assert r.status == 201
    cid = await _contact(api, "sales")
    c = await (await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))).json()
    assert (c["state"], c["agent"]) == ("reserved", "n1")
    cfg.write_text(
        cfg.read_text().replace('[queues.sales]\nchannel = "chat"\npools = ["near"]', "")
    )
    assert (await _reload(api))[0] == 200
    # still on offer; a reject sends it to the fallback, where n1 (near) may take chat
    r = await api.client.post(f"/v1/offers/{cid}/reject", headers=api.auth("agent"))
    assert r.status == 200, await r.text()
    c = await (await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("admin"))).json()
    assert c["queue"] == "chat" and c["state"] in ("queued", "reserved")


async def test_a_bad_config_changes_nothing(
    make_api: ApiFactory, redis: Redis, tmp_path: Path
) -> None:
    cfg = tmp_path / "sb.toml"
    api = await make_api(WITH_SALES, config_file=cfg)
    good = cfg.read_text()
    meta_before = await redis.hgetall(f"sb:{{{api.tenant}}}:meta")
    cases = {
        "offer_timeout_s = 30": (
            "offer_timeout_s = -1",
            "queues.chat.offer_timeout_s: must be > 0",
        ),
        "[queues.email]": ("[queues.email]\nbogus = 1", "queues.email.bogus: unknown key"),
    }
    for old, (new, message) in cases.items():
        cfg.write_text(good.replace(old, new, 1))
        status, body = await _reload(api)
        assert status == 422, body
        assert body["detail"].startswith(f"{cfg}: {message}"), body["detail"]
    # removing the only chat queues leaves chat contacts nowhere to go
    no_chat = good.replace('[queues.sales]\nchannel = "chat"\npools = ["near"]', "")
    no_chat = no_chat.replace('[queues.chat]\nchannel = "chat"', '[queues.chat]\nchannel = "email"')
    cfg.write_text(no_chat.replace('chat = "chat"', ""))
    status, body = await _reload(api)
    assert status == 422 and "queues.chat: removed" not in body["detail"], body
    assert "its chat contacts would have nowhere to go" in body["detail"]
    cfg.write_text("[tenant\n")
    status, body = await _reload(api)
    assert status == 422 and "invalid TOML" in body["detail"]
    assert await redis.hgetall(f"sb:{{{api.tenant}}}:meta") == meta_before
    assert not await redis.exists(f"sb:{{{api.tenant}}}:config")
    assert api.service.config_versions == {}
    # a tenant that is not in the file any more: needs a restart
    cfg.write_text(good.replace(f'id = "{api.tenant}"', 'id = "someone-else"'))
    status, body = await _reload(api)
    assert status == 422 and "needs a restart" in body["detail"]


async def test_only_an_admin_reloads(make_api: ApiFactory, tmp_path: Path) -> None:
    api = await make_api(config_file=tmp_path / "sb.toml")
    for who in ("supervisor", "ingest", "agent"):
        r = await api.client.post("/v1/admin/reload", headers=api.auth(who))
        assert r.status == 403 and r.content_type == PROBLEM
    no_file = await make_api()
    status, body = await _reload(no_file)
    assert status == 422 and "without a config file" in body["detail"]


async def test_reload_swaps_the_tokens(make_api: ApiFactory, tmp_path: Path) -> None:
    cfg = tmp_path / "sb.toml"
    api = await make_api(config_file=cfg)
    text = cfg.read_text()
    # drop the supervisor token
    sup = text.index(f'name = "{api.tenant}-supervisor"')
    block_start = text.rindex("[[tokens]]", 0, sup)
    block_end = text.index("[[tokens]]", sup)
    cfg.write_text(text[:block_start] + text[block_end:])
    assert (await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status == 200
    assert (await _reload(api))[0] == 200
    assert (await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status == 401


async def test_sighup_reloads_the_file(make_api: ApiFactory, tmp_path: Path) -> None:
    cfg = tmp_path / "sb.toml"
    api = await make_api(WITH_SALES, config_file=cfg)
    app = build_api(api.service, manage_service=False, reload_on_sighup=True)
    for hook in app.on_startup:
        await hook(app)
    try:
        cfg.write_text(
            cfg.read_text().replace('[queues.sales]\nchannel = "chat"\npools = ["near"]', "")
        )
        os.kill(os.getpid(), signal.SIGHUP)
        await _followed(api, 1)
        assert "sales" not in api.service.config.tenants[api.tenant].queues
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
