"""The realtime replay over HTTP: its own server, a --target, the report, bad options."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from loadtests.derive import derive_toml
from loadtests.realtime import RealtimeReplay, free_port, own_server
from loadtests.replay import main
from loadtests.trace import Roster, RosterAgent, TraceContact, write_roster, write_trace

from ..conftest import drop_tenant

ROOT = Path(__file__).resolve().parents[2]
SPEED = 20.0  # trace seconds per wall second: margins below are >= 0.5 s of wall time


def trace() -> list[TraceContact]:
    return [
        TraceContact(0.0, "c1", "voice", "support", 40.0, None, {"spanish": 4}),  # only ana
        TraceContact(1.0, "c2", "voice", "support", 40.0, None),  # ben
        TraceContact(2.0, "c3", "voice", "support", 40.0, 10.0),  # everyone busy until 40
        TraceContact(3.0, "c4", "voice", "support", 20.0, None),  # the first agent free
        TraceContact(50.0, "c5", "voice", "support", 20.0, None, {"french": 3}),  # carl, at 70
        TraceContact(110.0, "c6", "voice", "support", 20.0, None, {"french": 3}),  # carl is off
    ]


def roster() -> Roster:
    return Roster(
        (
            RosterAgent("ana", "inhouse", {"spanish": 5}, {"voice": 1}),
            RosterAgent("ben", "partner", {}, {"voice": 1}),
            RosterAgent("carl", "inhouse", {"french": 4}, {"voice": 1}, ((70.0, 100.0),)),
        )
    )


def check_report(rep: dict[str, Any]) -> None:
    """What the trace forces, whatever the machine's speed."""
    assert rep["mode"] == "realtime" and rep["speed"] == SPEED
    assert rep["offered"] == 6
    assert rep["offered"] == rep["answered"] + rep["abandoned"] + rep["still_waiting"]
    assert (rep["answered"], rep["abandoned"], rep["still_waiting"]) == (4, 1, 1)
    assert rep["completed"] == 4 and rep["errors"] == {} and rep["rejected"] == {}
    for name in ("routing_latency_ms", "ingest_latency_ms"):
        lat = rep[name]
        assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"] < 1500, (name, lat)
    # routing latency counts from when the contact could go to its agent, not from its
    # arrival: c4 waited ~37 s of trace (~1.9 s of wall time) for an agent
    assert rep["ingest_latency_ms"]["count"] == 6 and rep["routing_latency_ms"]["count"] == 4
    # 4 completions between the first ingest (0 s) and the last completion (~90 s trace)
    assert 4 / (120 / SPEED) < rep["throughput_per_s"] < 4 / (85 / SPEED), rep["throughput_per_s"]
    assert rep["wall_s"] >= 110 / SPEED
    # waits are in trace seconds: c3 waited its patience, carl's contact ~20 s
    assert rep["plots"]["wait_histogram"]["abandoned"][3] == 1  # 10 s and a little: (10, 20]
    assert rep["pools"]["partner"]["answered"] >= 1
    assert rep["pools"]["inhouse"]["answered"] >= 2


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    t, r = tmp_path / "t.jsonl", tmp_path / "r.json"
    write_trace(t, trace())
    write_roster(r, roster())
    return t, r


