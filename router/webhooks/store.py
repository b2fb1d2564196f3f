"""The Redis side of webhooks, for one tenant: subscriptions, deliveries, dead letters.

Config subscriptions come from the tenant's config (their secret from the
environment variable the config names); runtime ones are made through the admin
API and kept in `wh:subs` with their secret, since every sender must sign.
Every change to deliveries is one of the `webhook_*.lua` scripts.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from ..clock import Clock
from ..config.model import TenantConfig, WebhookSubscription
from ..keys import TenantKeys
from ..store.scripts import script_error, script_source

GROUP = "webhooks"  # the consumer group on the tenant stream
DEAD_LETTER_CAP = 10_000  # dead letters kept per tenant at most (oldest dropped first)
MAX_RUNTIME_SUBSCRIPTIONS = 100
SCRIPTS = (
    "webhook_enqueue",
    "webhook_take",
    "webhook_result",
    "webhook_dead",
    "webhook_purge",
    "webhook_subscribe",
)


@functools.cache
def _source(name: str) -> str:
    return script_source(name)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    source: Literal["config", "api"]
    secret: str | None  # None: the config's environment variable is not set
    secret_env: str = ""
    created_ms: int | None = None

    def wants(self, event_type: str) -> bool:
        """Whether the event filter matches: "*", a family "sla.*", or the exact type."""
        for pattern in self.events:
            if pattern == "*" or pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False


def from_config(sub: WebhookSubscription) -> Subscription:
    secret = os.environ.get(sub.secret_env) or None
    return Subscription(sub.id, sub.url, sub.events, "config", secret, sub.secret_env)


@dataclass(frozen=True)
class DropRun:
    """One run of drops: from the first drop until a delivery was stored again. No
    event from first_event to last_event reached the subscription: replay that range."""

    first_event: str
    last_event: str
    first_ms: int
    last_ms: int
    count: int
    ended_ms: int | None  # None: still dropping

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DropRun:
        ended = d.get("ended_at")
        return cls(
            str(d.get("first", "")),
            str(d.get("last", "")),
            int(d.get("first_at") or 0),
            int(d.get("last_at") or 0),
            int(d.get("count") or 0),
            int(ended) if ended else None,
        )


@dataclass(frozen=True)
class Drops:
    """Deliveries not stored because the subscription had `max_pending` waiting: how
    many in all (`count`), the latest run of them (first_event..last_event, one
    outage), and the runs before it, newest first (at most 10)."""

    count: int
    first_event: str
    last_event: str
    first_ms: int
    last_ms: int
    run_count: int = 0
    ended_ms: int | None = None
    previous: tuple[DropRun, ...] = ()


@dataclass(frozen=True)
class Taken:
    """A delivery leased to this sender for one attempt."""

    id: str
    sub: str
    event: str
    type: str
    body: bytes
    attempt: int
    token: str


class WebhookStore:
    def __init__(self, redis: Redis, keys: TenantKeys, clock: Clock) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._anchor = [keys.anchor]
        self._scripts: dict[str, AsyncScript] = {}

    async def _run(self, name: str, *args: Any) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(_source(name))
        try:
            return await script(keys=self._anchor, args=[self.clock.now_ms(), *args])
        except ResponseError as exc:
            raise script_error(exc) or exc from None

    # -- subscriptions -------------------------------------------------------

    async def subscriptions(self, tenant: TenantConfig) -> dict[str, Subscription]:
        """Every subscription: the config's, then runtime ones (a config id wins)."""
        out = {s.id: from_config(s) for s in tenant.webhooks.subscriptions}
        for sid, raw in (await self.redis.hgetall(self.keys.webhook_subs)).items():
            sid = _s(sid)
            if sid in out:
                continue
            data = json.loads(raw)
            out[sid] = Subscription(
                sid,
                data["url"],
                tuple(data["events"]),
                "api",
                data["secret"],
                created_ms=data.get("created"),
            )
        return out

    async def runtime_count(self) -> int:
        return int(await self.redis.hlen(self.keys.webhook_subs))

    async def create(
        self,
        sub_id: str,
        url: str,
        events: Sequence[str],
        limit: int = MAX_RUNTIME_SUBSCRIPTIONS,
    ) -> Subscription | Literal["exists", "full"]:
        """A runtime subscription with a new secret, or why not: the id is taken, or
        there are `limit` already (checked in the script that writes it)."""
        secret = "whsec_" + secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        data = {"url": url, "events": list(events), "secret": secret, "created": now}
        done = int(await self._run("webhook_subscribe", sub_id, json.dumps(data), limit))
        if done == 0:
            return "exists"
        if done < 0:
            return "full"
        return Subscription(sub_id, url, tuple(events), "api", secret, created_ms=now)

    async def delete(self, sub_id: str) -> tuple[bool, int]:
        """Delete a runtime subscription and drop its waiting deliveries.
        Returns (whether it existed, deliveries dropped)."""
        if not await self.redis.hdel(self.keys.webhook_subs, sub_id):
            return False, 0
        dropped = 0
        while True:
            n, left = await self.purge(sub_id)
            dropped += n
            if left == 0 or n == 0:
                return True, dropped

    async def purge(self, sub_id: str, limit: int = 500) -> tuple[int, int]:
        n, left = await self._run("webhook_purge", sub_id, limit)
        return int(n), int(left)

    async def pending(self, sub_ids: Sequence[str]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for sid in sub_ids:
            pipe.zcard(self.keys.webhook_due(sid))
        return {sid: int(n) for sid, n in zip(sub_ids, await pipe.execute(), strict=True)}

    async def drops(self, sub_ids: Sequence[str]) -> dict[str, Drops | None]:
        """Per subscription, the deliveries dropped at its `max_pending` cap, if any."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sub_ids:
            pipe.hgetall(self.keys.webhook_dropped(sid))
        out: dict[str, Drops | None] = {}
        for sid, raw in zip(sub_ids, await pipe.execute(), strict=True):
            h = {_s(a): _s(b) for a, b in raw.items()}
            if not h.get("count"):
                out[sid] = None
                continue
            previous = json.loads(h["previous"]) if h.get("previous") else []
            out[sid] = Drops(
                int(h["count"]),
                h.get("first", ""),
                h.get("last", ""),
                int(h.get("first_at") or 0),
                int(h.get("last_at") or 0),
                int(h.get("run_count") or h["count"]),
                int(h["ended_at"]) if h.get("ended_at") else None,
                tuple(DropRun.from_json(r) for r in previous if isinstance(r, dict)),
            )
        return out

    async def active(self) -> set[str]:
        """Subscriptions with deliveries waiting."""
        return {_s(s) for s in await self.redis.smembers(self.keys.webhook_active)}

    # -- deliveries ------------------------------------------------------------

    async def enqueue(
        self,
        entries: Sequence[tuple[str, str, str, Sequence[str]]],
        max_pending: int,
    ) -> tuple[int, dict[str, int]]:
        """XACK each (entry id, type, body, subscriptions) and enqueue its deliveries,
        the first time it is acknowledged only, while the subscription has fewer than
        `max_pending`. Returns (deliveries enqueued, {subscription: deliveries dropped})."""
        args: list[Any] = [GROUP, max_pending, len(entries)]
        for eid, etype, body, subs in entries:
            args += [eid, etype, body, len(subs), *subs]
        _, enqueued, flat = await self._run("webhook_enqueue", *args)
        dropped = {_s(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return int(enqueued), dropped

    async def take(
        self,
        wanted: Sequence[tuple[str, int]],
        lease_ms: int,
        prefix: str,
        *,
        max_attempts: int,
        dead_letter_ms: int,
    ) -> tuple[list[Taken], list[str]]:
        """Lease due deliveries: (those to send now, ids dead-lettered instead because
        they already had `max_attempts` attempts without an outcome)."""
        args: list[Any] = [lease_ms, prefix, max_attempts, dead_letter_ms, DEAD_LETTER_CAP]
        for sid, n in wanted:
            args += [sid, n]
        flat, dead = await self._run("webhook_take", *args)
        out: list[Taken] = []
        for i in range(0, len(flat), 6):
            did, sub, event, etype, body, attempt = flat[i : i + 6]
            body = body if isinstance(body, bytes) else str(body).encode()
            n = int(attempt)
            out.append(Taken(_s(did), _s(sub), _s(event), _s(etype), body, n, f"{prefix}:{n}"))
        return out, [_s(d) for d in dead]

    async def result(
        self,
        taken: Taken,
        outcome: Literal["ok", "retry", "dead"],
        *,
        due_ms: int = 0,
        status: int | None = None,
        error: str = "",
        dead_letter_ms: int = 0,
    ) -> bool:
        """Record an attempt's outcome; False if this sender's lease was lost."""
        done = await self._run(
            "webhook_result",
            taken.id,
            taken.token,
            outcome,
            due_ms,
            "" if status is None else status,
            error[:500],
            dead_letter_ms,
            DEAD_LETTER_CAP,
        )
        return bool(done)

    # -- dead letters ----------------------------------------------------------

    async def dead_letters(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first: (a page of dead letters, how many there are)."""
        k = self.keys
        total = int(await self.redis.zcard(k.webhook_dead))
        ids = [
            _s(i) for i in await self.redis.zrevrange(k.webhook_dead, offset, offset + limit - 1)
        ]
        pipe = self.redis.pipeline(transaction=False)
        for did in ids:
            pipe.hgetall(k.webhook_delivery(did))
        out: list[dict[str, Any]] = []
        for did, raw in zip(ids, await pipe.execute(), strict=True):
            if not raw:
                continue
            h = {_s(a): _s(b) for a, b in raw.items()}
            out.append(
                {
                    "id": did,
                    "subscription": h.get("sub", ""),
                    "event_id": h.get("event", ""),
                    "type": h.get("type", ""),
                    "attempts": int(h.get("attempts") or 0),
                    "created_ms": int(h.get("created") or 0),
                    "dead_ms": int(h.get("dead") or 0),
                    "last_status": int(h["status"]) if h.get("status") else None,
                    "last_error": h.get("error", ""),
                    "payload": json.loads(h["body"]) if h.get("body") else None,
                }
            )
        return out, total

    async def dead_sub(self, delivery_id: str) -> str | None:
        """The subscription of a dead letter, or None when there is no such dead letter."""
        if await self.redis.zscore(self.keys.webhook_dead, delivery_id) is None:
            return None
        sub = await self.redis.hget(self.keys.webhook_delivery(delivery_id), "sub")
        return None if sub is None else _s(sub)

    async def retry_dead(self, delivery_id: str) -> bool:
        return bool(await self._run("webhook_dead", "retry", delivery_id, 0, DEAD_LETTER_CAP))

    async def delete_dead(self, delivery_id: str) -> bool:
        return bool(await self._run("webhook_dead", "delete", delivery_id, 0, DEAD_LETTER_CAP))

    async def trim_dead(self, retention_ms: int) -> int:
        return int(await self._run("webhook_dead", "trim", "", retention_ms, DEAD_LETTER_CAP))
