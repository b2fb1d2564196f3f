"""Conversations, not messages: what an adapter's `Inbound` does to the engine.

A customer who writes three times is one conversation. Chat threads by session,
SMS and social by (channel, customer handle), email by Message-ID references.
A follow-up attaches to the open contact as a timeline entry; one that arrives
within the reopen window after completion reopens the contact; otherwise it
starts a new contact, routed by the tenant's rules. Provider retries (same event
id) are processed once. Auto-replies, bounces and unknown events are recorded
and counted, never routed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from adapters.inbound import Inbound, Kind

from .engine import Engine
from .errors import ContactNotFound, InvalidState, QueueClosed, SwitchboardError
from .ids import new_contact_id
from .model import PREVIEW_MAX, NewContact
from .rules import route
from .store.cluster import transaction

log = logging.getLogger("switchboard.conversations")

TIMELINE_MAX = 50  # follow-ups kept per contact (newest first)
ENTRY_TEXT_MAX = 500  # characters of a follow-up kept in its timeline entry
CLAIM_WAIT_S = 0.05  # a racing creator's contact is usually there after this
# value of an inbound event's dedupe key when a closed queue refused the event
CLOSED_MARK = "!queue_closed"


@dataclass(frozen=True)
class Outcome:
    """201: a new contact; 200: an event on an existing one; 202: recorded, not routed."""

    status: int
    contact_id: str | None
    state: str | None = None
    queue: str | None = None
    reason: str = ""  # 202: why not routed; 200: added | reopened | ended | duplicate
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.contact_id, "state": self.state, "queue": self.queue}
        if self.reason:
            out["reason"] = self.reason
        if self.duplicate:
            out["duplicate"] = True
        return out


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Conversations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.keys = engine.keys

    def _thread_keys(self, item: Inbound) -> list[str]:
        """Key suffixes (after the tenant prefix) naming this item's conversation."""
        if item.channel == "email" or item.provider == "smtp":
            return [f"th:{_digest('mid:' + r)}" for r in item.references]
        if item.thread_key:
            return [f"th:{_digest(f'{item.channel}:{item.provider}:{item.thread_key}')}"]
        return []

    def _own_keys(self, item: Inbound) -> list[str]:
        """The keys a new contact from `item` is found by later."""
        if item.channel == "email" or item.provider == "smtp":
            return [f"th:{_digest('mid:' + item.external_id)}"] if item.external_id else []
        return self._thread_keys(item)

    async def _find(self, item: Inbound) -> str | None:
        for k in self._thread_keys(item):
            cid = await self.engine.redis.get(self.keys.prefix + k)
            if cid:
                return _s(cid)
        return None

    async def receive(self, item: Inbound) -> Outcome:
        """The item's outcome; an item with an event id is processed once. A refusal
        by a closed queue (QueueClosed, raised to the caller) counts as processed:
        a re-delivery of that event is answered 202 `queue_closed`, duplicate, so a
        provider's retry is neither refused nor recorded as ignored a second time.
        Any other failure lets the retry be processed."""
        engine, r = self.engine, self.engine.redis
        if item.event_id:
            ev = self.keys.inbound_event(_digest(f"{item.provider}:{item.channel}:{item.event_id}"))
            ttl = round(engine.tenant.retention.idempotency_s * 1000)
            if not await r.set(ev, "", nx=True, px=ttl):
                seen = _s(await r.get(ev) or b"") or None
                if seen == CLOSED_MARK:
                    return Outcome(202, None, reason="queue_closed", duplicate=True)
                return Outcome(200, seen, reason="duplicate", duplicate=True)
            try:
                out = await self._receive(item)
            except QueueClosed:
                await r.set(ev, CLOSED_MARK, px=ttl)
                raise
            except BaseException:
                await r.delete(ev)  # let the provider's retry be processed
                raise
            if out.contact_id:
                await r.set(ev, out.contact_id, px=ttl)
            return out
        return await self._receive(item)

    async def _receive(self, item: Inbound) -> Outcome:
        if item.kind is Kind.IGNORED:
            return await self._ignored(item)
        cid = await self._find(item)
        if item.kind is Kind.MESSAGE:
            if cid is not None:
                out = await self._follow_up(cid, item, "message")
                if out is not None:
                    return out
            return await self._start(item)
        if cid is None:
            return await self._ignored(item, "no_conversation")
        kind = {Kind.ENDED: "ended", Kind.ANSWERED: "answered"}.get(item.kind, "status")
        out = await self._follow_up(cid, item, kind)
        if out is None:  # finished already: a late status
            return Outcome(200, cid, reason="closed")
        if item.kind is Kind.ENDED and out.state in ("queued", "reserved"):
            try:
                await self.engine.abandon(cid, "customer_ended")
                return Outcome(200, cid, "abandoned", out.queue, reason="ended")
            except InvalidState:  # an agent took it meanwhile
                pass
        return out

    def _entry(self, item: Inbound, kind: str) -> str:
        e: dict[str, Any] = {"at": self.engine.clock.now_ms(), "kind": kind}
        if item.text:
            e["text"] = item.text[:ENTRY_TEXT_MAX]
        if item.subject:
            e["subject"] = item.subject[:200]
        for name, value in (("id", item.external_id), ("status", item.status)):
            if value:
                e[name] = value[:200]
        if item.attachments:
            e["attachments"] = [
                {"name": a.name, "type": a.content_type, "size": a.size}
                for a in item.attachments[:20]
            ]
        if item.reason:
            e["reason"] = item.reason
        return json.dumps(e, ensure_ascii=False, separators=(",", ":"))

    async def _follow_up(self, cid: str, item: Inbound, kind: str) -> Outcome | None:
        """The item as an event on contact `cid`; None when that contact is closed."""
        conv = self.engine.tenant.conversations
        for attempt in range(3):
            try:
                outcome, state = await self.engine.message(
                    cid, kind, self._entry(item, kind), round(conv.reopen_s * 1000), TIMELINE_MAX
                )
                break
            except ContactNotFound:
                if attempt == 2:
                    return None  # the index outlived its contact
                await asyncio.sleep(CLAIM_WAIT_S)  # another request is creating it
        if outcome == "closed":
            return None
        if item.kind is Kind.MESSAGE and item.external_id:
            await self._index(cid, self._own_keys(item))
        c = await self.engine.get_contact(cid)
        return Outcome(200, cid, state, c.queue, reason=outcome)

    async def _index(self, cid: str, keys: list[str]) -> None:
        """Point `keys` at contact `cid`, and list them on it so they expire with it."""
        if not keys:
            return
        r, ckey = self.engine.redis, self.keys.contact(cid)
        pipe = transaction(r)  # one slot: the tenant's
        for k in keys:
            pipe.set(self.keys.prefix + k, cid)
        pipe.hget(ckey, "threads")
        old = (await pipe.execute())[-1]
        merged = sorted(set(filter(None, _s(old or b"").split(","))) | set(keys))
        await r.hset(ckey, "threads", ",".join(merged[-64:]))

    async def _start(self, item: Inbound) -> Outcome:
        engine = self.engine
        tenant = engine.tenant
        if item.channel not in tenant.channels:
            return await self._ignored(item, "unknown_channel")
        routed = route(
            tenant,
            item.channel,
            language=item.language,
            subject=item.subject,
            text=item.text,
            attributes=item.attributes,
            ivr=item.ivr,
        )
        if routed.queue is None:
            return await self._ignored(item, "no_queue")
        cid = new_contact_id(engine.clock.now_ms())
        keys = self._thread_keys(item) if item.channel != "email" else []
        # claim the conversation first, so two racing messages make one contact
        for k in keys:
            if not await engine.redis.set(self.keys.prefix + k, cid, nx=True):
                other = await engine.redis.get(self.keys.prefix + k)
                if other and _s(other) != cid:
                    out = await self._follow_up(_s(other), item, "message")
                    if out is not None:
                        return out
                await engine.redis.set(self.keys.prefix + k, cid)  # the old one closed
        attributes = dict(item.attributes)
        if item.ivr:
            attributes["ivr"] = dict(item.ivr)
        if item.attachments:
            attributes["attachments"] = [
                {"name": a.name, "type": a.content_type, "size": a.size}
                for a in item.attachments[:20]
            ]
        if routed.rule:
            attributes["rule"] = routed.rule
        new = NewContact(
            id=cid,
            channel=item.channel,
            queue=routed.queue,
            customer=item.customer,
            subject=item.subject,
            preview=item.text[:PREVIEW_MAX],
            language=item.language,
            skills=routed.skills,
            priority=routed.priority,
            attributes=attributes,
            external_id=item.external_id,
            idempotency_key=f"external:{item.external_id}" if item.external_id else None,
        )
        try:
            result = await engine.create_contact(new)
        except SwitchboardError:
            for k in keys:  # release the claim
                await engine.redis.delete(self.keys.prefix + k)
            raise
        await self._index(result.contact_id, keys + self._own_keys(item))
        status = 200 if result.duplicate else 201
        return Outcome(
            status, result.contact_id, result.state.value, result.queue, duplicate=result.duplicate
        )

    async def _ignored(self, item: Inbound, reason: str | None = None) -> Outcome:
        why = reason or item.reason or "ignored"
        cid = None
        if item.kind is Kind.IGNORED and item.references:
            # a bounce or auto-reply to our thread: note it on that contact
            cid = await self._find(item)
            if cid is not None:
                await self._follow_up(cid, item, "ignored")
        await self.engine.record_ignored(item.channel, why, item.provider, item.external_id or "")
        log.info("not routed: %s %s (%s)", item.channel, item.external_id or "", why)
        return Outcome(202, cid, reason=why)