def test_own_server_cli(tmp_path: Path) -> None:
    """The whole command: its own server on a private embedded Valkey, then stopped."""
    t, r = write_inputs(tmp_path)
    out = tmp_path / "rep.json"
    args = ["--trace", str(t), "--roster", str(r), "--mode", "realtime", "--report", str(out)]
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "loadtests.replay", *args, "--speed", str(SPEED)),
            *("--seed", "7", "--html", str(tmp_path / "rep.html")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "completed/s" in proc.stderr and "\r" not in proc.stderr  # no bar: not a TTY
    rep = json.loads(out.read_text())
    check_report(rep)
    assert rep["seed"] == 7 and rep["tenant"] == "replay"
    assert rep["server_cpu_s"] > 0 and rep["client_cpu_s"] > 0
    assert "<html" in (tmp_path / "rep.html").read_text().lower()


async def test_target_with_token(tmp_path: Path, redis_url: str, redis: Redis) -> None:
    """Against a deployment started here, with a token of the admin and ingest roles;
    the agents' skills and shifts decide who gets what."""
    tenant = f"rt{uuid.uuid4().hex[:8]}"
    token = f"{tenant}-driver"
    sha = hashlib.sha256(token.encode()).hexdigest()
    ingest_only = f"{tenant}-ingest"
    sha2 = hashlib.sha256(ingest_only.encode()).hexdigest()
    text = derive_toml(trace(), roster(), tenant=tenant) + (
        f'\n[limits]\nrequests_per_s = 100000\n\n[[tokens]]\nsha256 = "{sha}"\n'
        f'roles = ["admin", "ingest"]\n\n[[tokens]]\nsha256 = "{sha2}"\nroles = ["ingest"]\n'
    )
    try:
        async with own_server(text, redis_url=redis_url) as srv:
            sim = RealtimeReplay(srv.url, token, trace(), roster(), speed=SPEED)
            rep = await sim.run()
            o = sim.outcomes
            assert o["c1"].agent == "ana"  # spanish 4: only ana
            assert o["c2"].agent == "ben"
            assert o["c3"].abandoned_ms is not None and o["c3"].answered_ms is None
            assert o["c3"].wait_ms is not None and 10_000 <= o["c3"].wait_ms < 15_000
            assert o["c4"].agent in ("ana", "ben")
            assert o["c5"].agent == "carl"  # french, on shift at 70
            assert o["c5"].wait_ms is not None and 20_000 <= o["c5"].wait_ms < 30_000
            assert o["c6"].wait_ms is None  # carl's shift ended at 100
            check_report(rep)
            assert rep["tenant"] == tenant  # read from the issued agent tokens
            # the roster is on the deployment, and offline once the run is over
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{srv.url}/v1/agents", headers={"Authorization": f"Bearer {token}"}
                ) as resp,
            ):
                agents = {a["id"]: a for a in (await resp.json())["agents"]}
            assert sorted(agents) == ["ana", "ben", "carl"]
            assert agents["carl"]["skills"] == {"french": 4}
            assert {a["status"] for a in agents.values()} == {"offline"}
            # a token without the admin role cannot set the roster up: one line, exit 2
            bad = RealtimeReplay(srv.url, ingest_only, trace(), roster(), speed=SPEED)
            with pytest.raises(Exception, match="admin"):
                await bad.run()
    finally:
        await drop_tenant(redis, tenant)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "http://127.0.0.1:1"], "--target needs --token"),
        (["--token", "x"], "--token is for --target"),
        (["--target", "ftp://x", "--token", "x"], "--target: must be an http"),
        (["--speed", "0"], "--speed: must be > 0"),
        (["--target", "http://x", "--token", "t", "--config", "c.toml"], "own server"),
    ],
)
def test_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    t, r = write_inputs(tmp_path)
    argv = ["--trace", str(t), "--roster", str(r), "--mode", "realtime", "--report", "x.json"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_unreachable_target_and_virtual_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t, r = write_inputs(tmp_path)
    out = tmp_path / "rep.json"
    argv = ["--trace", str(t), "--roster", str(r), "--report", str(out)]
    target = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main([*argv, "--mode", "realtime", "--target", target, "--token", "x"]) == 2
    err = capsys.readouterr().err
    assert f"{target}: cannot connect" in err and err.count("\n") == 1, err
    assert main([*argv, "--mode", "virtual", "--target", target, "--token", "x"]) == 2
    err = capsys.readouterr().err
    assert "for --mode realtime" in err and err.count("\n") == 1, err
    assert not out.exists()
