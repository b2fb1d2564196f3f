"""Connecting to Redis/Valkey and refusing servers that would lose contacts.

Switchboard keeps queued contacts only in Redis, so a server that evicts keys or
persists nothing is a data-loss bug waiting to happen. We check at startup rather
than discovering it in production.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from router.errors import ServerError

from .outage import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_SOCKET_TIMEOUT_S, ReconnectRetry

__all__ = [
    "MIN_REDIS",
    "MIN_VALKEY",
    "ServerInfo",
    "check_server",
    "cluster_client",
    "connect",
    "connect_cluster",
    "inspect_server",
    "inspect_servers",
    "is_cluster_url",
    "open_checked",
]

_log = logging.getLogger(__name__)

# Redis 7.0: Functions, SINTERCARD, LMPOP, EXPIRE NX..., script flags. Valkey forked
# from 7.2.4 and its first release was 7.2, so it has everything 7.0 has.
MIN_REDIS = (7, 0, 0)
MIN_VALKEY = (7, 2, 0)

# Bounds how long a task waits for a free pooled connection before erroring:
# under overload we prefer back-pressure to an unbounded connection count.
_POOL_WAIT_TIMEOUT = 20.0

Product = Literal["redis", "valkey"]


@dataclass(frozen=True)
class ServerInfo:
    """What the startup check needs to know about the server.

    `config_readable` is False when CONFIG is disabled (managed Redis): then
    `appendfsync` is "unknown" and `rdb_enabled` could not be determined.
    """

    product: Product
    version: tuple[int, int, int]
    aof_enabled: bool
    appendfsync: str
    rdb_enabled: bool
    maxmemory_policy: str
    cluster: bool
    config_readable: bool = True

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


async def connect(
    url: str,
    *,
    max_connections: int = 64,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S,
    socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> Redis:
    """A client over one bounded pool; create it once per process and share it.

    Replies stay bytes (msgpack records are binary). RESP2 is pinned so reply
    shapes do not change with the redis-py version (8.x defaults to RESP3); hiredis
    is picked up automatically when installed. The PING makes a wrong URL fail here,
    with the URL in the message, instead of on the first command.

    A stalled server must not hang callers: every read times out after
    `socket_timeout` (the URL's `?socket_timeout=` and `?socket_connect_timeout=`
    win over the arguments). Opening a connection is retried with backoff; a sent
    command is never re-sent (router/store/outage.py, docs/resilience.md).

    A `redis+cluster://` (or `rediss+cluster://`) URL gives redis-py's cluster
    client instead, with the same settings (`connect_cluster`).
    """
    if is_cluster_url(url):
        return await connect_cluster(
            url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
        )
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=_POOL_WAIT_TIMEOUT,
        decode_responses=False,
        protocol=2,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        retry=ReconnectRetry(),
    )
    client = Redis.from_pool(pool)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        raise ServerError(f"cannot connect to Redis at {redact_url(url)}: {exc}") from exc
    except BaseException:
        await client.aclose()
        raise
    return client


CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


async def connect_cluster(
    url: str,
    *,
    max_connections: int = 64,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S,
    socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> Redis:
    """`cluster_client`, checked: it has read the slot map and every primary answers."""
    client = cluster_client(
        url,
        max_connections=max_connections,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
    )
    try:
        await client.initialize()
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    except (RedisError, RedisClusterException) as exc:
        await client.aclose()
        raise ServerError(f"cannot connect to Redis Cluster at {redact_url(url)}: {exc}") from exc
    except BaseException:
        await client.aclose()
        raise
    return cast(Redis, client)


def cluster_client(
    url: str,
    *,
    max_connections: int = 64,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S,
    socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> RedisCluster:
    """redis-py's asyncio cluster client for `redis+cluster://[user:pass@]host:port[,host:port...]`
    (not connected yet).

    The hosts are seed nodes: the client reads the slot map from the first one that
    answers, then talks to every primary. Query options (`?socket_timeout=2`) are
    those of a `redis://` URL and apply to every node; `max_connections` is per node.
    The client itself re-sends nothing (retries=0: a sent command may have run);
    it follows MOVED/ASK and re-reads the slot map after a connection error, so the
    next command reaches a promoted replica. It answers the same command methods
    as `Redis`, so `connect` types it as one.
    """
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds = [h.strip() for h in hosts.split(",") if h.strip()]
    if not seeds:
        raise ServerError(f"{redact_url(url)}: a cluster URL needs at least one host:port")
    tls = parts.scheme.lower() == "rediss+cluster"
    auth = f"{userinfo}@" if userinfo else ""
    nodes: list[ClusterNode] = []
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
    }
    for seed in seeds:
        try:
            parsed = parse_url(  # type: ignore[no-untyped-call]
                f"{'rediss' if tls else 'redis'}://{auth}{seed}{parts.path}?{parts.query}"
            )
        except ValueError as exc:
            raise ServerError(f"{redact_url(url)}: {exc}") from exc
        if parsed.pop("db", 0):
            raise ServerError(f"{redact_url(url)}: a cluster has only database 0")
        nodes.append(ClusterNode(parsed.pop("host", "localhost"), parsed.pop("port", 6379)))
        parsed.pop("connection_class", None)
        options.update(parsed)  # username, password, query options: the same for every node
    return RedisCluster(
        startup_nodes=nodes,
        max_connections=max_connections,
        decode_responses=False,
        protocol=2,
        ssl=tls,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


async def inspect_servers(r: aredis.Redis) -> list[tuple[str, ServerInfo]]:
    """`inspect_server` of every primary, with its `host:port` ("" for one server)."""
    if not isinstance(r, RedisCluster):
        return [("", await inspect_server(r))]
    if r._initialize:
        await r.initialize()
    return [(n.name, await inspect_server(r, n)) for n in r.get_primaries()]


async def inspect_server(r: aredis.Redis, node: ClusterNode | None = None) -> ServerInfo:
    """Read product, version and durability settings; works with CONFIG disabled.

    On a cluster client, `node` says which primary to read.
    """
    target: dict[str, Any] = {} if node is None else {"target_nodes": node}
    info: dict[str, Any] = await r.info(**target)
    product: Product = (
        "valkey" if "valkey_version" in info or info.get("server_name") == "valkey" else "redis"
    )
    raw_version = info.get("valkey_version") or info.get("redis_version") or "0.0.0"
    version = _parse_version(str(raw_version))

    config: dict[str, str] = {}
    config_readable = True
    try:
        # One parameter per call: Redis < 7 rejects CONFIG GET with several.
        for name in ("maxmemory-policy", "appendfsync", "save"):
            config.update(_as_str_dict(await r.config_get(name, **target)))
    except ResponseError:
        # Renamed/disabled (ElastiCache, Memorystore...) or denied by ACL.
        config_readable = False

    policy = config.get("maxmemory-policy") or str(info.get("maxmemory_policy", "unknown"))
    save = config.get("save")
    return ServerInfo(
        product=product,
        version=version,
        aof_enabled=_truthy(info.get("aof_enabled", 0)),
        appendfsync=config.get("appendfsync", "unknown"),
        rdb_enabled=bool(save.strip()) if save is not None else False,
        maxmemory_policy=policy,
        cluster=_truthy(info.get("cluster_enabled", 0)),
        config_readable=config_readable and save is not None,
    )


def check_server(info: ServerInfo) -> list[str]:
    """Warnings for risky durability settings; ServerError for unusable servers."""
    minimum = MIN_VALKEY if info.product == "valkey" else MIN_REDIS
    if info.version < minimum:
        name = "Valkey" if info.product == "valkey" else "Redis"
        raise ServerError(
            f"{name} {info.version_str} is too old: Switchboard needs {name} >= "
            f"{'.'.join(map(str, minimum[:2]))}",
            product=info.product,
            version=info.version_str,
        )
    if info.maxmemory_policy != "noeviction":
        raise ServerError(
            f"maxmemory-policy is {info.maxmemory_policy!r}: when memory fills up the server "
            "would evict keys and silently lose queued contacts and agent state. Switchboard "
            "needs 'noeviction' so writes fail loudly instead; fix with "
            "`CONFIG SET maxmemory-policy noeviction` (and set it in the server config "
            "or your provider's parameter group so it survives a restart)",
            maxmemory_policy=info.maxmemory_policy,
        )

    warnings: list[str] = []
    if not info.config_readable:
        if not info.aof_enabled:
            warnings.append(
                "CONFIG is disabled on this server, so RDB snapshot settings cannot be "
                "checked, and AOF is off: make sure the provider persists data, or a "
                "restart may lose queued contacts"
            )
        return warnings
    if not info.aof_enabled and not info.rdb_enabled:
        warnings.append(
            "persistence is disabled (appendonly no, no RDB save points): a server restart "
            "loses every queued contact; enable AOF with `CONFIG SET appendonly yes`"
        )
    elif not info.aof_enabled:
        warnings.append(
            "AOF is off and only RDB snapshots persist data: a crash loses every write since "
            "the last snapshot (up to the snapshot interval); enable AOF with "
            "`CONFIG SET appendonly yes`"
        )
    elif info.appendfsync == "no":
        warnings.append(
            "appendfsync is 'no': the OS decides when the AOF reaches disk, so a crash can "
            "lose about 30 s of writes; use `CONFIG SET appendfsync everysec`"
        )
    return warnings


async def open_checked(
    url: str, log: logging.Logger | None = None
) -> tuple[aredis.Redis, ServerInfo]:
    """Connect and vet the server; never leaks the client when the server is refused."""
    log = log or _log
    client = await connect(url)
    warnings: list[str] = []
    try:
        servers = await inspect_servers(client)
        # on a cluster every primary is vetted, and what it says names it
        for name, one in servers:
            try:
                warnings += [f"{name}: {w}" if name else w for w in check_server(one)]
            except ServerError as exc:
                if not name:
                    raise
                raise ServerError(f"cluster node {name}: {exc}", node=name) from exc
    except BaseException:
        await client.aclose()
        raise
    info = servers[0][1]
    log.info(
        "connected to %s %s at %s (aof=%s, appendfsync=%s, cluster=%s, primaries=%d)",
        info.product,
        info.version_str,
        redact_url(url),
        info.aof_enabled,
        info.appendfsync,
        info.cluster,
        len(servers),
    )
    for warning in warnings:
        log.warning("%s", warning)
    return client, info


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _parse_version(text: str) -> tuple[int, int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def _truthy(value: object) -> bool:
    return str(value).strip() in ("1", "yes", "True")


def _as_str_dict(reply: Any) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in dict(reply).items()
    }
