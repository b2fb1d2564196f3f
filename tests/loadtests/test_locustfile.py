"""loadtests/locustfile.py, run by the real `locust` command against a real
`python -m router serve` (never imported here: Locust monkey-patches with gevent)."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from loadtests.trace import TraceContact, write_trace
from router.keys import TenantKeys

from ..api.conftest import api_toml, token
from ..conftest import drop_tenant, new_tenant_id
from ..processes import serve_process

ROOT = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py")]

# Chat needs support >= 2 and ends in a 5 s wrap-up that the agents end themselves.
BODY = """
[routing]
presence_timeout_s = 0

[routing.wrap_up_s]
chat = 5

[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.chat]
channel = "chat"
skills = { support = 2 }
pools = ["inhouse"]

[queues.voice]
channel = "voice"
pools = ["inhouse"]

[queues.email]
channel = "email"
pools = ["inhouse"]
"""


@dataclass
class Server:
    base: str
    tenant: str


@pytest.fixture
async def server(tmp_path: Path, redis_url: str, redis: Redis) -> AsyncIterator[Server]:
    """`python -m router serve` on a free port, on the session's Valkey, for a new tenant."""
    tid = new_tenant_id()
    config = tmp_path / "switchboard.toml"
    config.write_text(api_toml(tid, BODY))
    log = tmp_path / "serve.log"
    try:
        async with serve_process(config, redis_url, log) as base:
            yield Server(base, tid)
    finally:
        await drop_tenant(redis, tid)


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *LOCUST, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode(errors="replace")


def _stats(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
async def test_locust_drives_ingest_and_agents_without_failures(
    server: Server, redis: Redis, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.jsonl"
    contacts = [
        TraceContact(i * 0.1, f"c{i}", "chat", "chat", 0.3, 0.05 if i % 5 == 0 else None,
                     {"support": 2}, customer={"id": f"k{i}"})
        for i in range(200)
    ]  # fmt: skip
    write_trace(trace, contacts)
    prefix = tmp_path / "run"
    rc, out = await _run(
        "--headless", "-u", "4", "-r", "4", "-t", "5s", "--host", server.base,
        "--csv", str(prefix), "--only-summary",
        "--sb-ingest-token", token(server.tenant, "ingest"),
        "--sb-admin-token", token(server.tenant, "admin"),
        "--sb-trace", str(trace), "--sb-rate", "5", "--sb-poll-s", "1",
        "--sb-skills", "support=3", "--sb-agent-prefix", "lc",
        env={"SB_AGENT_TOKEN": token(server.tenant, "agent")},  # the token from the env
    )  # fmt: skip
    assert rc == 0, out
    stats = _stats(prefix.with_name("run_stats.csv"))
    failures = {name: row["Failure Count"] for name, row in stats.items()}
    assert set(failures.values()) == {"0"}, (failures, out)
    n = {name: int(row["Request Count"]) for name, row in stats.items()}
    # weights 1:3 -> one ingest user at 5 contacts/s, three agents
    assert n["/v1/agents/[id]"] == 3
    assert 10 <= n["/v1/contacts"] <= 40, n
    assert n["/v1/offers/[id]/accept"] >= 5, n
    assert n["/v1/contacts/[id]/complete"] >= 5, n
    assert n["/v1/contacts/[id]/wrapup-done"] >= 5, n
    with prefix.with_name("run_exceptions.csv").open() as f:
        assert len(f.readlines()) == 1  # the header only

    # what the server did, from the tenant's own event stream
    entries = await redis.xrange(TenantKeys(server.tenant).events)
    types = [f[b"type"].decode() for _, f in entries]
    # Locust writes the CSV as it stops the users: a few more may have gone out since
    assert n["/v1/contacts"] <= types.count("contact.received") <= n["/v1/contacts"] + 5
    assert types.count("contact.completed") >= 5
    assert types.count("contact.assigned") >= types.count("contact.completed")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.base}/v1/agents",
            headers={"Authorization": f"Bearer {token(server.tenant, 'admin')}"},
        ) as r,
    ):
        agents = (await r.json())["agents"]
    # each agent went offline when Locust stopped it (after the CSV was written)
    assert {(a["id"], a["pool"], a["status"]) for a in agents} == {
        (f"lc-0-{i}", "inhouse", "offline") for i in (1, 2, 3)
    }
    assert all(a["skills"] == {"support": 3} and a["capacity"] == {"chat": 1} for a in agents)


async def test_bad_options_stop_locust_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"at": 1, "channel": "chat"}\n')
    rc, out = await _run(
        "--headless", "-u", "1", "-t", "1s", "--host", "http://127.0.0.1:9",
        "--sb-trace", str(bad),
    )  # fmt: skip
    assert rc == 2, out
    assert f"locustfile: error: --sb-trace: {bad}:1: id: required" in out.splitlines()
