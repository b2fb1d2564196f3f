"""The webhook sender: leases due deliveries and POSTs them.

One aiohttp ClientSession per sender. Concurrency is bounded overall and per
subscription, and each request has the subscription's timeout, so a slow or
dead receiver ties up only its own subscription's slots; others keep flowing.
Nothing here touches the routing scripts. Outcomes go back through
`webhook_result.lua` under the lease token: a sender whose lease ran out
(because it stalled) changes nothing, and the delivery is retried elsewhere.
Times (signature timestamp, due times, dead-letter age) are the engine clock's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Sequence
from typing import Literal

import aiohttp

from ..engine import Engine
from ..loops import Outage
from ..streams import REDIS_DOWN
from .signing import retry_delay_s, sign
from .store import Subscription, Taken, WebhookStore

log = logging.getLogger("switchboard.webhooks")

LEASE_MARGIN_MS = 10_000  # a lease outlasts the request timeout by this much
TRIM_EVERY_S = 60.0
USER_AGENT = "Switchboard-Webhooks/1"


class WebhookSender:
    def __init__(
        self,
        engines: Sequence[Engine],
        *,
        concurrency: int = 64,
        per_subscription: int = 4,
        poll_s: float = 0.1,
        purge_after_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.engines = list(engines)
        self.stores = {e.tenant.id: WebhookStore(e.redis, e.keys, e.clock) for e in self.engines}
        self.concurrency = concurrency
        self.per_subscription = per_subscription
        self.poll_s = poll_s
        self.purge_after_s = purge_after_s
        self._unknown_since: dict[tuple[str, str], float] = {}
        self.rng = rng or random.Random()
        self.prefix = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.session: aiohttp.ClientSession | None = None
        self._inflight: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._trimmed_at = float("-inf")
        self._takes = 0
        self._round = 0
        self._freed = asyncio.Event()

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(limit=self.concurrency),
            )
        return self.session

    async def run_once(self) -> int:
        """Start sending every due delivery there is room for. Returns how many."""
        started = 0
        for engine in self.engines:
            started += await self._tenant_once(engine)
        return started

    async def _tenant_once(self, engine: Engine) -> int:
        tid = engine.tenant.id
        store = self.stores[tid]
        subs = await store.subscriptions(engine.tenant)
        active = await store.active()
        await self._purge_unknown(tid, store, active - set(subs))
        room = self.concurrency - len(self._tasks)
        wanted: list[tuple[str, int]] = []
        ready = sorted(active & set(subs))
        if ready:  # start each round at another subscription: none starves when full
            self._round += 1
            cut = self._round % len(ready)
            ready = ready[cut:] + ready[:cut]
        for sid in ready:
            n = min(self.per_subscription - self._inflight.get((tid, sid), 0), room)
            if n > 0:
                wanted.append((sid, n))
                room -= n
        if not wanted:
            return 0
        wh = engine.tenant.webhooks
        lease_ms = round(wh.timeout_s * 1000) + LEASE_MARGIN_MS
        self._takes += 1  # a fresh token prefix per take: tokens never repeat
        taken, dead = await store.take(
            wanted,
            lease_ms,
            f"{self.prefix}.{self._takes}",
            max_attempts=wh.max_attempts,
            dead_letter_ms=round(wh.dead_letter_days * 86_400_000),
        )
        for did in dead:
            log.warning(
                "webhook %s: dead letter after %d attempts: no outcome recorded for the last "
                "(its sender stopped or lost its lease)",
                did,
                wh.max_attempts,
            )
        for t in taken:
            key = (tid, t.sub)
            self._inflight[key] = self._inflight.get(key, 0) + 1
            task = asyncio.create_task(self._deliver(engine, subs[t.sub], t))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(taken)

    async def _purge_unknown(self, tid: str, store: WebhookStore, unknown: set[str]) -> None:
        """Drop the deliveries of subscriptions that were deleted or removed from the
        config. Only once one has been unknown for `purge_after_s`: while a reload
        spreads, another process may already run a config that has it."""
        now = asyncio.get_running_loop().time()
        for key in [k for k in self._unknown_since if k[0] == tid and k[1] not in unknown]:
            del self._unknown_since[key]
        for sid in sorted(unknown):
            since = self._unknown_since.setdefault((tid, sid), now)
            if now - since >= self.purge_after_s:
                n, left = await store.purge(sid)
                log.info("tenant %s: dropped %d deliveries of removed webhook %s", tid, n, sid)
                if not left:
                    self._unknown_since.pop((tid, sid), None)

    async def _deliver(self, engine: Engine, sub: Subscription, t: Taken) -> None:
        try:
            status, error = await self._post(engine, sub, t)
            await self._record(engine, t, status, error)
        except REDIS_DOWN as exc:  # the lease ends and the delivery is tried again
            log.warning("webhook %s: outcome not recorded (%s)", t.id, exc)
        except Exception:
            log.exception("webhook %s: delivery failed unexpectedly", t.id)
        finally:
            key = (engine.tenant.id, t.sub)
            self._inflight[key] -= 1
            if self._inflight[key] <= 0:
                del self._inflight[key]
            self._freed.set()  # a slot is free: the loop takes the next one now

    async def _post(self, engine: Engine, sub: Subscription, t: Taken) -> tuple[int | None, str]:
        """One attempt: (HTTP status or None, error text or '')."""
        if sub.secret is None:
            return None, f"environment variable {sub.secret_env} (the signing secret) is not set"
        ts = engine.clock.now_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            "Switchboard-Event-Id": t.event,
            "Switchboard-Event-Type": t.type,
            "Switchboard-Signature": sign(sub.secret, ts, t.body),
            "Switchboard-Delivery-Attempt": str(t.attempt),
        }
        timeout = aiohttp.ClientTimeout(total=engine.tenant.webhooks.timeout_s)
        try:
            async with self._session().post(
                sub.url, data=t.body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return resp.status, ""
                return resp.status, f"HTTP {resp.status} {resp.reason or ''}".strip()
        except TimeoutError:
            return None, f"no response within {engine.tenant.webhooks.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def _record(self, engine: Engine, t: Taken, status: int | None, error: str) -> None:
        store = self.stores[engine.tenant.id]
        wh = engine.tenant.webhooks
        outcome: Literal["ok", "retry", "dead"]
        due = 0
        if not error:
            outcome = "ok"
        elif t.attempt >= wh.max_attempts:
            outcome = "dead"
            log.warning("webhook %s: dead letter after %d attempts: %s", t.id, t.attempt, error)
        else:
            outcome = "retry"
            due = engine.clock.now_ms() + round(retry_delay_s(t.attempt, self.rng) * 1000)
        recorded = await store.result(
            t,
            outcome,
            due_ms=due,
            status=status,
            error=error,
            dead_letter_ms=round(wh.dead_letter_days * 86_400_000),
        )
        if not recorded:
            log.info("webhook %s: lease lost while sending; another sender owns it", t.id)

    async def trim(self) -> int:
        """Delete dead letters past their retention (engine clock)."""
        n = 0
        for engine in self.engines:
            days = engine.tenant.webhooks.dead_letter_days
            n += await self.stores[engine.tenant.id].trim_dead(round(days * 86_400_000))
        return n

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests and simulations)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.poll_s
        outage = Outage("webhook sender", log)  # logged once, not at every retry
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                    if loop.time() - self._trimmed_at >= TRIM_EVERY_S:
                        await self.trim()
                        self._trimmed_at = loop.time()
                    outage.recovered()
                    backoff = self.poll_s
                except REDIS_DOWN as exc:
                    outage.failed(exc)
                    backoff = min(backoff * 2, 5.0)
                    await _wait(stop, None, backoff)
                    continue
                except Exception:
                    log.exception("webhook sender failed; retrying")
                    backoff = min(backoff * 2, 5.0)
                    await _wait(stop, None, backoff)
                    continue
                # until the next poll, or until an attempt ends and frees a slot
                await _wait(stop, self._freed, backoff)
                self._freed.clear()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop: attempts in flight are abandoned; their leases end and they are retried."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.session is not None:
            await self.session.close()


async def _wait(stop: asyncio.Event, freed: asyncio.Event | None, seconds: float) -> None:
    """Sleep up to `seconds`, less if `stop` (or `freed`) is set meanwhile."""
    events = [asyncio.ensure_future(stop.wait())]
    if freed is not None:
        events.append(asyncio.ensure_future(freed.wait()))
    try:
        await asyncio.wait(events, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for e in events:
            e.cancel()
