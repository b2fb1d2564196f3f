"""Several server processes on one port: a parent that supervises, workers that serve.

Workers keep no state of their own (it is all in Redis), so any of them can
serve any request, the kernel spreads connections over them (SO_REUSEPORT),
and one that dies is simply replaced. The parent owns what must exist once:
the embedded Valkey, started before the workers and stopped after they exit.

The parent is a plain polling loop, not an event loop: it only starts, watches
and signals processes, and signal handlers that just set flags keep it simple.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from aiohttp import web

from ..errors import ServerError
from .embedded import EmbeddedValkey

__all__ = ["REDIS_URL_ENV", "Supervisor", "check_port", "exit_with_parent"]

log = logging.getLogger("switchboard.workers")

REDIS_URL_ENV = "SWITCHBOARD_REDIS_URL"  # how workers learn the server (never argv: passwords)
POLL_S = 0.1
PARENT_CHECK_S = 0.5


@dataclass
class _Slot:
    """One worker position: its current process and its recent crash history."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    fast_crashes: int = 0
    restart_at: float | None = 0.0  # when to (re)start; None while one runs


class _GiveUp(Exception):
    """Workers keep crashing right after they start: restarting will not help."""


class Supervisor:
    """Runs `count` copies of `command` until SIGINT/SIGTERM, replacing any that exit.

    `redis_url`, or else the `embedded` server started here, is handed to the
    workers in the environment. A worker that exits within `fast_crash_s` of its
    start counts as a fast crash; restarts back off exponentially from
    `backoff_s`, and after `max_fast_crashes` in a row on one slot the parent
    stops everything and `run` returns 1. SIGHUP goes to one live worker.
    """

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        redis_url: str | None = None,
        embedded: EmbeddedValkey | None = None,
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 25.0,
        fast_crash_s: float = 10.0,
        max_fast_crashes: int = 5,
        backoff_s: float = 0.25,
        max_backoff_s: float = 5.0,
        on_started: Callable[[str], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if (redis_url is None) == (embedded is None):
            raise ValueError("give exactly one of redis_url and embedded")
        self.command = list(command)
        self.redis_url = redis_url
        self.embedded = embedded
        self.env = dict(os.environ if env is None else env)
        self.stop_timeout_s = stop_timeout_s
        self.fast_crash_s = fast_crash_s
        self.max_fast_crashes = max_fast_crashes
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_started = on_started
        self.slots = [_Slot(i) for i in range(1, count + 1)]
        self._stop_signal: int | None = None
        self._hup = False

    # -- signals ---------------------------------------------------------------
    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._hup = True

    def _forward_hup(self) -> None:
        """Reload is one worker's job: it publishes the new config to the others."""
        self._hup = False
        live = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        if not live:
            log.warning("SIGHUP: no live worker to forward it to")
            return
        oldest = min(live, key=lambda s: s.started)  # most likely to have its handler set
        assert oldest.proc is not None
        log.info("SIGHUP: forwarded to worker %d (pid %d)", oldest.index, oldest.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            oldest.proc.send_signal(signal.SIGHUP)

    # -- lifecycle -------------------------------------------------------------
    def run(self) -> int:
        """Supervise until a stop signal (0) or a crash loop (1)."""
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGINT, self._on_stop_signal),
                (signal.SIGTERM, self._on_stop_signal),
                (signal.SIGHUP, self._on_hup),
            )
        }
        code = 0
        try:
            url = self.redis_url
            if self.embedded is not None:
                self.embedded.start()
                url = self.embedded.url
                log.info("embedded valkey started at %s", url)
            assert url is not None
            self.env[REDIS_URL_ENV] = url
            if self.on_started is not None:
                self.on_started(url)
            self._supervise()
        except _GiveUp as exc:
            log.error("%s; giving up", exc)
            code = 1
        finally:
            self._stop_workers()
            if self.embedded is not None and self.embedded.is_running():
                self.embedded.stop()
                log.info("embedded valkey stopped")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _supervise(self) -> None:
        while self._stop_signal is None:
            if self._hup:
                self._forward_hup()
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is not None and (code := slot.proc.poll()) is not None:
                    self._exited(slot, code, now)
                if slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                    self._spawn(slot)
            time.sleep(POLL_S)
        log.info("%s: stopping %d workers", signal.Signals(self._stop_signal).name, len(self.slots))

    def _spawn(self, slot: _Slot) -> None:
        slot.started = time.monotonic()
        slot.restart_at = None
        try:
            # Own process group: a terminal's Ctrl-C reaches the parent only, which
            # then stops each worker exactly once (a second signal would cut short
            # aiohttp's graceful shutdown).
            slot.proc = subprocess.Popen(
                self.command, env=self.env, stdin=subprocess.DEVNULL, process_group=0
            )
        except OSError as exc:
            log.error("worker %d: cannot start: %s", slot.index, exc)
            self._exited(slot, None, time.monotonic())
            return
        log.info(
            "worker %d started (pid %d)",
            slot.index,
            slot.proc.pid,
            extra={"worker": slot.index, "worker_pid": slot.proc.pid},
        )

    def _exited(self, slot: _Slot, code: int | None, now: float) -> None:
        """Schedule the replacement of an unexpected exit, with backoff for fast crashes."""
        pid = slot.proc.pid if slot.proc is not None else None
        slot.proc = None
        how = _describe_exit(code)
        uptime = now - slot.started
        slot.fast_crashes = slot.fast_crashes + 1 if uptime < self.fast_crash_s else 0
        if slot.fast_crashes >= self.max_fast_crashes:
            raise _GiveUp(
                f"worker {slot.index} {how} {slot.fast_crashes} times in a row, "
                f"each within {self.fast_crash_s:g}s of starting"
            )
        delay = min(self.backoff_s * 2**slot.fast_crashes, self.max_backoff_s)
        slot.restart_at = now + delay
        log.warning(
            "worker %d (pid %s) %s after %.1fs; restarting in %.2gs",
            slot.index,
            pid,
            how,
            uptime,
            delay,
            extra={"worker": slot.index},
        )

    def _stop_workers(self) -> None:
        """SIGTERM each live worker once (in-flight requests finish), SIGKILL stragglers."""
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for proc in live:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()
        for slot in self.slots:
            slot.proc = None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "could not start"
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def check_port(host: str, port: int) -> None:
    """Fail early and clearly if the port is taken, instead of a worker crash loop.

    SO_REUSEPORT would let workers share a port with another server of ours, so
    the check binds without it.
    """
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def exit_with_parent(app: web.Application, parent_pid: int) -> None:
    """A worker whose parent died (SIGKILL, OOM) shuts down gracefully instead of
    lingering unsupervised on the port."""

    async def watch() -> None:
        while True:  # no event to wait for: the kernel only changes our ppid
            await asyncio.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                break
        log.warning("parent process %d is gone; shutting down", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)  # aiohttp's graceful path

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(context)
