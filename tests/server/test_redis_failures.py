"""When Redis fails: outages, restarts, SIGKILL with AOF, and stalls (SIGSTOP).

Each test runs its OWN valkey-server (the embedded binary, a free port, its own
directory), so it can kill, stop and restart it without touching the session's
server. The API runs in-process on a Service pointed at that server, with a
virtual clock so offer deadlines can be passed on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    CrossSlotTransactionError,
    MasterDownError,
    MaxConnectionsError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router.api.app import build_api
from router.api.problems import problems_middleware
from router.clock import VirtualClock
from router.config import load_config_text
from router.keys import TenantKeys
from router.server.embedded import AppendFsync, EmbeddedValkey
from router.service import Service, ServiceOptions
from router.store.connection import connect
from router.store.outage import DEFAULT_SOCKET_TIMEOUT_S, not_yet_run, unavailable
from router.streams import StreamConsumer

from ..api.conftest import api_toml, token
from ..conftest import new_tenant_id
from ..invariants import assert_invariants

PROBLEM = "application/problem+json"
# a request to a stalled or dead server must be answered within this
BOUND_S = DEFAULT_SOCKET_TIMEOUT_S + 1.5


@dataclass
class Rig:
    server: EmbeddedValkey
    client: TestClient
    service: Service
    tenant: str
    clock: VirtualClock

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.tenant, name)}"}

    async def kill(self) -> None:
        await asyncio.to_thread(self.server.kill)

    async def restart(self) -> None:
        await asyncio.to_thread(self.server.start)


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, appendfsync: AppendFsync = "everysec", extra: dict[str, str] | None = None
) -> AsyncIterator[Rig]:
    """An own valkey-server and an API served on it, for one test."""
    server = EmbeddedValkey(tmp_path / "valkey", appendfsync=appendfsync, extra_config=extra)
    await asyncio.to_thread(server.start)
    tid, clock = new_tenant_id(), VirtualClock()
    config = load_config_text(api_toml(tid), "<test>")
    service = Service(config, ServiceOptions(redis_url=server.url), clock)
    client = TestClient(TestServer(build_api(service)))
    try:
        await client.start_server()
        yield Rig(server, client, service, tid, clock)
    finally:
        pid = server.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped server could not shut down
        if not server.is_running():
            await asyncio.to_thread(server.start)  # so that the service stops cleanly
        await client.close()
        await asyncio.to_thread(server.stop)


async def _agent(rig: Rig, aid: str) -> None:
    r = await rig.client.put(
        f"/v1/agents/{aid}",
        json={
            "name": aid,
            "pool": "inhouse",
            "skills": {"billing": 3},
            "capacity": {"voice": 1, "chat": 4},
            "status": "available",
        },
        headers=rig.auth("admin"),
    )
    assert r.status in (200, 201), await r.text()


async def _until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


async def _unavailable(rig: Rig, method: str, path: str, who: str, **kw: Any) -> dict[str, Any]:
    """The request gets a 503 data-store problem with Retry-After, within BOUND_S."""
    started = time.monotonic()
    r = await asyncio.wait_for(
        rig.client.request(method, path, headers=rig.auth(who), **kw), timeout=30
    )
    elapsed = time.monotonic() - started
    body = await r.json(content_type=None)
    assert r.status == 503, (method, path, r.status, body)
    assert r.content_type == PROBLEM
    assert int(r.headers["Retry-After"]) >= 1
    assert body["title"] == "data store unavailable" and "data store" in body["detail"]
    assert body["code"] == "data_store_unavailable"
    assert elapsed < BOUND_S, f"{method} {path} took {elapsed:.1f}s"
    return dict(body)


async def _events(redis: Redis, tenant: str, kind: str) -> list[dict[str, str]]:
    out = []
    for _, fields in await redis.xrange(TenantKeys(tenant).events):
        ev = {k.decode(): v.decode() for k, v in fields.items()}
        if ev.get("type") == kind:
            out.append(ev)
    return out


# -- classification: every way Redis can be unavailable is a 503 ----------------


@pytest.mark.parametrize(
    "exc",
    [
        RedisConnectionError("Connection closed by server."),
        RedisTimeoutError("Timeout reading from 127.0.0.1:6379"),
        BusyLoadingError("Valkey is loading the dataset in memory"),
        MaxConnectionsError("Too many connections"),
        ClusterDownError("The cluster is down"),
        MasterDownError("Link with MASTER is down"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ReadOnlyError("You can't write against a read only replica."),
        RedisClusterException("Redis Cluster cannot be connected. Please provide at least one"),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        AuthenticationError("invalid username-password pair"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_every_unavailability_error_is_a_503_problem(exc: Exception) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[problems_middleware])
    app.router.add_get("/x", handler)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/x")
        body = await r.json(content_type=None)
    assert r.status == 503 and r.content_type == PROBLEM, body
    assert r.headers["Retry-After"] in ("1", "5")
    assert body["title"] == "data store unavailable" and body["detail"].startswith("the data store")


@pytest.mark.parametrize(
    "exc",
    [
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        CrossSlotTransactionError("keys in different slots"),
        KeyError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_bugs_are_not_outages(exc: Exception) -> None:
    assert unavailable(exc) is None

    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[problems_middleware])
    app.router.add_get("/x", handler)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/x")
    assert r.status == 500


async def test_connecting_is_retried_with_backoff_but_a_sent_command_is_not(
    tmp_path: Path,
) -> None:
    """Refused connections are retried (0.1 + 0.2 + 0.4 s of backoff) before the
    error; a command whose reply timed out is not re-sent."""
    server = EmbeddedValkey(tmp_path / "valkey")
    await asyncio.to_thread(server.start)
    try:
        r = await connect(server.url + "?socket_timeout=0.5")
        await r.set("k", 0)
        await asyncio.to_thread(server.kill)
        started = time.monotonic()
        with pytest.raises(RedisConnectionError) as refused:
            await r.get("k")
        assert not_yet_run(refused.value)
        assert 0.6 < time.monotonic() - started < BOUND_S  # backed off, then gave up
        await asyncio.to_thread(server.start)
        assert await r.incr("k") == 1  # reconnected by itself
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError) as timed_out:
                await r.incr("k")
            assert 0.4 < time.monotonic() - started < 1.4  # one socket timeout, no retry
            assert not not_yet_run(timed_out.value)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # the timed-out INCR did reach the server: re-sending it would have made 3
        assert await _until("the stalled INCR", lambda: _get_int(r, "k")) == 2
        await r.aclose()
    finally:
        await asyncio.to_thread(server.stop)


async def _get_int(r: Redis, key: str) -> int:
    return int(await r.get(key) or 0)


# -- an outage and a restart --------------------------------------------------


@pytest.mark.slow
async def test_api_answers_503_while_redis_is_down_and_resumes_after_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with rig(tmp_path) as api:
        await _agent(api, "a1")
        r = await api.client.post(
            "/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest")
        )
        assert r.status == 201
        first = await r.json()
        assert first["agent"] == "a1"

        await api.kill()
        await _unavailable(api, "POST", "/v1/contacts", "ingest", json={"channel": "voice"})
        await _unavailable(api, "PUT", "/v1/agents/a2", "admin", json={"pool": "inhouse"})
        await _unavailable(api, "GET", "/v1/agents/a1/offers", "a1")
        await _unavailable(api, "GET", "/v1/agents/a1/offers?wait=5", "a1")
        await _unavailable(api, "POST", f"/v1/offers/{first['id']}/accept", "a1", json={})
        await _unavailable(api, "GET", f"/v1/contacts/{first['id']}", "supervisor")
        await _unavailable(api, "GET", "/v1/queues", "supervisor")
        r = await api.client.get("/readyz")
        assert r.status == 503 and r.content_type == PROBLEM
        assert (await api.client.get("/healthz")).status == 200  # the process is alive
        await asyncio.sleep(1.0)  # the background loops meet the outage too

        await api.restart()  # from the AOF; the script cache is empty now
        probe = Redis.from_url(api.server.url)
        sha = api.service.engines[api.tenant].scripts.sha("create_contact")
        assert await probe.script_exists(sha) == [False]
        await _agent(api, "a2")
        wakeups = api.service.wakeups
        assert wakeups is not None
        await asyncio.wait_for(wakeups.ready.wait(), timeout=10)  # subscribed again
        poll = asyncio.create_task(
            api.client.get("/v1/agents/a2/offers?wait=10", headers=api.auth("agent"))
        )
        await asyncio.sleep(0.2)
        r = await api.client.post(
            "/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest")
        )
        assert r.status == 201, await r.text()  # NOSCRIPT: loaded again, sent again
        second = await r.json()
        assert second["agent"] == "a2"  # routing resumed (a1 holds the first contact)
        started = time.monotonic()
        offers = (await (await asyncio.wait_for(poll, timeout=10)).json())["offers"]
        assert [o["id"] for o in offers] == [second["id"]]
        assert time.monotonic() - started < 2  # woken by the wake-up listener, not timed out
        assert await probe.script_exists(sha) == [True]
        r = await api.client.post(f"/v1/offers/{first['id']}/accept", headers=api.auth("a1"))
        assert r.status == 200  # the contact acknowledged before the crash survived it
        r = await api.client.get("/readyz")
        assert r.status == 200

        # the timer loop is alive again: the second offer (15 s) expires on time
        api.clock.advance(16)
        expired = await _until(
            "the timer loop to expire the offer",
            lambda: _events(probe, api.tenant, "contact.reservation_expired"),
        )
        assert [e["contact"] for e in expired] == [second["id"]]
        await assert_invariants(probe, api.service.engines[api.tenant].tenant)
        await probe.aclose()

    # each background loop logged the outage once (and once more when it ended)
    for name in ("timer loop", "metrics loop"):
        down = [
            r for r in caplog.records if r.getMessage().startswith(f"{name}: redis unavailable")
        ]
        assert len(down) == 1, [r.getMessage() for r in down]
    assert any(r.getMessage().startswith("timer loop: redis is back") for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]


# -- SIGKILL mid-traffic, restart from the AOF --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
async def test_sigkill_mid_traffic_loses_no_acknowledged_contact(
    tmp_path: Path, appendfsync: AppendFsync
) -> None:
    async with rig(tmp_path, appendfsync) as api:
        for i in range(4):
            await _agent(api, f"a{i}")
        acked: list[str] = []  # contacts that got a 201
        accepted: list[str] = []  # offers whose accept got a 200
        completed: list[str] = []  # contacts whose complete got a 200
        killed = asyncio.Event()
        refused = 0

        async def ingest(n: int) -> None:
            nonlocal refused
            i = 0
            while True:
                i += 1
                r = await api.client.post(
                    "/v1/contacts",
                    json={"channel": "chat"},
                    headers={**api.auth("ingest"), "Idempotency-Key": f"w{n}-{i}"},
                )
                if r.status == 201:
                    acked.append((await r.json())["id"])
                else:
                    assert r.status == 503, await r.text()  # never a 500
                    refused += 1
                    if killed.is_set():
                        return

        async def work(aid: str) -> None:
            while not killed.is_set():
                r = await api.client.get(f"/v1/agents/{aid}/offers", headers=api.auth("agent"))
                if r.status != 200:
                    assert r.status == 503
                    return
                for offer in (await r.json())["offers"]:
                    r = await api.client.post(
                        f"/v1/offers/{offer['id']}/accept", headers=api.auth("agent")
                    )
                    assert r.status in (200, 409, 503), await r.text()
                    if r.status != 200:
                        continue
                    accepted.append(offer["id"])
                    r = await api.client.post(
                        f"/v1/contacts/{offer['id']}/complete", headers=api.auth("agent")
                    )
                    assert r.status in (200, 503), await r.text()
                    if r.status == 200:
                        completed.append(offer["id"])
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(ingest(n)) for n in range(8)]
        tasks += [asyncio.create_task(work(f"a{i}")) for i in range(4)]
        started = time.monotonic()
        await asyncio.sleep(1.5)
        await api.kill()  # SIGKILL: no shutdown, no last fsync
        elapsed = time.monotonic() - started
        killed.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
        await api.restart()

        probe = Redis.from_url(api.server.url)
        k = TenantKeys(api.tenant)
        pipe = probe.pipeline(transaction=False)
        for cid in acked:
            pipe.hget(k.contact(cid), "state")
        states = dict(zip(acked, await pipe.execute(), strict=True))
        lost = [cid for cid, state in states.items() if state is None]
        unaccepted = [cid for cid in accepted if states.get(cid) in (None, b"queued", b"reserved")]
        uncompleted = [cid for cid in completed if states.get(cid) != b"completed"]
        rate = len(acked) / elapsed
        print(
            f"\nappendfsync={appendfsync}: {len(acked)} contacts acknowledged in "
            f"{elapsed:.1f}s ({rate:.0f}/s), {len(accepted)} accepts, {len(completed)} completions, lost after SIGKILL: "
            f"{len(lost)} contacts, {len(unaccepted)} accepts, {len(uncompleted)} completions"
        )
        assert len(acked) > 50 and refused >= 8
        # a process crash loses nothing even with everysec: Valkey writes the AOF
        # before it replies, and the kernel keeps what was written
        assert lost == [] and unaccepted == [] and uncompleted == []
        assert len(completed) > 10
        await assert_invariants(probe, api.service.engines[api.tenant].tenant)
        await probe.aclose()


# -- a stalled server (SIGSTOP, then SIGCONT) ----------------------------------


@pytest.mark.slow
async def test_a_stalled_redis_times_out_cleanly_and_expires_offers_after(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as api:
        await _agent(api, "a1")
        await _agent(api, "a2")
        r = await api.client.post(
            "/v1/contacts", json={"channel": "voice"}, headers=api.auth("ingest")
        )
        contact = await r.json()
        first_agent = contact["agent"]
        assert contact["state"] == "reserved" and first_agent in ("a1", "a2")
        assert api.server.pid is not None

        os.kill(api.server.pid, signal.SIGSTOP)
        try:
            await _unavailable(api, "GET", f"/v1/contacts/{contact['id']}", "supervisor")
            await _unavailable(api, "GET", "/v1/agents/a1/offers", "a1")
            await _unavailable(api, "GET", "/v1/queues", "supervisor")
            api.clock.advance(20)  # the offer's 15 s deadline passes during the stall
            await asyncio.sleep(0.5)
        finally:
            os.kill(api.server.pid, signal.SIGCONT)

        probe = Redis.from_url(api.server.url)
        expired = await _until(
            "the offer to expire after the stall",
            lambda: _events(probe, api.tenant, "contact.reservation_expired"),
        )
        assert [e["contact"] for e in expired] == [contact["id"]]
        assert expired[0]["agent"] == first_agent
        # requeued and offered to the other agent, exactly once
        reserved = await _until(
            "the re-offer",
            lambda: _reoffers(probe, api.tenant, contact["id"]),
        )
        other = "a2" if first_agent == "a1" else "a1"
        assert [e["agent"] for e in reserved] == [first_agent, other]
        r = await api.client.get(f"/v1/contacts/{contact['id']}", headers=api.auth("supervisor"))
        assert r.status == 200 and (await r.json())["agent"] == other
        await assert_invariants(probe, api.service.engines[api.tenant].tenant)
        await probe.aclose()


async def _reoffers(redis: Redis, tenant: str, cid: str) -> list[dict[str, str]]:
    reserved = [e for e in await _events(redis, tenant, "contact.reserved") if e["contact"] == cid]
    return reserved if len(reserved) >= 2 else []


# -- a restart that takes a while to load the AOF -------------------------------


@pytest.mark.slow
async def test_while_the_aof_loads_the_api_answers_503_and_readyz_is_not_ready(
    tmp_path: Path,
) -> None:
    # every key of the AOF's base takes 250 us to load: about 2 s for 8,000 keys
    slow = {"key-load-delay": "250", "loading-process-events-interval-bytes": "1024"}
    async with rig(tmp_path, extra=slow) as api:
        await _agent(api, "a1")
        r = await api.client.post(
            "/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest")
        )
        assert r.status == 201
        cid = (await r.json())["id"]
        filler = Redis.from_url(api.server.url)
        for start in range(0, 8000, 1000):
            await filler.mset({f"filler:{i}": "x" for i in range(start, start + 1000)})
        await filler.bgrewriteaof()  # the keys go to the AOF's RDB base, loaded slowly
        await _until(
            "the AOF rewrite",
            lambda: _rewritten(filler),
        )
        await filler.aclose()
        await api.kill()

        restarting = asyncio.create_task(api.restart())
        seen: list[str] = []
        ready_codes: set[int] = set()
        while not restarting.done():
            r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
            body = await r.json(content_type=None)
            assert r.status in (200, 503), body
            if r.status == 503:
                assert r.headers["Retry-After"] == "1"
                seen.append(body["detail"])
            ready_codes.add((await api.client.get("/readyz")).status)
            await asyncio.sleep(0.05)
        await restarting
        assert any("loading its data" in d for d in seen), seen
        assert 503 in ready_codes
        r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
        assert r.status == 200
        assert (await api.client.get("/readyz")).status == 200


async def _rewritten(r: Redis) -> bool:
    info = await r.info("persistence")
    return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]


async def test_a_blocking_stream_read_ends_before_the_socket_timeout(redis_url: str) -> None:
    """XREADGROUP BLOCK longer than the socket timeout would fail on a healthy,
    quiet server; the consumer cuts the block to half the timeout instead."""
    r = await connect(redis_url + "?socket_timeout=0.5")
    stream = TenantKeys(new_tenant_id()).events
    try:
        consumer = StreamConsumer(r, stream, "g", block_ms=5_000)
        await consumer.ensure_group()
        await consumer.read()  # own pending entries: none
        started = time.monotonic()
        assert await consumer.read(block=True) == []
        assert 0.2 < time.monotonic() - started < 0.5
    finally:
        await r.delete(stream)
        await r.aclose()
