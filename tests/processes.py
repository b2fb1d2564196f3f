"""Helpers for tests that start real processes and servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Zombies count as dead: in a container nobody may reap an orphan."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@contextlib.asynccontextmanager
async def serve_process(config: Path, redis_url: str, log: Path) -> AsyncIterator[str]:
    """`python -m router serve --config <config>` on a free port and the given Redis,
    ready (/readyz 200) for the block; yields its base URL. Stopped with SIGTERM
    (SIGKILL after 20 s) afterwards. Its output goes to `log`."""
    port = free_port()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router", "serve", "--config", str(config),
            "--port", str(port), "--redis-url", redis_url,
            cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert proc.returncode is None, f"serve exited:\n{log.read_text()}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/readyz") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"serve not ready after 30 s:\n{log.read_text()}")
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
