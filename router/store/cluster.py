"""What differs when the client is redis-py's asyncio RedisCluster (`redis+cluster://`).

Every key of a tenant shares the hash tag `{tenant}`, so everything one tenant does
lands in one slot, on one shard. Two things of redis-py's cluster client cannot be
used as they are: its transaction pipeline (it runs each queued command in a
throw-away event loop, and fails with "Event loop is closed" right after a
reconnect), and pipelines of some commands (EVALSHA, MGET...). `transaction()`
gives a pipeline that sends MULTI/EXEC itself on a connection to the shard that
owns the slot; in standalone mode it is redis-py's transaction pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeGuard

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ConnectionError,
    ExecAbortError,
    MovedError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

__all__ = [
    "REDIRECTS",
    "ClusterTransaction",
    "is_cluster",
    "mark_stale",
    "node_for",
    "read_sharded",
    "transaction",
]

# Replies meaning "the command did not run here": safe to send again once the
# client has re-read the slot map (or followed the redirection itself).
REDIRECTS = (MovedError, AskError, TryAgainError)
_ATTEMPTS = 3


def is_cluster(client: object) -> TypeGuard[RedisCluster]:
    return isinstance(client, RedisCluster)


async def node_for(client: RedisCluster, key: str | bytes) -> ClusterNode:
    """The primary that owns `key`'s slot (reading the slot map first if it is stale)."""
    if client._initialize:
        await client.initialize()
    node = client.get_node_from_key(key.decode() if isinstance(key, bytes) else key)
    assert node is not None  # a primary, never None
    return node


def mark_stale(client: RedisCluster) -> None:
    """The slot map may be wrong (connection lost, MOVED): the next command re-reads it."""
    client._initialize = True


async def read_sharded(
    client: Redis,
    channels: Iterable[str],
    on_message: Callable[[dict[str, Any]], Awaitable[None]],
    stop: asyncio.Event,
    subscribed: Callable[[], None] | None = None,
) -> None:
    """SSUBSCRIBE to `channels` and pass each message to `on_message`, until `stop`.

    `subscribed` is called once the subscriptions are in place. Returns when `stop`
    is set; raises the first error (the caller backs off and calls again, which
    subscribes afresh). On a cluster: one connection per shard, shared by every
    channel (tenant) on it, and one reader task per shard, so a quiet shard never
    delays another's messages.
    """
    if is_cluster(client):
        return await _read_sharded_cluster(client, channels, on_message, stop, subscribed)
    pubsub = client.pubsub()
    try:
        await pubsub.ssubscribe(*channels)
        if subscribed is not None:
            subscribed()
        while not stop.is_set():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if msg and msg.get("type") == "smessage":
                await on_message(msg)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _read_sharded_cluster(
    client: RedisCluster,
    channels: Iterable[str],
    on_message: Callable[[dict[str, Any]], Awaitable[None]],
    stop: asyncio.Event,
    subscribed: Callable[[], None] | None,
) -> None:
    pubsub = client.pubsub()
    readers: list[asyncio.Task[None]] = []

    async def read(name: str) -> None:
        node = client.get_node(node_name=name)
        while node is not None and not stop.is_set():
            msg = await pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=0.5, target_node=node
            )
            if msg and msg.get("type") == "smessage":
                await on_message(msg)

    try:
        await pubsub.ssubscribe(*channels)
        readers = [asyncio.create_task(read(name)) for name in list(pubsub.node_pubsub_mapping)]
        if subscribed is not None:
            subscribed()
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*readers, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        for task in done:
            exc = None if task is stopping else task.exception()
            if exc is not None:
                raise exc
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await pubsub.aclose()


def transaction(client: Redis) -> Pipeline:
    """A MULTI/EXEC pipeline for keys of one hash tag, on either kind of client.

    Standalone: redis-py's own. Cluster: `ClusterTransaction`. Either way, queue
    commands with the usual methods, then `await pipe.execute()`.
    """
    if is_cluster(client):
        return ClusterTransaction(client)
    return client.pipeline(transaction=True)


class ClusterTransaction(Pipeline):
    """Records commands like a pipeline, then sends MULTI, them, EXEC on one connection
    to the shard owning the first command's key. All keys must share one slot.

    `execute` returns the replies in order, parsed as redis-py would, and raises
    the first error reply. A MOVED/ASK/TRYAGAIN before EXEC ran nothing: the slot
    map is read again and the transaction sent again (up to 3 times).
    """

    def __init__(self, client: RedisCluster) -> None:
        # never connects: this pool only satisfies the recording pipeline's constructor
        super().__init__(ConnectionPool(), client.response_callbacks, True, None)
        self._cluster = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        commands = [(args, dict(options)) for args, options in self.command_stack]
        self.command_stack = []
        if not commands:
            return []
        client = self._cluster
        key = _first_key(commands)
        for attempt in range(_ATTEMPTS):
            node = await node_for(client, key)
            try:
                replies = await _multi_exec(node, [args for args, _ in commands])
            except REDIRECTS:
                mark_stale(client)
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            except (ConnectionError, TimeoutError):
                mark_stale(client)
                raise
            out: list[Any] = []
            for (args, options), raw in zip(commands, replies, strict=True):
                if isinstance(raw, ResponseError):
                    if raise_on_error:
                        raise raw
                    out.append(raw)
                    continue
                callback = self.response_callbacks.get(str(args[0]).upper())
                out.append(callback(raw, **options) if callback else raw)
            return out
        raise AssertionError("unreachable")


def _first_key(commands: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]) -> str | bytes:
    args = commands[0][0]
    if len(args) < 2:
        raise ValueError(f"a cluster transaction needs a keyed first command, got {args[0]!r}")
    key: str | bytes = args[1]
    return key


async def _multi_exec(node: ClusterNode, commands: list[tuple[Any, ...]]) -> Any:
    """MULTI, the commands, EXEC on one connection to `node`: the EXEC reply, or the
    error that made the server refuse the whole transaction."""
    conn = node.acquire_connection()
    try:
        await conn.send_packed_command(conn.pack_commands([("MULTI",), *commands, ("EXEC",)]))
        queued: list[ResponseError] = []
        for _ in range(len(commands) + 1):  # +OK, then +QUEUED per command
            try:
                await conn.read_response()
            except ResponseError as exc:
                queued.append(exc)
        try:
            reply = await conn.read_response()
        except ExecAbortError:
            if queued:
                raise queued[0] from None
            raise
    except ResponseError:
        raise  # every reply was read: the connection is clean
    except BaseException:
        await conn.disconnect()  # replies may be left unread on it
        raise
    finally:
        node.release(conn)
    return reply
