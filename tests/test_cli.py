"""The command line: check-config exit codes and messages, serve start and graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_accepts_the_demo() -> None:
    r = _run("check-config", "config/demo.toml")
    assert r.returncode == 0, r.stderr
    assert "tenant demo" in r.stdout


def test_check_config_names_file_and_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[tenant]\nid = "x"\n[pools.a]\nkind = "inhouse"\n'
        '[queues.q]\nchannel = "voice"\npools = ["a"]\n'
        '[[queues.q.overflow]]\nafter_s = 30\npools = ["b"]\n'
    )
    r = _run("check-config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"error: {bad}: queues.q.overflow[0].pools")
    assert "Traceback" not in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_starts_embedded_valkey_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SWITCHBOARD_REDIS_URL": ""},
    )
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                    body = resp.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert b'"ready"' in body and b"demo" in body
        pid = int((data / "valkey.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "embedded valkey stopped" in out
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert (data / "appendonlydir").is_dir(), "AOF persistence must be on"
    finally:
        if proc.poll() is None:
            proc.kill()
