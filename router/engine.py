"""The engine's Python API for one tenant: every call is one atomic Lua transition.

An `Engine` holds no routing state of its own; any number of engines (in any
number of processes) may serve the same tenant against one Redis.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from . import codec, subqueues
from . import sla as sla_clocks
from .clock import Clock
from .config.model import QueueConfig, TenantConfig
from .eligibility import agent_lanes, all_lanes, pool_lanes, pool_scope, region_pools
from .errors import (
    AgentNotFound,
    ContactNotFound,
    NotEligible,
    PoolNotFound,
    QueueClosed,
    QueueNotFound,
    ValidationError,
)
from .ids import new_contact_id, validate_id
from .keys import TenantKeys
from .model import (
    PREVIEW_MAX,
    SUBJECT_MAX,
    Agent,
    AgentSpec,
    AgentStatus,
    Contact,
    ContactState,
    NewContact,
    RouteResult,
)
from .pool_hours import PoolHours
from .privacy import contact_digests
from .store.cluster import transaction
from .store.routing_config import queue_fields, tenant_fields
from .store.scripts import Scripts
from .store.vendor_fields import vendor_fields
from .vendor_state import VendorState
from .vendor_state import state_fields as vendor_state_fields

DISPATCH_BATCH = 500


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _parse_caps(raw: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, _s(raw or b"").split(",")):
        ch, _, n = part.partition("=")
        out[ch] = int(n)
    return out


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Engine:
    """Routing engine of one tenant."""

    def __init__(
        self, redis: Redis, tenant: TenantConfig, clock: Clock, scripts: Scripts | None = None
    ) -> None:
        self.redis = redis
        self.tenant = tenant
        self.clock = clock
        self.keys = TenantKeys(tenant.id)
        self.scripts = scripts or Scripts(redis)
        self._anchor = [self.keys.anchor]
        self._subqueues_seen: set[str] = set()
        self.pool_hours = PoolHours(self)  # gates follow each pool's hours (pool_hours.py)
        # vendors' UTC offsets and ranks in the `vend` hash (vendor_state.py)
        self.vendor_state = VendorState(redis, self.keys, lambda: self.tenant, clock)

    async def _run(self, name: str, *args: Any) -> Any:
        return await self.scripts.run(name, self._anchor, [self.clock.now_ms(), *args])

    # -- configuration -----------------------------------------------------

    async def apply_config(self) -> None:
        """Write the routing config to Redis, re-lane every agent, and dispatch."""
        t = self.tenant
        k = self.keys
        known_pools = {_s(p) for p in await self.redis.smembers(k.pools)}
        removed = await self.removed_queues()
        vend_now = await vendor_state_fields(self.redis, k, t, self.clock.now_ms())
        # pools closed before gates kept their causes: an admin closed them
        for pool in await self.redis.smembers(k.pools_closed):
            if not await self.redis.exists(k.pool_causes(_s(pool))):
                await self.redis.sadd(k.pool_causes(_s(pool)), "admin")
        # One transaction: every process's scripts see the old config or the new one.
        # (MULTI/EXEC on the tenant's shard: all these keys share its hash tag.)
        pipe = transaction(self.redis)
        pipe.hset(k.anchor, mapping=tenant_fields(t))
        for q in t.queues.values():
            pipe.delete(k.queue(q.id))
            pipe.hset(k.queue(q.id), mapping=queue_fields(t, q))
            pipe.sadd(k.queues, q.id)
        known_subs = await self._subqueue_configs()
        for sub in known_subs:
            pipe.delete(k.queue(sub.id))
            pipe.hset(k.queue(sub.id), mapping=queue_fields(t, sub))
        for routing_id, moved in removed.items():
            pipe.hset(k.queue(routing_id), "moved", moved)
        for p in t.pools.values():
            pipe.sadd(k.pools, p.id)
            if p.id not in known_pools and not p.open:
                pipe.sadd(k.pools_closed, p.id)
                pipe.sadd(k.pool_causes(p.id), "admin")
        # vendor caps read by routing (the load counters in vload are kept)
        pipe.delete(k.vendor_config)
        vend = vendor_fields(t, known_subs)
        vend.update(vend_now)
        if vend:
            pipe.hset(k.vendor_config, mapping=vend)
        await pipe.execute()
        await self._retire(removed)
        for agent_id in sorted(_s(a) for a in await self.redis.smembers(k.agents)):
            # Re-lane from a snapshot; if another process changes the agent
            # meanwhile, the script refuses the stale write and we read again.
            while True:
                version = await self.redis.hget(k.agent(agent_id), "ver")
                agent = await self.get_agent(agent_id)
                if agent.pool not in t.pools:
                    break
                spec = AgentSpec(agent.id, agent.pool, agent.name, agent.skills, agent.capacity)
                outcome, _ = await self._upsert(spec, AgentStatus.OFFLINE, _s(version or b"0"))
                if outcome != "stale":
                    break
        await self._after_reload()
        subs = await self._subqueue_configs()
        lanes = all_lanes(t) + [f"{q.id}:{ch}" for q in subs for ch in q.channels]
        await self._run("staffing_rebuild", ",".join(lanes))
        await self.dispatch(lanes)

    async def _after_reload(self) -> None:
        """What a new config means for state kept across reloads: region-tagged
        contacts get their sub-queues in new escalation targets (residency holds
        there too); a pool closed as `failing` whose vendor no longer has a pause
        running (the pool moved, or left its vendor) opens; a vendor at a period
        cap gets its `vp|` timer (a lowered cap may leave none set)."""
        k, t = self.keys, self.tenant
        for raw in (await self.redis.hgetall(k.subqueues)).values():
            base, skills = subqueues.decode(_s(raw))
            if subqueues.region_of(skills) is not None and base in t.queues:
                await self.ensure_subqueues(t.queues[base], skills)
        for pool in t.pools.values():
            if not await self.redis.sismember(k.pool_causes(pool.id), "failing"):
                continue
            pending = pool.vendor is not None and (
                await self.redis.zscore(k.timers, f"vr|{pool.vendor}") is not None
            )
            if not pending:
                await self.set_pool_open(pool.id, True, "vendor_recovered", cause="failing")
        now = self.clock.now_ms()
        capped = [
            vid
            for vid, v in t.vendors.items()
            if v.caps.max_per_hour is not None or v.caps.max_per_day is not None
        ]
        if capped:
            await self.redis.zadd(k.timers, {f"vp|{vid}": now for vid in capped}, lt=True)

    async def removed_queues(self) -> dict[str, str]:
        """Routing queues (configured queues and their sub-queues) that the config no
        longer has -> their `moved` field: `<channel>=<queue>,...`, where each
        channel's contacts go. A channel with no fallback keeps an earlier mapping,
        or is left out (see `unplaceable`)."""
        k, t = self.keys, self.tenant
        gone = sorted({_s(q) for q in await self.redis.smembers(k.queues)} - set(t.queues))
        if not gone:
            return {}
        subs = {
            _s(a): _s(b).split("|")[0] for a, b in (await self.redis.hgetall(k.subqueues)).items()
        }
        out: dict[str, str] = {}
        for q in gone:
            chans, old = await self.redis.hmget(k.queue(q), ["chans", "moved"])
            before = dict(p.split("=", 1) for p in _s(old or b"").split(",") if "=" in p)
            moved: dict[str, str] = {}
            for ch in filter(None, _s(chans or b"").split(",")):
                dest = t.fallback_for(ch) or before.get(ch)
                if dest is not None:
                    moved[ch] = dest
            value = ",".join(f"{ch}={dest}" for ch, dest in moved.items())
            out[q] = value
            out.update({sub: value for sub, base in subs.items() if base == q})
        return out

    async def unplaceable(self, tenant: TenantConfig) -> list[str]:
        """Problems that stop `tenant` from replacing the current config: a removed
        queue with a channel that has nowhere to send its contacts."""
        k = self.keys
        problems = []
        gone = sorted({_s(q) for q in await self.redis.smembers(k.queues)} - set(tenant.queues))
        for q in gone:
            chans, old = await self.redis.hmget(k.queue(q), ["chans", "moved"])
            before = {p.split("=", 1)[0] for p in _s(old or b"").split(",") if "=" in p}
            for ch in filter(None, _s(chans or b"").split(",")):
                if tenant.fallback_for(ch) is None and ch not in before:
                    problems.append(
                        f"queues.{q}: removed, but its {ch} contacts would have nowhere to go: "
                        f"set routing.fallback_queue to a queue serving {ch}, or "
                        f"default_queues.{ch}"
                    )
        return problems

    async def _retire(self, removed: dict[str, str]) -> int:
        """Move the contacts waiting in removed queues to their fallbacks."""
        total = 0
        for routing_id in removed:
            sig = routing_id.partition(subqueues.SEP)[2]
            if sig:
                # the fallback must keep the contact's own skill requirements
                raw = await self.redis.hget(self.keys.subqueues, routing_id)
                skills = subqueues.decode(_s(raw or b""))[1] if raw else {}
                for dest in {
                    p.split("=", 1)[1] for p in removed[routing_id].split(",") if "=" in p
                }:
                    if dest in self.tenant.queues and skills:
                        await self.ensure_subqueues(self.tenant.queues[dest], skills)
            while True:
                moved, left = await self._run("queue_retire", routing_id, DISPATCH_BATCH)
                total += int(moved)
                if int(left) == 0 or int(moved) == 0:
                    break
        return total

    async def reconfigure(self, tenant: TenantConfig) -> None:
        """Switch to a new config of the same tenant (a reload)."""
        if tenant.id != self.tenant.id:
            raise ValidationError(f"engine of {self.tenant.id} cannot take tenant {tenant.id}")
        self.tenant = tenant
        self.vendor_state.next_refresh = 0  # the new contracts' ranks and offsets
        self._subqueues_seen.clear()
        await self.apply_config()

    # -- sub-queues (per-contact skill requirements) ------------------------

    async def _subqueue_configs(self) -> list[QueueConfig]:
        """The sub-queues created so far, derived from the current config."""
        return (await self._subqueue_snapshot())[0]

    async def _subqueue_snapshot(self) -> tuple[list[QueueConfig], int]:
        """The sub-queues, and how many the tenant has, read in one step."""
        out = []
        raw = await self.redis.hgetall(self.keys.subqueues)
        for sub_id, value in sorted(raw.items()):
            base, skills = subqueues.decode(_s(value))
            queue = self.tenant.queues.get(base)
            if queue is not None:
                out.append(subqueues.derive(queue, skills, _s(sub_id).split(subqueues.SEP)[1]))
        return out, len(raw)

    def _overflow_chain(self, queue: QueueConfig) -> list[QueueConfig]:
        chain = [queue]
        while chain[-1].overflow_queue and len(chain) <= len(self.tenant.queues):
            chain.append(self.tenant.queues[chain[-1].overflow_queue])
        return chain

    def _requirement_chain(self, queue: QueueConfig, skills: dict[str, int]) -> list[QueueConfig]:
        """Queues a contact of `queue` may reach and that need its sub-queue: the
        overflow chain and, for a region (which must hold wherever the contact goes),
        the escalations' move_queue targets and their chains too."""
        chain = self._overflow_chain(queue)
        if subqueues.region_of(skills) is None:
            return chain
        ids = {q.id for q in chain}
        i = 0
        while i < len(chain):  # each queue is added once: this ends
            for esc in chain[i].sla.escalation:
                target = self.tenant.queues.get(esc.queue or "")
                for q in self._overflow_chain(target) if target is not None else []:
                    if q.id not in ids:
                        ids.add(q.id)
                        chain.append(q)
            i += 1
        return chain

    def _check_region(self, queue: QueueConfig, channel: str, region: str | None) -> None:
        """Refuse a region that no pool of the queue's overflow chain may serve: the
        contact would wait for ever."""
        if region and not region_pools(self.tenant, self._overflow_chain(queue), channel, region):
            raise ValidationError(
                f"region: no pool of queue {queue.id!r} (or its overflow queues) may serve "
                f"region {region!r}: an outsourced pool serves its vendor's region, an "
                "in-house pool the regions it lists (every region when it lists none)",
                field="region",
            )

    async def ensure_subqueues(self, queue: QueueConfig, skills: dict[str, int]) -> str:
        """Make sure sub-queues exist for `skills` along the queue's overflow chain.
        Returns the signature to route with ('' when the queues' own skills suffice)."""
        if not skills or all(subqueues.covers(q, skills) for q in self._overflow_chain(queue)):
            return ""
        sig = subqueues.signature(skills)
        for q in self._requirement_chain(queue, skills):
            if subqueues.covers(q, skills):
                continue
            sub = subqueues.derive(q, skills, sig)
            if sub.id not in self._subqueues_seen:
                await self._create_subqueue(q, skills, sub)
                self._subqueues_seen.add(sub.id)
        return sig

    async def _create_subqueue(
        self, base: QueueConfig, skills: dict[str, int], sub: QueueConfig
    ) -> None:
        k = self.keys
        is_new = not await self.redis.hexists(k.subqueues, sub.id)
        if is_new and await self.redis.hlen(k.subqueues) >= subqueues.MAX_SUBQUEUES:
            raise ValidationError(
                f"skills: this tenant already has {subqueues.MAX_SUBQUEUES} distinct "
                "per-contact skill requirements; use a queue with these skills instead",
                field="skills",
            )
        pipe = transaction(self.redis)  # the sub-queue and its index appear together
        pipe.hset(k.queue(sub.id), mapping=queue_fields(self.tenant, sub))
        pipe.hset(k.subqueues, sub.id, subqueues.encode(base, skills))
        await pipe.execute()
        # The vendors' lanes, which their `v|` timers dispatch when they have room
        # again, now include the sub-queue's.
        vendor_lanes = {
            f: v
            for f, v in vendor_fields(self.tenant, await self._subqueue_configs()).items()
            if str(f).startswith("lanes:")
        }
        if vendor_lanes:
            await self.redis.hset(k.vendor_config, mapping=vendor_lanes)
        # Index the existing agents once. Agents registered from now on get the
        # lane in upsert_agent (which retries if it raced with this).
        agent_ids = await self.agent_ids()
        pipe = self.redis.pipeline(transaction=False)
        for aid in agent_ids:
            pipe.hmget(k.agent(aid), ["pool", "data", "caps"])
        rows = await pipe.execute()
        for ch in sub.channels:
            pairs: list[str] = []
            for aid, (pool, data, caps) in zip(agent_ids, rows, strict=True):
                if pool is None:
                    continue
                lanes = agent_lanes(
                    [sub],
                    _s(pool),
                    codec.unpack(data).get("skills", {}),
                    _parse_caps(caps),
                    pool_scope(self.tenant, _s(pool)),
                )
                value = lanes.get(f"{sub.id}:{ch}")
                if value:
                    pairs += [aid, value]
            for i in range(0, len(pairs), 1000):
                await self._run("lanes_add", f"{sub.id}:{ch}", *pairs[i : i + 1000])

    async def dispatch(self, lanes: Iterable[str]) -> int:
        lanes_arg = ",".join(lanes)
        total = 0
        while True:
            (made,) = await self._run("dispatch", lanes_arg, DISPATCH_BATCH)
            total += int(made)
            if int(made) < DISPATCH_BATCH:
                return total

    # -- contacts ----------------------------------------------------------

    async def create_contact(self, new: NewContact) -> RouteResult:
        queue = self.tenant.queues.get(new.queue)
        if queue is None:
            raise QueueNotFound(f"queue {new.queue!r} does not exist", queue=new.queue)
        if new.channel not in queue.channels:
            raise ValidationError(
                f"channel: queue {queue.id!r} takes {', '.join(queue.channels)}, "
                f"not {new.channel!r}",
                field="channel",
            )
        if not isinstance(new.priority, int) or not -1000 <= new.priority <= 1000:
            raise ValidationError("priority: must be an integer in -1000..1000", field="priority")
        for skill, level in new.skills.items():
            validate_id(skill, "skills")
            if not isinstance(level, int) or not 1 <= level <= 5:
                raise ValidationError(f"skills.{skill}: must be an integer 1..5", field="skills")
        region = new.region or None
        if region is not None and not subqueues.is_region(region):
            raise ValidationError(
                f"region: must be 1-32 characters of a-z 0-9 - starting with a letter, "
                f"got {region!r}",
                field="region",
            )
        now = self.clock.now_ms()
        contact_id = validate_id(new.id, "id") if new.id else new_contact_id(now)
        preferred = (
            validate_id(new.preferred_agent, "preferred_agent") if new.preferred_agent else ""
        )
        bounded = new
        if len(new.subject) > SUBJECT_MAX or len(new.preview) > PREVIEW_MAX:
            bounded = NewContact(
                **{
                    **new.__dict__,
                    "subject": new.subject[:SUBJECT_MAX],
                    "preview": new.preview[:PREVIEW_MAX],
                }
            )
        idem = _digest(new.idempotency_key) if new.idempotency_key else ""
        cust = _digest(new.customer.id) if new.customer.id else ""
        # queue hours: join at once, be held until the opening, overflow, or refused
        asked = queue
        try:
            queue, held = sla_clocks.admit(self.tenant, queue, now, new.channel)
        except QueueClosed:
            # a retry of a contact created while the queue was open gets that contact
            if not idem or not await self.redis.exists(self.keys.idempotency(idem)):
                raise
            held = 0
        self._check_region(queue, new.channel, region)
        # the region rides with the skills: a tagged contact waits in a sub-queue
        # whose agents are those of pools allowed for its region
        need = subqueues.requirement(new.skills, region)
        sig = await self.ensure_subqueues(queue, need) if need else ""
        spec = sla_clocks.timer_spec(
            sla_clocks.plan(self.tenant, queue, new.channel, new.priority, held or now)
        )
        r = self.tenant.routing
        cid, state, agent, qid, dup, pos, wait_ms = await self._run(
            "create_contact",
            contact_id,
            queue.id,
            new.channel,
            new.priority,
            codec.contact_blob(bounded),
            idem,
            round(self.tenant.retention.idempotency_s * 1000),
            preferred,
            round(r.preferred_agent_s * 1000),
            cust,
            sig,
            spec,
            held or "",
            asked.id if asked is not queue else "",
            ",".join(
                contact_digests(new.customer.email, new.customer.phone, new.customer.social_handle)
            ),
            region or "",
        )
        st = _s(state)
        return RouteResult(
            contact_id=_s(cid),
            state=ContactState(st) if st != "expired" else ContactState.COMPLETED,
            agent=_s(agent) or None,
            queue=_s(qid),
            duplicate=bool(int(dup)),
            position=int(pos) if pos not in (b"", "") else None,
            estimated_wait_s=round(int(wait_ms) / 1000, 1) if wait_ms not in (b"", "") else None,
        )

    async def accept(self, contact_id: str, agent_id: str) -> None:
        validate_id(contact_id, "contact")
        validate_id(agent_id, "agent")
        await self._run("accept", contact_id, agent_id)

    async def reject(self, contact_id: str, agent_id: str, reason: str = "") -> str | None:
        validate_id(contact_id, "contact")
        validate_id(agent_id, "agent")
        _, other = await self._run("reject", contact_id, agent_id, reason)
        return _s(other) or None

    async def complete(
        self,
        contact_id: str,
        agent_id: str | None = None,
        disposition: str = "",
        *,
        skip_wrap_up: bool = False,
    ) -> ContactState:
        """End the conversation: to wrap-up (if the queue has one), or completed."""
        validate_id(contact_id, "contact")
        if agent_id:
            validate_id(agent_id, "agent")
        if not skip_wrap_up:
            # The light script first: most conversations go on to wrap-up.
            outcome, _ = await self._run("wrap_up", contact_id, agent_id or "", disposition)
            if _s(outcome) == "wrap_up":
                return ContactState.WRAP_UP
        (state,) = await self._run(
            "complete", contact_id, agent_id or "", disposition, 1 if skip_wrap_up else 0
        )
        return ContactState(_s(state))

    async def finish_wrap_up(
        self, contact_id: str, agent_id: str | None = None, disposition: str = ""
    ) -> ContactState:
        """The agent says wrap-up is done (the timer does the same when it runs out)."""
        validate_id(contact_id, "contact")
        if agent_id:
            validate_id(agent_id, "agent")
        (state,) = await self._run("complete", contact_id, agent_id or "", disposition, 0)
        return ContactState(_s(state))

    async def abandon(self, contact_id: str, reason: str = "") -> None:
        validate_id(contact_id, "contact")
        await self._run("abandon", contact_id, reason)

    async def transfer(
        self,
        contact_id: str,
        *,
        queue: str | None = None,
        agent: str | None = None,
        by_agent: str | None = None,
    ) -> RouteResult:
        validate_id(contact_id, "contact")
        for value, what in ((queue, "queue"), (agent, "agent"), (by_agent, "by_agent")):
            if value:
                validate_id(value, what)
        if queue is not None:
            target = self.tenant.queues.get(queue)
            if target is None:
                raise QueueNotFound(f"queue {queue!r} does not exist", queue=queue)
            # the contact's own skill requirement and region go with it to the new queue
            contact = await self.get_contact(contact_id)
            self._check_region(target, contact.channel, contact.region)
            await self.ensure_subqueues(
                target, subqueues.requirement(contact.skills, contact.region)
            )
        elif agent:
            # data residency: the named agent's pool must be allowed for the region
            region = _s(await self.redis.hget(self.keys.contact(contact_id), "region") or "")
            if region:
                pool = _s(await self.redis.hget(self.keys.agent(agent), "pool") or "")
                if pool and not pool_scope(self.tenant, pool).allows_region(region):
                    raise NotEligible(
                        f"agent {agent} of pool {pool} may not serve contact {contact_id}: "
                        f"pool {pool} is not allowed for its region {region!r}",
                        pool=pool,
                        region=region,
                    )
        state, offered, qid = await self._run(
            "transfer", contact_id, queue or "", agent or "", by_agent or ""
        )
        return RouteResult(contact_id, ContactState(_s(state)), _s(offered) or None, _s(qid))

    async def offer(self, contact_id: str, agent_id: str) -> int:
        """A supervisor's push. A contact held while its queue is closed is refused
        (QueueClosed naming the opening): offering it would bypass the queue's hours."""
        validate_id(contact_id, "contact")
        validate_id(agent_id, "agent")
        try:
            _, deadline = await self._run("offer", contact_id, agent_id)
        except QueueClosed:
            raise await self._held_error(contact_id) from None
        return int(deadline)

    async def _held_error(self, contact_id: str) -> QueueClosed:
        """The refusal of an offer of a held contact, with its queue and opening."""
        queue = _s(await self.redis.hget(self.keys.contact(contact_id), "queue") or b"")
        opens = await self.redis.zscore(self.keys.held(queue), contact_id)
        return sla_clocks.closed_error(
            subqueues.base_id(queue), int(opens or 0), contact_id=contact_id
        )

    async def find_by_external_id(self, external_id: str) -> list[Contact]:
        """Contacts created with this external id (within the idempotency retention)."""
        cid = await self.redis.get(self.keys.idempotency(_digest(f"external:{external_id}")))
        if cid is None:
            return []
        try:
            return [await self.get_contact(_s(cid))]
        except ContactNotFound:
            return []

    async def position(self, contact_id: str) -> int | None:
        """1-based place of a waiting contact in its stage's line, or None if not waiting."""
        place = await self.redis.hget(self.keys.contact(contact_id), "place")
        if not place:
            return None
        rank: int | None = await self.redis.zrank(  # type: ignore[assignment]
            self.keys.prefix + _s(place), contact_id
        )
        return None if rank is None else rank + 1

    async def get_contact(self, contact_id: str) -> Contact:
        validate_id(contact_id, "contact")
        h: dict[bytes, bytes] = await self.redis.hgetall(self.keys.contact(contact_id))  # type: ignore[assignment]
        if not h:
            raise ContactNotFound(f"contact {contact_id!r} does not exist")
        return codec.decode_contact(self.tenant.id, contact_id, h)

    # -- agents ------------------------------------------------------------

    async def upsert_agent(
        self, spec: AgentSpec, status: AgentStatus = AgentStatus.OFFLINE
    ) -> AgentStatus:
        validate_id(spec.id, "agent id")
        if spec.pool not in self.tenant.pools:
            raise PoolNotFound(f"pool {spec.pool!r} does not exist", pool=spec.pool)
        for skill, level in spec.skills.items():
            validate_id(skill, "skills")
            if not isinstance(level, int) or not 1 <= level <= 5:
                raise ValidationError(f"skills.{skill}: must be an integer 1..5", field="skills")
        for ch, n in spec.capacity.items():
            if ch not in self.tenant.channels:
                raise ValidationError(f"capacity.{ch}: unknown channel", field="capacity")
            if not isinstance(n, int) or not 0 <= n <= 100:
                raise ValidationError(f"capacity.{ch}: must be an integer 0..100", field="capacity")
        _, st = await self._upsert(spec, status, "")
        return st

    async def _upsert(
        self, spec: AgentSpec, status: AgentStatus, expected_version: str
    ) -> tuple[str, AgentStatus]:
        while True:
            subs, n_subs = await self._subqueue_snapshot()
            queues = [*self.tenant.queues.values(), *subs]
            scope = pool_scope(self.tenant, spec.pool)
            lanes = agent_lanes(queues, spec.pool, spec.skills, spec.capacity, scope)
            outcome, st = await self._run(
                "agent_upsert",
                spec.id,
                spec.pool,
                ",".join(f"{ch}={n}" for ch, n in spec.capacity.items()),
                ",".join(f"{lane}={v}" for lane, v in lanes.items()),
                codec.agent_blob(spec),
                AgentStatus(status).value,
                n_subs,
                expected_version,
            )
            if _s(outcome) == "stale":
                return "stale", AgentStatus.OFFLINE
            if _s(outcome) != "retry":
                return _s(outcome), AgentStatus(_s(st))

    async def set_agent_status(
        self, agent_id: str, status: AgentStatus | str, reason: str = ""
    ) -> bool:
        validate_id(agent_id, "agent")
        try:
            value = AgentStatus(status).value
        except ValueError:
            raise ValidationError(
                f"status: must be available, away or offline, got {status!r}", field="status"
            ) from None
        _, changed = await self._run("agent_status", agent_id, value, reason)
        return bool(int(changed))

    async def heartbeat(self, agent_id: str) -> AgentStatus:
        validate_id(agent_id, "agent")
        (st,) = await self._run("heartbeat", agent_id)
        return AgentStatus(_s(st))

    async def get_agent(self, agent_id: str) -> Agent:
        validate_id(agent_id, "agent")
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.agent(agent_id))
        pipe.smembers(self.keys.agent_contacts(agent_id))
        h, contacts = await pipe.execute()
        if not h:
            raise AgentNotFound(f"agent {agent_id!r} does not exist")
        return codec.decode_agent(agent_id, h, list(contacts))

    # -- conversations (see conversations.py) --------------------------------

    async def message(
        self, contact_id: str, kind: str, entry: str, reopen_ms: int, keep: int
    ) -> tuple[str, str]:
        """A follow-up on a contact: ('added' | 'reopened' | 'closed', state)."""
        validate_id(contact_id, "contact")
        outcome, state = await self._run(
            "contact_message",
            contact_id,
            kind,
            entry,
            reopen_ms,
            keep,
            await self._reopen_sla(contact_id),
        )
        return _s(outcome), _s(state)

    async def timeline(self, contact_id: str, limit: int = 50) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.keys.timeline(contact_id), 0, limit - 1)
        return [json.loads(e) for e in raw]

    async def record_ignored(self, channel: str, reason: str, provider: str, ext: str) -> int:
        (n,) = await self._run(
            "inbound_ignored", channel[:64], reason[:64], provider[:64], ext[:500]
        )
        return int(n)

    async def ignored_counts(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.ignored)
        return {_s(k): int(v) for k, v in raw.items()}

    # -- agent tokens ------------------------------------------------------

    async def issue_agent_token(self, agent_id: str, token_digest: str) -> int:
        """Bind a token (by its SHA-256) to one agent; returns the agent's token count."""
        validate_id(agent_id, "agent")
        (count,) = await self._run("agent_token", agent_id, token_digest)
        return int(count)

    async def revoke_agent_tokens(self, agent_id: str) -> None:
        validate_id(agent_id, "agent")
        await self._run("agent_token", agent_id, "")

    async def agent_for_token(self, token_digest: str) -> str | None:
        aid = await self.redis.hget(self.keys.agent_tokens, token_digest)
        return None if aid is None else _s(aid)

    async def agent_ids(self) -> list[str]:
        return sorted(_s(a) for a in await self.redis.smembers(self.keys.agents))

    # -- pools -------------------------------------------------------------

    async def set_pool_open(
        self, pool: str, is_open: bool, reason: str = "", cause: str = "admin"
    ) -> int:
        """Clear (is_open) or set one cause keeping a pool closed: `admin`, `paused`
        (vendor pause), `hours` (vendor hours) or `failing` (offers time out). The
        pool is open while no cause holds. Returns the offers made on opening."""
        if pool not in self.tenant.pools:
            raise PoolNotFound(f"pool {pool!r} does not exist", pool=pool)
        subs = await self._subqueue_configs()
        lanes = ",".join(
            pool_lanes([*self.tenant.queues.values(), *subs], pool, pool_scope(self.tenant, pool))
        )
        total = 0
        while True:
            _, _, made = await self._run(
                "pool_gate", pool, 1 if is_open else 0, reason, lanes, DISPATCH_BATCH, cause
            )
            total += int(made)
            if int(made) < DISPATCH_BATCH:
                return total

    async def pool_is_open(self, pool: str) -> bool:
        return not await self.redis.sismember(self.keys.pools_closed, pool)

    # -- queue state (read-only) --------------------------------------------

    async def queue_snapshot(self, queue_id: str) -> dict[str, int | float | None]:
        """Waiting count, longest wait and ready agents of a queue and its sub-queues,
        and `held`: new contacts held while the queue is closed (not waiting, not in
        the longest wait), in the queue's hold set and its sub-queues'.

        A waiting set is ordered by arrival - priority x aging, not by arrival alone, so an
        older contact of low priority can sit behind newer ones of higher priority:
        the longest wait reads `created` of the first `scan` contacts of each set, and
        is exact when no set has more than `scan` contacts ahead of its oldest (always
        when a set holds at most `scan`). Cost: two pipelined rounds, at most `scan`
        hash reads per non-empty stage set."""
        queue = self.tenant.queues.get(queue_id)
        if queue is None:
            raise QueueNotFound(f"queue {queue_id!r} does not exist", queue=queue_id)
        scan = 50
        routing = [
            queue,
            *[q for q in await self._subqueue_configs() if subqueues.base_id(q.id) == queue.id],
        ]
        k = self.keys
        pools = queue.pools_at(len(queue.stages) - 1)
        pipe = self.redis.pipeline(transaction=False)
        sets = 0
        for q in routing:
            for ch in q.channels:
                for stage in range(len(q.stages)):
                    pipe.zcard(k.waiting(q.id, ch, stage))
                    pipe.zrange(k.waiting(q.id, ch, stage), 0, scan - 1)
                    sets += 1
                    for pool in pools:
                        pipe.zcard(k.ready(q.id, ch, stage, pool))
        for q in routing:
            pipe.zcard(k.held(q.id))
        replies = await pipe.execute()
        waiting = ready = 0
        ahead: list[str] = []
        i = 0
        for _ in range(sets):
            waiting += int(replies[i])
            ahead += [_s(m) for m in replies[i + 1]]
            ready += sum(int(n) for n in replies[i + 2 : i + 2 + len(pools)])
            i += 2 + len(pools)
        held = sum(int(n) for n in replies[i:])
        longest = None
        if ahead:
            pipe = self.redis.pipeline(transaction=False)
            for cid in ahead:
                pipe.hget(k.contact(cid), "created")
            created = [int(_s(v)) for v in await pipe.execute() if v is not None]
            if created:
                longest = max(0.0, (self.clock.now_ms() - min(created)) / 1000)
        return {
            "waiting": waiting,
            "held": held,
            "longest_wait_s": longest,
            "agents_available": ready,
        }

    # -- timers ------------------------------------------------------------

    async def run_timers(self, batch: int = 500) -> tuple[int, int | None]:
        """Apply due timers once. Returns (applied, due ms of the next timer or None)."""
        applied, nxt = await self._run("timers", batch)
        nxt_s = _s(nxt)
        return int(applied), (int(float(nxt_s)) if nxt_s else None)

    async def run_due_timers(self, batch: int = 500) -> int:
        """Apply timers until none is due at the clock's current time, including
        timers that applying others made due (an overflow stage catching up).
        Pool gates follow their hours first, so the timers see the pools open now."""
        await self.pool_hours.sync()
        await self.vendor_state.refresh()
        total = 0
        for _ in range(10_000):  # each round makes progress; this only bounds a bug
            applied, nxt = await self.run_timers(batch)
            total += applied
            if applied < batch and (nxt is None or nxt > self.clock.now_ms()):
                break
        return total

    # -- SLA (see sla.py) ----------------------------------------------------

    async def _reopen_sla(self, contact_id: str) -> str:
        """The SLA clocks a reopen of this contact would start ('' when it cannot reopen
        or its queue has no timers): one read, only for a completed contact."""
        # the priority it arrived with: prio0 is kept when an escalation raised it
        state, queue_id, channel, prio, prio0 = await self.redis.hmget(
            self.keys.contact(contact_id), ["state", "queue", "channel", "prio", "prio0"]
        )
        if state != b"completed" or queue_id is None or channel is None:
            return ""
        queue = self.tenant.queues.get(subqueues.base_id(_s(queue_id)))
        if queue is None:
            return ""
        now = self.clock.now_ms()
        arrival_prio = int(_s(prio0 or prio or b"0"))
        clocks = sla_clocks.plan(self.tenant, queue, _s(channel), arrival_prio, now)
        return sla_clocks.timer_spec(clocks)

    async def respond(self, contact_id: str, agent_id: str | None = None) -> tuple[bool, int, str]:
        """Record the agent's first reply (meets the first-response SLA). Returns
        (recorded now, first response ms, agent); a repeat changes nothing."""
        validate_id(contact_id, "contact")
        if agent_id:
            validate_id(agent_id, "agent")
        new, at, agent = await self._run("respond", contact_id, agent_id or "")
        return bool(int(new)), int(_s(at)), _s(agent)

    # -- customer surveys ----------------------------------------------------

    async def survey(
        self, contact_id: str, csat: int | None = None, nps: int | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Record the customer's survey of an answered contact (CSAT 1-5, NPS 0-10),
        credited to its answering agent and pool. Returns (recorded now, the survey:
        contact, agent, pool, csat, nps, at); a repeat with the same values changes
        nothing, one with other values is a conflict (one survey per contact)."""
        validate_id(contact_id, "contact")
        for name, value, lo, hi in (("csat", csat, 1, 5), ("nps", nps, 0, 10)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi
            ):
                raise ValidationError(f"{name}: must be an integer {lo}..{hi}", field=name)
        if csat is None and nps is None:
            raise ValidationError("csat: give csat, nps or both", field="csat")
        new, at, agent, pool, c_raw, n_raw = await self._run(
            "survey", contact_id, "" if csat is None else csat, "" if nps is None else nps
        )
        c_s, n_s = _s(c_raw), _s(n_raw)
        return bool(int(new)), {
            "contact": contact_id,
            "agent": _s(agent),
            "pool": _s(pool),
            "csat": int(c_s) if c_s else None,
            "nps": int(n_s) if n_s else None,
            "at": int(_s(at)),
        }

    # -- erasure (DELETE /v1/customers/{id}, docs/privacy.md) ------------------

    async def erase_customer(
        self, customer_digest: str, digests: list[str], erasure: str, batch: int = 200
    ) -> int:
        """Erase the personal data of every contact in the customer index sets
        `digests` (lib/customers.lua), `batch` contacts per atomic script run.
        `customer_digest`: the `cust` digest of its id, or ''. Returns how many."""
        total = 0
        while True:
            done, left = await self._run(
                "erase_customer", erasure, batch, customer_digest, *digests
            )
            total += int(done)
            if int(left) == 0:  # each run pops at least one id while any is left
                return total

    @staticmethod
    def customer_digest(customer_id: str) -> str:
        """The `cust` digest create_contact stores for a customer id."""
        return _digest(customer_id)
