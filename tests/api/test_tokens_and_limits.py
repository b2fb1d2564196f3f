"""Agent tokens issued by an admin, and per-token rate limits across processes."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from redis.asyncio import Redis

from .conftest import Api, ApiFactory

PROBLEM = "application/problem+json"
SLOW = "[limits]\nrequests_per_s = 1\nburst = 2\n"


async def _agent(api: Api, aid: str, pool: str = "inhouse") -> None:
    r = await api.client.put(
        f"/v1/agents/{aid}",
        json={"pool": pool, "skills": {"billing": 3}, "capacity": {"chat": 2}},
        headers=api.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()


def api_token_id(api: Api, name: str) -> str:
    """The rate bucket id of one of the test tenant's config tokens."""
    return hashlib.sha256(f"{api.tenant}-{name}".encode()).hexdigest()[:16]


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_an_issued_token_acts_for_its_agent_alone(make_api: ApiFactory, redis: Redis) -> None:
    api = await make_api()
    await _agent(api, "a7")
    await _agent(api, "a8")
    r = await api.client.post("/v1/agents/a7/token", headers=api.auth("admin"))
    assert r.status == 201, await r.text()
    body = await r.json()
    tok = body["token"]
    assert tok.startswith(f"sb1.{api.tenant}.") and body["agent"] == "a7"
    # only the digest is stored, never the token
    stored = await redis.hgetall(f"sb:{{{api.tenant}}}:tokens")
    assert len(stored) == 1 and tok.encode() not in stored and b"a7" in stored.values()
    assert (await api.client.get("/v1/agents/a7", headers=_bearer(tok))).status == 200
    r = await api.client.post(
        "/v1/agents/a7/status", json={"status": "available"}, headers=_bearer(tok)
    )
    assert r.status == 200 and (await r.json())["status"] == "available"
    for method, path in (("GET", "/v1/agents/a8"), ("POST", "/v1/agents/a8/heartbeat")):
        r = await api.client.request(method, path, headers=_bearer(tok))
        assert r.status == 403, (path, await r.text())
    # an agent token holds no other role
    r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=_bearer(tok))
    assert r.status == 403
    # the issue is audited in the event stream, without the token
    events = await redis.xrange(f"sb:{{{api.tenant}}}:events")
    issued = [f for _, f in events if f[b"type"] == b"agent.token_issued"]
    assert len(issued) == 1 and issued[0][b"agent"] == b"a7"
    assert all(tok.encode() not in v for v in issued[0].values())


async def test_revoked_and_forged_tokens_get_401(make_api: ApiFactory) -> None:
    api = await make_api()
    other = await make_api()
    await _agent(api, "a7")
    await _agent(other, "a7")
    tok = (await (await api.client.post("/v1/agents/a7/token", headers=api.auth("admin"))).json())[
        "token"
    ]
    secret = tok.rsplit(".", 1)[1]
    forged = [
        f"sb1.{other.tenant}.{secret}",  # another tenant's prefix: not its digest
        f"sb1.{api.tenant}.x{secret}",
        f"sb1.{api.tenant}.",
        "sb1.no{such}.x",
    ]
    for bad in forged:
        r = await other.client.get("/v1/agents/a7", headers=_bearer(bad))
        assert r.status == 401 and r.content_type == PROBLEM, bad
        r = await api.client.get("/v1/agents/a7", headers=_bearer(bad))
        assert r.status == 401, bad
    r = await api.client.delete("/v1/agents/a7/token", headers=api.auth("admin"))
    assert r.status == 200
    assert (await api.client.get("/v1/agents/a7", headers=_bearer(tok))).status == 401


async def test_only_an_admin_issues_tokens_and_only_for_an_agent(make_api: ApiFactory) -> None:
    api = await make_api()
    await _agent(api, "a7")
    for who in ("agent", "a1", "supervisor", "ingest"):
        r = await api.client.post("/v1/agents/a7/token", headers=api.auth(who))
        assert r.status == 403, who
    r = await api.client.post("/v1/agents/ghost/token", headers=api.auth("admin"))
    assert r.status == 404 and r.content_type == PROBLEM
    r = await api.client.post("/v1/agents/a7/token", json={"x": 1}, headers=api.auth("admin"))
    assert r.status == 422


async def test_a_token_over_its_rate_gets_429_with_retry_after(make_api: ApiFactory) -> None:
    api = await make_api(extra=SLOW)
    codes = [(await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status]
    codes += [(await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status]
    r = await api.client.get("/v1/queues", headers=api.auth("supervisor"))
    assert codes == [200, 200] and r.status == 429 and r.content_type == PROBLEM
    assert r.headers["Retry-After"] == "1"
    assert "1 requests per second" in (await r.json())["detail"]
    # other tokens have their own buckets
    assert (await api.client.get("/v1/queues", headers=api.auth("admin"))).status == 200
    # the bucket refills with the engine's clock
    api.clock.advance(1.0)
    assert (await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status == 200
    assert (await api.client.get("/v1/queues", headers=api.auth("supervisor"))).status == 429


async def test_the_limit_holds_across_processes(make_api: ApiFactory, tmp_path: Path) -> None:
    one = await make_api(extra=SLOW, config_file=tmp_path / "sb.toml")
    two = await make_api(share_with=one)
    assert (await one.client.get("/v1/queues", headers=one.auth("supervisor"))).status == 200
    assert (await two.client.get("/v1/queues", headers=two.auth("supervisor"))).status == 200
    # the burst of 2 is spent, whichever process serves the next request
    assert (await one.client.get("/v1/queues", headers=one.auth("supervisor"))).status == 429
    assert (await two.client.get("/v1/queues", headers=two.auth("supervisor"))).status == 429


async def test_concurrent_requests_share_one_lease_instead_of_draining_the_bucket(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await make_api(extra="[limits]\nrequests_per_s = 100\nburst = 200\n")
    rs = await asyncio.gather(
        *(api.client.get("/v1/queues", headers=api.auth("supervisor")) for _ in range(64))
    )
    assert [r.status for r in rs] == [200] * 64
    # 64 requests took about 64 from the bucket (leases of 5), not 64 leases' worth
    left = float(
        (await redis.hget(f"sb:{{{api.tenant}}}:rl:" + api_token_id(api, "supervisor"), "tokens"))
        or 0
    )
    assert 200 - 64 - 5 <= left <= 200 - 64
