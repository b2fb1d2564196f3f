"""Connection setup and the server suitability check, against real Valkey servers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import BlockingConnectionPool

from router.errors import ServerError
from router.server.embedded import EmbeddedValkey
from router.store.connection import (
    MIN_REDIS,
    MIN_VALKEY,
    ServerInfo,
    check_server,
    connect,
    inspect_server,
    open_checked,
    redact_url,
)

GOOD = ServerInfo(
    product="valkey",
    version=(8, 1, 8),
    aof_enabled=True,
    appendfsync="everysec",
    rdb_enabled=False,
    maxmemory_policy="noeviction",
    cluster=False,
)


def _replace(info: ServerInfo, **changes: Any) -> ServerInfo:
    return dataclasses.replace(info, **changes)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """Read-only tests share one server; tests that reconfigure start their own."""
    with EmbeddedValkey(tmp_path_factory.mktemp("valkey")) as server:
        yield server


# -- connect -------------------------------------------------------------------
async def test_connect_bytes_hiredis_bounded_pool(shared: EmbeddedValkey) -> None:
    r = await connect(shared.url, max_connections=8)
    try:
        await r.set("conn:bin", b"\x00\xff")
        assert await r.get("conn:bin") == b"\x00\xff"
        pool = r.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.max_connections == 8
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            assert "Hiredis" in type(conn._parser).__name__
            assert conn.protocol == 2
        finally:
            await pool.release(conn)
    finally:
        await r.aclose()


async def test_connect_over_unix_socket(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path, unix_socket=True) as server:
        r = await connect(server.url)
        try:
            assert await r.ping() is True
        finally:
            await r.aclose()


async def test_connect_unreachable_raises_server_error_without_password() -> None:
    with pytest.raises(ServerError, match=r"cannot connect to Redis at redis://:\*\*\*@") as exc:
        await connect("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(exc.value)


def test_redact_url() -> None:
    assert redact_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("rediss://:p@h:1") == "rediss://:***@h:1"
    assert redact_url("redis://h:1") == "redis://h:1"
    assert redact_url("unix:///tmp/x.sock") == "unix:///tmp/x.sock"


# -- inspect_server --------------------------------------------------------------
async def test_inspect_embedded_valkey(shared: EmbeddedValkey) -> None:
    r = await connect(shared.url)
    try:
        info = await inspect_server(r)
        raw = await r.info("server")
    finally:
        await r.aclose()
    # Valkey also reports redis_version 7.2.4 for compatibility; we must not use it.
    assert raw["redis_version"] == "7.2.4"
    assert info.product == "valkey"
    assert info.version_str == raw["valkey_version"]
    assert info.version >= MIN_VALKEY
    assert info == _replace(GOOD, version=info.version)
    assert check_server(info) == []


async def test_inspect_rdb_only(tmp_path: Path) -> None:
    extra = {"appendonly": "no", "save": '"900 1 300 10"'}
    with EmbeddedValkey(tmp_path, extra_config=extra) as server:
        r = await connect(server.url)
        try:
            info = await inspect_server(r)
        finally:
            await r.aclose()
    assert (info.aof_enabled, info.rdb_enabled, info.config_readable) == (False, True, True)
    assert check_server(info) == [
        "AOF is off and only RDB snapshots persist data: a crash loses every write since "
        "the last snapshot (up to the snapshot interval); enable AOF with "
        "`CONFIG SET appendonly yes`"
    ]


async def test_inspect_with_config_disabled_falls_back_to_info(tmp_path: Path) -> None:
    # Like managed Redis: CONFIG renamed away, and the policy only visible via INFO.
    extra = {"rename-command": 'CONFIG ""', "maxmemory-policy": "volatile-lru"}
    with EmbeddedValkey(tmp_path, extra_config=extra) as server:
        r = await connect(server.url)
        try:
            info = await inspect_server(r)
        finally:
            await r.aclose()
    assert info.config_readable is False
    assert info.maxmemory_policy == "volatile-lru"
    assert info.appendfsync == "unknown"
    assert info.aof_enabled is True
    with pytest.raises(ServerError, match="'volatile-lru'"):
        check_server(info)
    assert check_server(_replace(info, maxmemory_policy="noeviction")) == []


# -- check_server ---------------------------------------------------------------
def test_check_rejects_redis_6_2() -> None:
    info = _replace(GOOD, product="redis", version=(6, 2, 14))
    with pytest.raises(ServerError) as exc:
        check_server(info)
    assert str(exc.value) == "Redis 6.2.14 is too old: Switchboard needs Redis >= 7.0"
    assert exc.value.details == {"product": "redis", "version": "6.2.14"}


def test_check_rejects_valkey_7_0() -> None:
    with pytest.raises(ServerError) as exc:
        check_server(_replace(GOOD, version=(7, 0, 0)))
    assert str(exc.value) == "Valkey 7.0.0 is too old: Switchboard needs Valkey >= 7.2"


@pytest.mark.parametrize(
    ("product", "version"),
    [("redis", MIN_REDIS), ("redis", (7, 4, 2)), ("valkey", MIN_VALKEY), ("valkey", (9, 0, 0))],
)
def test_check_accepts_minimum_versions(product: str, version: tuple[int, int, int]) -> None:
    assert check_server(_replace(GOOD, product=product, version=version)) == []


def test_check_rejects_evicting_policy() -> None:
    with pytest.raises(ServerError) as exc:
        check_server(_replace(GOOD, maxmemory_policy="allkeys-lru"))
    message = str(exc.value)
    assert message.startswith("maxmemory-policy is 'allkeys-lru': ")
    assert "lose queued contacts" in message
    assert "`CONFIG SET maxmemory-policy noeviction`" in message
    assert exc.value.details == {"maxmemory_policy": "allkeys-lru"}


def test_check_version_is_checked_before_policy() -> None:
    info = _replace(GOOD, product="redis", version=(6, 0, 0), maxmemory_policy="allkeys-lru")
    with pytest.raises(ServerError, match="too old"):
        check_server(info)


def test_check_warns_without_any_persistence() -> None:
    assert check_server(_replace(GOOD, aof_enabled=False, rdb_enabled=False)) == [
        "persistence is disabled (appendonly no, no RDB save points): a server restart "
        "loses every queued contact; enable AOF with `CONFIG SET appendonly yes`"
    ]


def test_check_warns_on_appendfsync_no() -> None:
    assert check_server(_replace(GOOD, appendfsync="no")) == [
        "appendfsync is 'no': the OS decides when the AOF reaches disk, so a crash can "
        "lose about 30 s of writes; use `CONFIG SET appendfsync everysec`"
    ]


def test_check_accepts_always_and_cluster() -> None:
    assert check_server(_replace(GOOD, appendfsync="always", cluster=True)) == []


# -- open_checked -----------------------------------------------------------------
def _connected_clients(server: EmbeddedValkey) -> int:
    with redis.Redis.from_url(server.url) as admin:
        # Minus this admin connection itself.
        return int(admin.info("clients")["connected_clients"]) - 1


async def test_open_checked_refuses_evicting_server_and_closes(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path) as server:
        r = await connect(server.url)
        try:
            await r.config_set("maxmemory-policy", "allkeys-lru")
            assert (await inspect_server(r)).maxmemory_policy == "allkeys-lru"
        finally:
            await r.aclose()
        with pytest.raises(ServerError, match="maxmemory-policy is 'allkeys-lru'"):
            await open_checked(server.url)
        # The refused client was closed, not leaked.
        for _ in range(50):
            if _connected_clients(server) == 0:
                break
            await asyncio.sleep(0.02)
        assert _connected_clients(server) == 0


async def test_open_checked_logs_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.switchboard.store")
    with EmbeddedValkey(tmp_path, appendfsync="no") as server:
        with caplog.at_level(logging.INFO, logger=log.name):
            r, info = await open_checked(server.url, log)
        try:
            assert await r.ping() is True
        finally:
            await r.aclose()
    assert info.appendfsync == "no"
    records = [(rec.levelno, rec.getMessage()) for rec in caplog.records if rec.name == log.name]
    assert records[0][0] == logging.INFO
    assert records[0][1].startswith(f"connected to valkey {info.version_str} at redis://")
    assert records[1:] == [(logging.WARNING, check_server(info)[0])]
