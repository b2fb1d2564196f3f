"""The virtual-time replay: derived config, conservation, determinism and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from loadtests.derive import derive_config, derive_toml
from loadtests.replay import WALL_FIELDS, load_tenant, replay_virtual
from loadtests.trace import Roster, RosterAgent, TraceContact, write_roster, write_trace
from router.config.model import PoolKind

from .erlang import agents, poisson_trace

ROOT = Path(__file__).resolve().parents[2]


def _tenant() -> str:
    return f"rp-{uuid.uuid4().hex[:8]}"


def small_trace() -> list[TraceContact]:
    """Two queues, two channels, a skill requirement, patience on some contacts."""
    return [
        TraceContact(0.0, "v1", "voice", "support", 30.0, None, {"spanish": 4}),
        TraceContact(1.0, "v2", "voice", "support", 30.0, 5.0),
        TraceContact(2.0, "v3", "voice", "support", 30.0, None),
        TraceContact(3.0, "m1", "chat", "sales", 10.0, None, priority=1),
        TraceContact(4.0, "v4", "voice", "support", 30.0, 100.0, {"spanish": 2}),
        TraceContact(5.0, "v6", "voice", "support", 30.0, 20.0),  # everyone busy until 30
        TraceContact(500.0, "v5", "voice", "support", 30.0, None),  # after every shift
    ]


def small_roster() -> Roster:
    return Roster(
        (
            RosterAgent("ana", "inhouse", {"spanish": 5}, {"voice": 1, "chat": 2}, ((0, 400),)),
            RosterAgent("ben", "partner", {"spanish": 2}, {"voice": 1}, ((0, 200),)),
        )
    )


def test_derived_config() -> None:
    cfg = derive_config(small_trace(), small_roster(), tenant="t1")
    assert sorted(cfg.queues) == ["sales", "support"]
    assert cfg.queues["support"].channels == ("voice",)
    assert cfg.queues["sales"].channels == ("chat",)
    # the queue requires nothing: each contact carries its own skills
    assert cfg.queues["support"].skills == {}
    assert cfg.queues["support"].pools_at(0) == ("inhouse", "partner")
    assert {p.id: p.kind for p in cfg.pools.values()} == {
        "inhouse": PoolKind.INHOUSE,
        "partner": PoolKind.INHOUSE,
    }
    assert cfg.routing.presence_timeout_s == 0
    assert cfg.wrap_up_ms(cfg.queues["support"], "voice") == 0
    assert cfg.queues["support"].offer_timeout_s >= 3600
    assert "20 s" in derive_toml(small_trace(), small_roster())
    assert "7.5 s" in derive_toml(small_trace(), small_roster(), sl_threshold_s=7.5)


async def test_small_replay_honours_skills_shifts_and_patience(redis: Redis) -> None:
    trace, roster = small_trace(), small_roster()
    tenant = load_tenant(None, trace, roster, tenant=_tenant())
    sim = await replay_virtual(redis, tenant, trace, roster)
    o = sim.outcomes
    assert o["v1"].agent == "ana"  # spanish 4: only ana qualifies
    assert o["v2"].agent == "ben" and o["v2"].wait_ms == 0
    assert o["v3"].answered_ms is not None and o["v3"].wait_ms == 29_000  # ana frees at 30
    assert o["v3"].agent == "ben"  # ben frees at 31 and takes the oldest voice contact
    assert o["m1"].agent == "ana" and o["m1"].wait_ms == 27_000  # priority 1 first, at 30
    assert o["v4"].agent == "ana" and o["v4"].wait_ms == 36_000  # after ana's chat (voice
    # is exclusive, so not while she is on the chat)
    assert o["v6"].abandoned_ms is not None and o["v6"].wait_ms == 20_000
    assert o["v5"].wait_ms is None  # nobody on shift any more
    rep = sim.report()
    assert (rep["offered"], rep["answered"], rep["abandoned"], rep["still_waiting"]) == (7, 5, 1, 1)
    assert rep["queues"]["support"]["still_waiting"] == 1
    assert rep["abandon_rate"] == pytest.approx(1 / 7, abs=1e-4)
    # waits 0, 0, 29, 27, 36 s: two within 20 s, out of 7 offered
    assert rep["service_level"] == {"threshold_s": 20.0, "value": pytest.approx(2 / 7, abs=1e-4)}
    assert rep["asa_s"] == pytest.approx(92 / 5, abs=0.05)
    assert rep["p_wait"] == pytest.approx(4 / 6, abs=1e-4)
    assert rep["pools"]["inhouse"]["answered"] == 3 and rep["pools"]["partner"]["answered"] == 2
    # ana: 70 s handled in 400 s on shift (the run ends at 500 s)
    assert rep["pools"]["inhouse"]["occupancy"] == pytest.approx(70 / 400, abs=1e-4)


def _conserved(rep: dict[str, Any]) -> None:
    assert rep["offered"] == rep["answered"] + rep["abandoned"] + rep["still_waiting"]
    for q in rep["queues"].values():
        assert q["offered"] == q["answered"] + q["abandoned"] + q["still_waiting"]


async def test_conservation_with_short_staffing(redis: Redis) -> None:
    """Shifts end with contacts of infinite patience still waiting; some abandon."""
    trace = poisson_trace(300, 0.05, 60.0, seed=3, mean_patience_s=120.0)
    trace += [
        TraceContact(c.at + 0.5, c.id + "x", "voice", "billing", c.handle_s, None)
        for c in poisson_trace(150, 0.025, 60.0, seed=4)
    ]
    trace.sort(key=lambda c: (c.at, c.id))
    roster = Roster(
        (
            *(RosterAgent(f"a{i}", "inhouse", {}, {"voice": 1}, ((0, 2000),)) for i in range(2)),
            RosterAgent("b0", "night", {}, {"voice": 1}, ((1500, 3000), (4000, 4500))),
        )
    )
    tenant = load_tenant(None, trace, roster, tenant=_tenant())
    rep = (await replay_virtual(redis, tenant, trace, roster)).report()
    _conserved(rep)
    assert rep["abandoned"] > 0 and rep["still_waiting"] > 0 and rep["answered"] > 0
    assert set(rep["queues"]) == {"support", "billing"}


async def test_same_seed_same_report(redis: Redis) -> None:
    trace = poisson_trace(400, 0.03, 100.0, seed=5, mean_patience_s=90.0)
    roster = agents(3)
    reports = []
    for _ in range(2):
        tenant = load_tenant(None, trace, roster, tenant=_tenant())
        rep = (await replay_virtual(redis, tenant, trace, roster, seed=7)).report()
        reports.append({k: v for k, v in rep.items() if k not in (*WALL_FIELDS, "tenant")})
        _conserved(rep)
    assert reports[0] == reports[1]
    assert reports[0]["seed"] == 7


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.replay", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_help() -> None:
    out = _cli("--help")
    assert out.returncode == 0
    for flag in ("--trace", "--roster", "--config", "--mode", "--seed", "--sl-threshold"):
        assert flag in out.stdout


def test_cli_bad_input(tmp_path: Path) -> None:
    roster = tmp_path / "r.json"
    write_roster(roster, small_roster())
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"at": 1, "id": "c1", "channel": "voice", "queue": "q"}\n')
    report = str(tmp_path / "out.json")
    cases = [
        (("--trace", str(bad), "--roster", str(roster)), "t.jsonl:1: handle_s: required"),
        (("--trace", str(tmp_path / "none.jsonl"), "--roster", str(roster)), "none.jsonl"),
        (("--trace", str(bad), "--roster", str(roster), "--sl-threshold", "0"), "sl-threshold"),
        (("--trace", str(bad)), "--roster"),
        (("--trace", str(bad), "--roster", str(roster), "--seed", "x"), "--seed"),
    ]
    for args, needle in cases:
        out = _cli(*args, "--report", report)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], out.stderr
    good = tmp_path / "g.jsonl"
    write_trace(good, small_trace())
    conf = tmp_path / "c.toml"
    conf.write_text('[tenant]\nid = "x"\n[queues.support]\nchannels = ["fax"]\n')
    out = _cli(
        "--trace", str(good), "--roster", str(roster), "--config", str(conf), "--report", report
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "c.toml" in out.stderr


def test_cli_runs_a_replay(tmp_path: Path, redis_url: str) -> None:
    trace, roster = tmp_path / "t.jsonl", tmp_path / "r.json"
    write_trace(trace, small_trace())
    write_roster(roster, small_roster())
    report = tmp_path / "out.json"
    out = _cli(
        "--trace", str(trace), "--roster", str(roster), "--mode", "virtual",
        "--redis-url", redis_url, "--tenant", _tenant(), "--report", str(report),
        "--html", str(tmp_path / "out.html"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rep = json.loads(report.read_text())
    assert rep["offered"] == 7 and rep["still_waiting"] == 1
    page = (tmp_path / "out.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert rep["service_level"]["threshold_s"] == 20.0
    for key in ("p_wait", "asa_s", "aht_s", "abandon_rate", "occupancy", "queues", "pools"):
        assert key in rep
    assert rep["sim_contacts_per_s"] > 0


WRAP_UP_CONFIG = """
[tenant]
id = "{tenant}"
channels = ["voice"]

