"""`serve --workers N`: processes sharing a port, replaced when they die, stopped
together; and the supervisor's own rules (SIGHUP to one worker, crash loops)
with stand-in workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from router.keys import TenantKeys

from ..api.conftest import api_toml
from ..conftest import new_tenant_id
from ..processes import alive, free_port

ROOT = Path(__file__).resolve().parents[2]


def _until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


class Server:
    """A `python -m router serve` process group, its merged output read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router", "serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def output(self) -> str:
        return "\n".join(self.lines)

    def worker_pids(self) -> list[int]:
        """Every worker the parent started, in order."""
        return [r["worker_pid"] for r in self.records() if "worker_pid" in r]

    def served_by(self, rid: str) -> int | None:
        for r in self.records():
            if r["logger"] == "switchboard.access" and r.get("request_id") == rid:
                return int(r["pid"])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)


def _request(
    port: int,
    path: str,
    *,
    rid: str | None = None,
    token: str | None = None,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    timeout: float = 2,
) -> tuple[int, bytes]:
    """Status and body; status 0 when no HTTP answer came."""
    headers = {"X-Request-Id": rid} if rid else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _get(port: int, path: str, rid: str | None = None) -> int:
    return _request(port, path, rid=rid)[0]


def _pids_serving(server: Server, port: int, want: set[int], tag: str) -> set[int]:
    """Send requests (a new connection each) until every pid in `want` served one."""
    seen: set[int] = set()
    for i in range(400):
        rid = f"{tag}-{i}"
        assert _get(port, "/healthz", rid) == 200
        pid = _until(f"the access line of {rid}", lambda rid=rid: server.served_by(rid), 5)
        seen.add(pid)
        if want <= seen:
            break
    return seen


@pytest.fixture
def tenant(tmp_path: Path, redis_url: str) -> Iterator[tuple[Path, str]]:
    """A config file for a fresh tenant (tokens as in tests/api), and its id."""
    tid = new_tenant_id()
    path = tmp_path / "switchboard.toml"
    path.write_text(api_toml(tid))
    yield path, tid
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=TenantKeys(tid).pattern(), count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["external", "embedded"])
def test_workers_share_the_port_and_dead_ones_are_replaced(
    mode: str, tmp_path: Path, tenant: tuple[Path, str], redis_url: str
) -> None:
    tenant_config, tid = tenant
    port = free_port()
    data = tmp_path / "data"
    args = ["--workers", "2", "--port", str(port), "--config", str(tenant_config)]
    args += ["--log-format", "json"]
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": ""}
    if mode == "external":
        args += ["--redis-url", redis_url]
    else:
        args += ["--data-dir", str(data)]
    server = Server(args, env)
    try:
        _until("/readyz", lambda: _get(port, "/readyz") == 200, 30)
        first = _until(
            "two workers", lambda: len(server.worker_pids()) >= 2 and server.worker_pids()
        )
        assert len(first) == 2 and os.getpid() not in first
        valkey_pid = int((data / "valkey.pid").read_text()) if mode == "embedded" else None
        assert _pids_serving(server, port, set(first), "spread") == set(first)

        os.kill(first[0], signal.SIGKILL)
        pids = _until(
            "a replacement worker", lambda: len(server.worker_pids()) == 3 and server.worker_pids()
        )
        replacement = pids[2]
        assert replacement not in first and alive(replacement)
        _until("/readyz after the restart", lambda: _get(port, "/readyz") == 200)
        want = {first[1], replacement}
        assert _pids_serving(server, port, want, "after") == want

        # a long poll in flight when the parent is told to stop still gets its answer
        agent = {"name": "A", "pool": "inhouse", "capacity": {"chat": 1}, "status": "available"}
        status, _ = _request(port, "/v1/agents/a1", method="PUT", token=f"{tid}-admin", body=agent)
        assert status in (200, 201)
        poll: list[tuple[int, bytes]] = []
        poller = threading.Thread(
            target=lambda: poll.append(
                _request(port, "/v1/agents/a1/offers?wait=2", token=f"{tid}-a1", timeout=30)
            )
        )
        poller.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        poller.join(timeout=30)
        assert poll and poll[0][0] == 200 and json.loads(poll[0][1]) == {"offers": []}, poll
        assert server.proc.wait(timeout=60) == 0, server.output()
        assert not any(alive(p) for p in (first[1], replacement)), "workers outlived the parent"
        out = server.output()
        assert "Traceback" not in out, out
        started = [r for r in server.records() if r["msg"].startswith("embedded valkey started")]
        if mode == "embedded":
            assert valkey_pid is not None and not alive(valkey_pid), "embedded valkey still runs"
            assert len(started) == 1, "the workers must share the parent's server"
            assert "embedded valkey stopped" in out
            assert (data / "appendonlydir").is_dir()
        else:
            assert started == [] and not data.exists()
    finally:
        server.stop()


