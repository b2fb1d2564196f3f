"""The command line: check-config exit codes and messages, serve start and graceful stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .processes import free_port

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


@pytest.mark.slow
def test_serve_starts_embedded_valkey_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "router", "serve", "--port", str(port)),
            *("--data-dir", str(data), "--maxmemory-mb", "512"),
        ],
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
        ready = json.loads(body)
        assert ready["status"] == "ready" and ready["tenants"] == ["demo"]
        # --maxmemory-mb reaches the embedded server, and /readyz measures against it
        assert ready["memory"]["limit_source"] == "maxmemory"
        assert ready["memory"]["limit_bytes"] == 512 * 1024 * 1024
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


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--workers", "0"], {}),
        (["--header-timeout", "0"], {}),
        (["--body-timeout", "soon"], {}),
        (["--log-format", "xml"], {}),
        (["--log-level", "loud"], {}),
        (["--ready-memory", "0"], {}),
        (["--ready-memory", "1.5"], {}),
        (["--maxmemory-mb", "-1"], {}),
        ([], {"SWITCHBOARD_LOG_FORMAT": "xml"}),
    ],
)
def test_serve_rejects_bad_settings_before_starting(args: list[str], env: dict[str, str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--port", "1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert r.returncode == 2, r.stderr
    assert "error:" in r.stderr and "Traceback" not in r.stderr


def _drop_keys(url: str, tenant: str) -> None:
    import redis

    from router.keys import TenantKeys

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=TenantKeys(tenant).pattern(), count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.slow
def test_serve_applies_its_timeouts_and_logs_json(tmp_path: Path, redis_url: str) -> None:
    """The flags reach the server: a silent connection is closed after
    --header-timeout, a trickled body gets 408 after --body-timeout, and with
    SWITCHBOARD_LOG_FORMAT=json every log line is one JSON object."""
    from .api.conftest import api_toml
    from .conftest import new_tenant_id

    tid = new_tenant_id()
    config = tmp_path / "switchboard.toml"
    config.write_text(api_toml(tid))
    port = free_port()
    args = ["--port", str(port), "--config", str(config), "--redis-url", redis_url]
    args += ["--header-timeout", "0.5", "--body-timeout", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SWITCHBOARD_LOG_FORMAT": "json"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "not ready"
                time.sleep(0.1)

        with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
            start = time.monotonic()
            assert silent.recv(1024) == b""
            assert 0.4 <= time.monotonic() - start <= 3

        body = b'{"channel": "chat"}'
        head = (
            "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {tid}-ingest\r\nContent-Length: {len(body)}\r\n"
            "X-Request-Id: cli-slow-body\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(head + body[:3])  # and the rest never comes
            start = time.monotonic()
            reply = slow.recv(65536)
            assert reply.startswith(b"HTTP/1.1 408 "), reply
            assert 0.4 <= time.monotonic() - start <= 3

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Switchboard listening on" in out
        records = [json.loads(line) for line in err.splitlines()]  # every line is JSON
        (access,) = [r for r in records if r.get("request_id") == "cli-slow-body"]
        assert access["logger"] == "switchboard.access" and access["status"] == 408
        assert access["tenant"] == tid and access["path"] == "/v1/contacts"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _drop_keys(redis_url, tid)