[pools.inhouse]
kind = "inhouse"

[queues.support]
channels = ["voice"]
pools = ["inhouse"]
offer_timeout_s = 86400
wrap_up_s = 5
"""


async def test_offers_made_by_engine_timers_complete_on_time(redis: Redis, tmp_path: Path) -> None:
    # The wrap-up timer frees the agent and offers it the next contact: that offer's
    # completion must run at its own time, before later arrivals, and at the end.
    tid = _tenant()
    config = tmp_path / "c.toml"
    config.write_text(WRAP_UP_CONFIG.format(tenant=tid))
    trace = [
        TraceContact(at, f"c{k}", "voice", "support", 10.0)
        for k, at in enumerate((0.0, 1.0, 100.0, 200.0), start=1)
    ]
    roster = Roster((RosterAgent("a1", "inhouse", {}, {"voice": 1}),))
    tenant = load_tenant(str(config), trace, roster)
    sim = await replay_virtual(redis, tenant, trace, roster)
    waits = {cid: o.wait_ms for cid, o in sim.outcomes.items()}
    assert waits == {"c1": 0, "c2": 14_000, "c3": 0, "c4": 0}  # c2: after 10 s + 5 s wrap-up
    rep = sim.report()
    assert rep["aht_s"] == 15.0 and rep["queues"]["support"]["handled"] == 4
    assert rep["simulated_s"] == 215.0  # the last wrap-up ends at 200 + 15


async def test_a_server_without_the_scripts_loaded(redis: Redis) -> None:
    # A fresh server: the replay loads every script first, so held calls are never
    # retried out of order (an accept after the shift end that follows it).
    await redis.script_flush()
    trace = [TraceContact(50.0, "c1", "voice", "support", 100.0)]
    roster = Roster((RosterAgent("a1", "inhouse", {}, {"voice": 1}, ((0.0, 100.0),)),))
    tenant = load_tenant(None, trace, roster, tenant=_tenant())
    sim = await replay_virtual(redis, tenant, trace, roster)
    assert sim.outcomes["c1"].wait_ms == 0 and sim.report()["answered"] == 1