@pytest.mark.slow
def test_workers_of_a_killed_parent_shut_down(tenant: tuple[Path, str], redis_url: str) -> None:
    tenant_config, _ = tenant
    port = free_port()
    args = ["--workers", "2", "--port", str(port), "--config", str(tenant_config)]
    args += ["--log-format", "json", "--redis-url", redis_url]
    server = Server(args, dict(os.environ))
    pids: list[int] = []
    try:
        _until("/readyz", lambda: _get(port, "/readyz") == 200, 30)
        pids = _until(
            "two workers", lambda: len(server.worker_pids()) >= 2 and server.worker_pids()
        )
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        _until("the orphaned workers to exit", lambda: not any(alive(p) for p in pids), 20)
        _until("the port to be free", lambda: _get(port, "/healthz") == 0, 5)
    finally:
        server.stop()
        for pid in pids:  # when this test fails, leave no orphan behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_workers_need_a_free_fixed_port(tenant: tuple[Path, str], redis_url: str) -> None:
    tenant_config, _ = tenant
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for p in (port, 0):
            serve = ["serve", "--workers", "2", "--port", str(p), "--config", str(tenant_config)]
            r = subprocess.run(
                [sys.executable, "-m", "router", *serve, "--redis-url", redis_url],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 2, r.stderr
            assert r.stderr.strip().splitlines()[-1].startswith("error: "), r.stderr
            assert "Traceback" not in r.stderr


# -- the supervisor's rules, with stand-in workers ---------------------------------

SUPERVISE = """
import json, logging, sys
from router.server.workers import Supervisor
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
command, count = json.loads(sys.argv[1]), int(sys.argv[2])
sup = Supervisor(command, count, redis_url="redis://stand-in", fast_crash_s=5,
                 max_fast_crashes=3, backoff_s=0.05, stop_timeout_s=5)
sys.exit(sup.run())
"""

# Records its start and each SIGHUP in files named by pid; SIGTERM (or the
# parent's death) ends it.
STAND_IN = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
signal.signal(signal.SIGHUP, lambda *a: (out / f"hup-{os.getpid()}").touch())
assert os.environ["SWITCHBOARD_REDIS_URL"] == "redis://stand-in"
(out / f"up-{os.getpid()}").touch()
parent = os.getppid()
while os.getppid() == parent:  # no orphans when a test fails
    time.sleep(0.05)
"""


def _supervise(command: list[str], count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, json.dumps(command), str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _pids(directory: Path, prefix: str) -> set[int]:
    return {int(p.name.split("-")[1]) for p in directory.glob(f"{prefix}-*")}


@pytest.mark.slow
def test_sighup_goes_to_exactly_one_live_worker(tmp_path: Path) -> None:
    parent = _supervise([sys.executable, "-c", STAND_IN, str(tmp_path)], 3)
    try:
        up = _until(
            "three workers", lambda: len(_pids(tmp_path, "up")) == 3 and _pids(tmp_path, "up")
        )
        parent.send_signal(signal.SIGHUP)
        hup = _until("a SIGHUP", lambda: _pids(tmp_path, "hup"))
        time.sleep(0.5)  # time for a wrong second delivery to show
        assert len(_pids(tmp_path, "hup")) == 1 and hup <= up
        assert all(alive(p) for p in up), "SIGHUP must not stop a worker"
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=30)
        assert parent.returncode == 0, out
        assert not any(alive(p) for p in up)
        assert "SIGHUP: forwarded to worker" in out
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.slow
def test_a_crash_loop_makes_the_parent_give_up(tmp_path: Path) -> None:
    parent = _supervise([sys.executable, "-c", "import sys; sys.exit(3)"], 2)
    try:
        out, _ = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 1, out
    assert "exited with code 3" in out and "giving up" in out, out
    assert out.count("started (pid") >= 3  # it did restart before giving up


@pytest.mark.slow
def test_a_worker_that_dies_is_restarted(tmp_path: Path) -> None:
    parent = _supervise([sys.executable, "-c", STAND_IN, str(tmp_path)], 1)
    try:
        (first,) = _until("a worker", lambda: _pids(tmp_path, "up"))
        os.kill(first, signal.SIGKILL)
        up = _until(
            "its replacement", lambda: len(_pids(tmp_path, "up")) == 2 and _pids(tmp_path, "up")
        )
        (second,) = up - {first}
        assert alive(second)
        parent.send_signal(signal.SIGINT)
        out, _ = parent.communicate(timeout=30)
        assert parent.returncode == 0, out
        assert "was killed by SIGKILL" in out and not alive(second)
    finally:
        if parent.poll() is None:
            parent.kill()
