"""The peers' environment and runner behind `python -m loadtests.bench peers`.

The tests use the repository's `.venv-peers` (gitignored), made from the pinned
`loadtests/peers-requirements.txt` on first use (about 12 s, then about 1 s), and
the session's Valkey. They skip only when the package index cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from loadtests import bench, peers

pytestmark = pytest.mark.slow  # the first run creates the environment with pip


def index_reachable(tmp: Path) -> bool:
    """Whether pip can fetch a pinned peer from the configured index."""
    probe = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp)]
    res = subprocess.run([*probe, "arq==0.28.0"], capture_output=True, timeout=120)
    return res.returncode == 0


@pytest.fixture(scope="module")
def peers_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        peers.ensure_venv()
    except subprocess.CalledProcessError:
        if not index_reachable(tmp_path_factory.mktemp("probe")):
            pytest.skip("the package index is unreachable: cannot install arq/saq")
        raise
    return peers.VENV


def pins() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in peers.REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.split("[")[0].lower()] = version
    return out


def test_requirements_pin_every_package_and_keep_redis_py_below_6() -> None:
    p = pins()
    assert {"arq", "saq", "redis", "hiredis", "uvloop"} <= set(p)
    assert int(p["redis"].split(".")[0]) < 6, "arq 0.28 needs redis-py < 6"


def test_ensure_venv_is_idempotent_and_installs_the_pins(peers_venv: Path) -> None:
    stamp = peers_venv / ".requirements.sha256"
    before = stamp.stat().st_mtime_ns
    assert peers.ensure_venv() is False  # nothing to do: pip does not run
    assert stamp.stat().st_mtime_ns == before
    assert stamp.read_text().strip() == peers.requirements_digest()

    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({n: m.version(n) for n in ('arq', 'saq', 'redis', 'uvloop')}))"
    )
    got = json.loads(
        subprocess.run(
            [str(peers.venv_python(peers_venv)), "-c", code],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    p = pins()
    assert got == {n: p[n] for n in got}

    # a stamp from other pins makes it install again (all satisfied: about 1 s)
    stamp.write_text("stale\n")
    assert peers.ensure_venv() is True
    assert stamp.read_text().strip() == peers.requirements_digest()


@pytest.mark.parametrize("mode", peers.MODES)
@pytest.mark.parametrize("peer", peers.PEERS)
async def test_runner_processes_every_job_and_cleans_up(
    peers_venv: Path, redis_url: str, redis: Redis, peer: str, mode: str
) -> None:
    queue = f"peerstest-{uuid.uuid4().hex[:8]}"
    res = peers.run_peer(
        peer,
        redis_url,
        25,
        mode=mode,
        concurrency=4,
        warmup=5,
        queue=queue,
        verify=True,
        cleanup=True,
        venv=peers_venv,
        timeout_s=120,
    )
    assert res["peer"] == peer and res["mode"] == mode
    assert res["jobs"] == 25 and res["verified"] == 25
    assert res["warmup"] == (5 if mode == "concurrent" else 0)
    assert res["version"] == pins()[peer]
    assert res["loop"] == "uvloop"
    assert res["jobs_per_s"] == pytest.approx(25 / res["wall_s"], rel=0.02)
    assert res["enqueue_s"] <= res["wall_s"]
    assert res["per_job_us"]["worker_cpu"] > 0
    assert set(res["host_load"]) == {"ours_cores", "other_cores", "steal_cores"}
    # nothing of the queue is left behind on the shared server
    pattern = f"saq:*{queue}:*" if peer == "saq" else f"{queue}*"
    assert [k async for k in redis.scan_iter(match=pattern, count=1000)] == []


def test_bench_peers_prints_the_ratio(
    peers_venv: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["peers", "--contacts", "60", "-c", "4", "--modes", "concurrent"]
    assert bench.main([*argv, "--redis-url", redis_url, "--json", "--venv", str(peers_venv)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["bench"] == "peers" and out["timed"] == "concurrent"
    faster = max(out["arq_jobs_per_s"], out["saq_jobs_per_s"])
    assert out["faster_peer"] == ("arq" if out["arq_jobs_per_s"] == faster else "saq")
    assert out["ratio_vs_faster_peer"] == pytest.approx(out["cycles_per_s"] / faster, abs=1e-3)
    assert out["pass"] == (out["ratio_vs_faster_peer"] >= 3.0)
    assert out["rounds"][0]["arq"]["concurrent"]["verified"] is None
    assert out["spread"]["cycles_per_s"] == [out["cycles_per_s"]]
