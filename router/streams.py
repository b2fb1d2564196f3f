"""A consumer-group reader for a tenant's event stream.

Consumers of the stream (webhooks, and any later one) read it through a
consumer group, so that every entry is handled by one consumer of the group
and a consumer that dies leaves its entries pending instead of losing them:

1. the group is created at start (`XGROUP CREATE ... MKSTREAM`), from `$`
   (events from then on) unless told otherwise;
2. the consumer first re-reads its own pending entries (`XREADGROUP ... 0`):
   what it had read but not acknowledged before a crash or a Redis error;
3. every `claim_every_s` it takes over entries that another consumer has left
   unacknowledged for `claim_idle_ms` (`XAUTOCLAIM`): that consumer is gone;
4. then it reads new entries (`XREADGROUP ... >`), in bounded batches.

The handler acknowledges the entries itself, ideally in the same script that
applies them (XACK answers 1 only the first time, which makes applying
idempotent). Entries whose data was trimmed away while pending are
acknowledged here and never handed out. Redis errors back off and retry; the
unacknowledged entries are read again as pending. Idle times are the Redis
server's clock: liveness of consumers is real time, even in virtual-time tests.

An entry the handler keeps failing on must not stall the group for ever, since
pending entries are read first: after `max_failures` failures in a row of the
same batch, its entries are read again one at a time. An entry that fails
`max_failures` times on its own is set aside while the next ones are tried
(and, past the pending ones, one new entry). Only when another entry then goes
through is it a poison entry and parked: logged as an error, acknowledged, and
recorded (with the error) in a capped list, `parked_key`, so that an operator
can look at it and replay it from the stream. When every entry tried fails on
its own, the fault is systemic (say, a corrupt subscription that makes every
event fail): nothing is parked, an error is logged (at most once a minute),
and the entries are tried again after a wait that doubles up to a minute
(`Stalled`). Redis being unavailable, loading, read-only or out of memory does
not count as a failure at all: that is not the entry's fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .loops import Outage
from .store.cluster import transaction
from .store.outage import UNAVAILABLE

log = logging.getLogger("switchboard.streams")

# every way Redis can be unavailable (router/store/outage.py), and socket errors
REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    *UNAVAILABLE,
    OSError,
)
# Errors that say the server cannot serve now, not that the entry is bad. redis-py
# raises them as typed exceptions and strips the error code from the message, so
# they are told apart by class (BusyLoadingError is a ConnectionError).
_TRANSIENT: tuple[type[BaseException], ...] = (
    *REDIS_DOWN,
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    MasterDownError,
    TryAgainError,
)
# replies redis-py has no class for (NOGROUP: the stream was deleted; BUSY: a script runs)
_TRANSIENT_CODES = ("NOGROUP", "BUSY ")
MAX_FAILURES = 5
STALL_BACKOFF_MAX_S = 60.0  # longest wait before trying a stalled group's entries again
STALL_LOG_EVERY_S = 60.0  # a stalled group logs an error at most this often
PARKED_CAP = 1000  # parked entries recorded at most (newest kept)
_FAILURES_KEPT = 10_000  # entries whose failures are counted, at most


class Stalled(Exception):
    """Every entry tried failed on its own: nothing parked; try again in `retry_in_s`."""

    def __init__(self, retry_in_s: float, error: str) -> None:
        super().__init__(f"every entry tried failed on its own ({error}); retry in {retry_in_s} s")
        self.retry_in_s = retry_in_s


def _transient(exc: BaseException) -> bool:
    """Whether a failure is the server's state rather than the entry's fault."""
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT_CODES)


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id and its fields, decoded."""

    id: str
    fields: dict[str, str]

    @property
    def type(self) -> str:
        return self.fields.get("type", "")


Handler = Callable[[list[Entry]], Awaitable[None]]


