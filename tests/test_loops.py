"""The background polling loop survives Redis outages and bugs, and stops when told."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from router.loops import poll_until_stopped


async def test_errors_back_off_and_never_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RedisConnectionError("down")
        if len(calls) == 2:
            raise KeyError("a bug")
        if len(calls) == 4:
            stop.set()

    log = logging.getLogger("test.loops")
    with caplog.at_level(logging.WARNING, logger="test.loops"):
        await asyncio.wait_for(poll_until_stopped("test loop", step, stop, 0.001, log), 10)
    assert len(calls) == 4  # went on after both errors, stopped when told
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "test loop: redis unavailable (down); retrying"
    assert messages[1] == "test loop failed; retrying"
    assert caplog.records[1].exc_info is not None  # a bug is logged with its traceback


async def test_a_set_stop_runs_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    ran = False

    async def step() -> None:
        nonlocal ran
        ran = True

    await poll_until_stopped("idle", step, stop, 0.001, logging.getLogger("test.loops"))
    assert not ran