def consumer_name(prefix: str = "") -> str:
    """A name unique to this process: host, pid and a random suffix."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{prefix}{host}-{os.getpid()}-{os.urandom(3).hex()}"


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entries(raw: Sequence[Any]) -> tuple[list[Entry], list[str]]:
    """Entries with data, and ids of entries trimmed away while pending."""
    live: list[Entry] = []
    gone: list[str] = []
    for eid, fields in raw:
        if not fields:
            gone.append(_s(eid))
        else:
            live.append(Entry(_s(eid), {_s(k): _s(v) for k, v in fields.items()}))
    return live, gone


class StreamConsumer:
    """Reads one stream as one consumer of one group; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        batch: int = 100,
        start_id: str = "$",
        block_ms: int = 0,
        idle_s: float = 0.05,
        claim_idle_ms: int = 60_000,
        claim_every_s: float = 10.0,
        max_failures: int = MAX_FAILURES,
        parked_key: str | None = None,
        parked_cap: int = PARKED_CAP,
        stall_backoff_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer or consumer_name(f"{group}-")
        self.batch = batch
        self.start_id = start_id
        self.block_ms = block_ms
        self.idle_s = idle_s
        self.claim_idle_ms = claim_idle_ms
        self.claim_every_s = claim_every_s
        self._pending_from: str | None = "0"  # re-read own pending entries first
        self._claim_from = "0-0"
        self._next_claim = 0.0  # monotonic, real time: consumer liveness is real time
        self.max_failures = max_failures
        self.parked_key = parked_key  # a key of the stream's tenant (TenantKeys.stream_parked)
        self.parked_cap = parked_cap
        self.parked = 0
        self._failures: dict[str, int] = {}  # entry id -> handler failures in a row
        self._alone = False  # read pending entries one at a time: find the failing one
        # entries that failed max_failures times on their own, with their last error and
        # failures: parked as soon as another entry succeeds (they are poison)
        self._suspects: dict[str, tuple[Entry, str, int]] = {}
        self.stall_backoff_s = stall_backoff_s  # first wait after a systemic failure
        self._stall_wait = stall_backoff_s
        self._stall_logged = -math.inf  # monotonic: when a systemic failure was last logged
        self.stalls = 0  # systemic failures met (every entry tried failed on its own)

    async def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, self.start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def ack(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return int(await self.redis.xack(self.stream, self.group, *ids))

    async def read(self, *, block: bool = False) -> list[Entry]:
        """The next batch: own pending entries, then abandoned ones, then new ones.
        With `block` (and `block_ms` set), waits up to `block_ms` for new entries."""
        while self._pending_from is not None:
            raw = await self._xreadgroup(self._pending_from, None, 1 if self._alone else None)
            live, gone = _entries(raw)
            await self.ack(gone)
            if not raw:
                self._pending_from = None
                self._alone = bool(self._suspects)  # else the batch is sorted out
                break
            self._pending_from = _s(raw[-1][0])
            live = [e for e in live if e.id not in self._suspects]  # tried enough
            if live:
                return live
        if self._suspects:  # a probe: does an entry beyond the suspects go through?
            raw = await self._xreadgroup(">", None, 1)
            live, gone = _entries(raw)
            await self.ack(gone)
            return live
        if time.monotonic() >= self._next_claim:
            live = await self._claim()
            if live:
                return live
        raw = await self._xreadgroup(">", self.block_ms if block and self.block_ms else None)
        live, gone = _entries(raw)
        await self.ack(gone)
        return live

    def reread_pending(self) -> None:
        """After a failed handler: read own pending entries again before new ones."""
        self._pending_from = "0"

    async def _xreadgroup(
        self, from_id: str, block_ms: int | None, count: int | None = None
    ) -> list[Any]:
        reply = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: from_id},
            count=count or self.batch,
            block=None if block_ms is None else _within_socket_timeout(self.redis, block_ms),
        )
        if not reply:
            return []
        # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}
        if isinstance(reply, dict):
            return list(next(iter(reply.values()))[0] if reply else [])
        return list(reply[0][1])

    async def _claim(self) -> list[Entry]:
        """Take over entries idle past `claim_idle_ms` in a dead consumer's list."""
        reply = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_from,
            count=self.batch,
        )
        next_id, raw = _s(reply[0]), reply[1]
        deleted = [_s(i) for i in reply[2]] if len(reply) > 2 else []
        await self.ack(deleted)
        live, gone = _entries(raw)
        await self.ack(gone)
        self._claim_from = next_id
        if next_id == "0-0":  # scanned the whole pending list: rest a while
            self._next_claim = time.monotonic() + self.claim_every_s
            await self._forget_idle_consumers()
        if live:
            log.info(
                "%s: %s took over %d entries left by a stopped consumer",
                self.stream,
                self.consumer,
                len(live),
            )
        return live

    async def _forget_idle_consumers(self) -> None:
        """Drop consumers with nothing pending that stopped reading long ago."""
        for c in await self.redis.xinfo_consumers(self.stream, self.group):
            name = _s(c["name"])
            if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > 3_600_000:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)

    async def poll(self, handle: Handler, *, block: bool = False) -> int:
        """Read one batch and hand it to `handle`. Returns the entries handled. If
        `handle` raises, its entries stay pending and are read again first. An entry
        that keeps failing on its own while others go through is parked; when every
        entry tried fails, the fault is not theirs: `Stalled` is raised, nothing parked."""
        entries = await self.read(block=block)
        if not entries:
            if self._suspects:  # nothing else to try, and every entry tried failed
                self._stalled()
            return 0
        try:
            await handle(entries)
        except Exception as exc:
            self.reread_pending()
            if not _transient(exc):
                self._failed(entries, exc)
            raise
        except BaseException:
            self.reread_pending()
            raise
        for e in entries:
            self._failures.pop(e.id, None)
        self._stall_wait = self.stall_backoff_s
        if self._suspects:  # others go through where these fail: they are poison
            suspects, self._suspects = self._suspects, {}
            for entry, error, failures in suspects.values():
                await self.park(entry, error, failures)
            self.reread_pending()
        return len(entries)

    def _stalled(self) -> None:
        """Every entry tried failed on its own: a fault of the handler or its data
        (say, a corrupt subscription), not of the entries. Park nothing; wait, longer
        each time, and try them all again."""
        self.stalls += 1
        wait = self._stall_wait
        self._stall_wait = min(max(wait * 2, 0.1), STALL_BACKOFF_MAX_S)
        suspects, self._suspects = self._suspects, {}
        self._alone = False
        self._failures.clear()
        self.reread_pending()
        (_, error, _) = next(iter(suspects.values()))
        now = time.monotonic()
        if now - self._stall_logged >= STALL_LOG_EVERY_S:
            self._stall_logged = now
            log.error(
                "%s: group %s is stalled: each of %d entries (%s..) failed %d times on "
                "its own and none went through, so none is parked; retrying in %.1f s: %s",
                self.stream,
                self.group,
                len(suspects),
                next(iter(suspects)),
                self.max_failures,
                wait,
                error,
            )
        raise Stalled(wait, error)

    def _failed(self, entries: list[Entry], exc: Exception) -> None:
        """Count a failure of `handle` on these entries."""
        if len(self._failures) > _FAILURES_KEPT:
            self._failures.clear()
        worst = 0
        for e in entries:
            worst = max(worst, n := self._failures.get(e.id, 0) + 1)
            self._failures[e.id] = n
        if worst < self.max_failures:
            return
        if len(entries) > 1:  # which one? each gets max_failures tries on its own
            log.warning(
                "%s: group %s failed %d times on entries %s..%s; trying them one at a time",
                self.stream,
                self.group,
                worst,
                entries[0].id,
                entries[-1].id,
            )
            for e in entries:
                self._failures[e.id] = 0
            self._alone = True
            return
        # failed alone: set aside while the next entries are tried (and a new one, if
        # need be); parked if one of them goes through, not if they all fail too
        entry = entries[0]
        self._failures.pop(entry.id, None)
        self._suspects[entry.id] = (entry, f"{type(exc).__name__}: {exc}", worst)
        self._alone = True
        if len(self._suspects) >= self.batch:
            self._stalled()

    async def park(self, entry: Entry, error: str, failures: int) -> None:
        """Set aside an entry the handler keeps failing on: acknowledge it and record it
        in `parked_key` (newest first, at most `parked_cap`), so the group goes on."""
        log.error(
            "%s: group %s parks entry %s (%s) after %d failures: %s",
            self.stream,
            self.group,
            entry.id,
            entry.type,
            failures,
            error,
        )
        record = {"id": entry.id, "type": entry.type, "error": error[:500], "failures": failures}
        # acknowledged and recorded together (MULTI/EXEC on the stream's shard; the
        # parked list shares the stream's hash tag)
        pipe = transaction(self.redis)
        pipe.xack(self.stream, self.group, entry.id)
        if self.parked_key:
            pipe.lpush(self.parked_key, json.dumps(record))
            pipe.ltrim(self.parked_key, 0, self.parked_cap - 1)
        await pipe.execute()
        self._failures.pop(entry.id, None)
        self.parked += 1

    async def parked_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The entries parked last, newest first."""
        if not self.parked_key:
            return []
        raw = await self.redis.lrange(self.parked_key, 0, limit - 1)
        return [json.loads(r) for r in raw]

    async def _poll_until_stopped(self, handle: Handler, stop: asyncio.Event) -> int:
        """A blocking poll that `stop` interrupts; an interrupted batch stays pending."""
        waiting = asyncio.ensure_future(self.poll(handle, block=True))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiting
            return 0
        return waiting.result()

    async def run(self, handle: Handler, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, backing off while Redis is unavailable. With
        `block_ms` 0 (the default) an idle consumer sleeps `idle_s` between reads and
        holds no connection meanwhile: many tenants' consumers never tie up the pool
        that routing uses. With `block_ms`, it waits in XREADGROUP BLOCK instead."""
        backoff = 0.1
        ready = False
        outage = Outage(self.stream, log)  # logged once, not at every retry
        while not stop.is_set():
            try:
                if not ready:
                    await self.ensure_group()
                    ready = True
                if self.block_ms:
                    n = await self._poll_until_stopped(handle, stop)
                else:
                    n = await self.poll(handle)
                outage.recovered()
                backoff = 0.1
                if n == 0 and not self.block_ms:
                    await _pause(stop, self.idle_s)
            except Stalled as exc:  # logged, rate-limited, by the consumer
                await _pause(stop, exc.retry_in_s)
            except REDIS_DOWN as exc:
                # a read whose reply was lost left its entries pending: read them again
                self.reread_pending()
                outage.failed(exc)
                await _pause(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.exception("%s: consumer %s failed; retrying", self.stream, self.consumer)
                else:  # the stream was deleted: make the group again
                    log.warning("%s: group %s is gone; creating it again", self.stream, self.group)
                ready = False
                self.reread_pending()
                await _pause(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("%s: consumer %s failed; retrying", self.stream, self.consumer)
                await _pause(stop, backoff)
                backoff = min(backoff * 2, 5.0)


def _within_socket_timeout(redis: Redis, block_ms: int) -> int:
    """A BLOCK that ends well before the client's socket timeout: a blocked read
    that outlives it would fail with TimeoutError on a perfectly healthy server."""
    # a cluster client has no pool: its nodes' connections share these kwargs
    holder = getattr(redis, "connection_pool", None) or getattr(redis, "nodes_manager", None)
    timeout = holder.connection_kwargs.get("socket_timeout") if holder is not None else None
    if not timeout:
        return block_ms
    return max(1, min(block_ms, int(timeout * 1000 / 2)))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
