"""Where an agent may work: its lanes, computed once per agent or config change.

A lane is one queue and one of its channels. For each lane an agent serves we
keep its *entry stage*: the first overflow stage at which its pool is admitted
and its skills meet the (possibly relaxed) requirement. Stages only widen, so
the agent stays eligible at every later stage. Routing then never evaluates
skills per decision; it reads ready sets keyed by entry stage.

What a pool's *contract* allows is folded in here too (`PoolScope`): a pool run
by a vendor gets no lane for a queue or channel outside the vendor's contract,
and no lane in a sub-queue of a data-residency region it is not allowed for
(the region is the pseudo-requirement `@region:<tag>`, router/subqueues.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .config.model import PoolKind, QueueConfig, TenantConfig
from .subqueues import REGION_PREFIX, SEP, region_of


@dataclass(frozen=True)
class PoolScope:
    """What a pool may serve; None: no limit. An empty `regions` serves no tagged contact."""

    channels: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    regions: frozenset[str] | None = None

    def allows_region(self, region: str | None) -> bool:
        return not region or self.regions is None or region in self.regions

    def allows_queue(self, queue_id: str) -> bool:
        """`queue_id` may be a sub-queue: its configured queue decides."""
        return self.queues is None or queue_id.split(SEP, 1)[0] in self.queues

    def allows_channel(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


ANY = PoolScope()


def pool_scope(tenant: TenantConfig, pool_id: str) -> PoolScope:
    """The scope of `pool_id` under `tenant`'s config: an outsourced pool is bound by
    its vendor's channels, queues and region (a vendor without a region serves no
    tagged contact); an in-house pool serves every region unless it lists `regions`."""
    pool = tenant.pools.get(pool_id)
    if pool is None:
        return ANY
    if pool.kind is PoolKind.OUTSOURCED and pool.vendor is not None:
        v = tenant.vendors.get(pool.vendor)
        if v is None:
            return PoolScope(regions=frozenset())
        return PoolScope(
            channels=None if v.channels is None else frozenset(v.channels),
            queues=None if v.queues is None else frozenset(v.queues),
            regions=frozenset() if v.region is None else frozenset({v.region}),
        )
    return PoolScope(regions=None if pool.regions is None else frozenset(pool.regions))


def regions_field(scope: PoolScope) -> str:
    """The `rg:<pool>` value that routing scripts read: "*" (every region) or
    ",eu,us," (the regions allowed; "," for none)."""
    if scope.regions is None:
        return "*"
    return "," + "".join(f"{r}," for r in sorted(scope.regions))


def entry_stage(
    queue: QueueConfig, pool: str, skills: Mapping[str, int], scope: PoolScope = ANY
) -> int | None:
    if not scope.allows_queue(queue.id):
        return None
    for k in range(len(queue.stages)):
        if pool not in queue.pools_at(k):
            continue
        need = queue.requirement_at(k)
        if all(_meets(skills, scope, s, level) for s, level in need.items()):
            return k
    return None


def _meets(skills: Mapping[str, int], scope: PoolScope, skill: str, level: int) -> bool:
    if skill.startswith(REGION_PREFIX):
        # a region is not a skill: the pool's contract decides, not the agent
        return scope.allows_region(skill[len(REGION_PREFIX) :])
    return skills.get(skill, 0) >= level


def proficiency_rank(queue: QueueConfig, skills: Mapping[str, int]) -> int:
    """Sum of the agent's levels in the queue's skills (0..99): the highest-proficiency key."""
    return min(99, sum(skills.get(s, 0) for s in queue.skills))


def agent_lanes(
    queues: Iterable[QueueConfig],
    pool: str,
    skills: Mapping[str, int],
    capacity: Mapping[str, int],
    scope: PoolScope = ANY,
) -> dict[str, str]:
    """`queue:channel` -> `entry_stage:rank` for every lane the agent may serve."""
    lanes: dict[str, str] = {}
    for queue in queues:
        e = entry_stage(queue, pool, skills, scope)
        if e is None:
            continue
        rank = proficiency_rank(queue, skills)
        for ch in queue.channels:
            if capacity.get(ch, 0) > 0 and scope.allows_channel(ch):
                lanes[f"{queue.id}:{ch}"] = f"{e}:{rank}"
    return lanes


def pool_lanes(queues: Iterable[QueueConfig], pool: str, scope: PoolScope = ANY) -> list[str]:
    """Every lane whose queue admits `pool` at some stage, within the pool's scope."""
    out: list[str] = []
    for queue in queues:
        if not scope.allows_queue(queue.id) or pool not in queue.pools_at(len(queue.stages) - 1):
            continue
        if not scope.allows_region(region_of(queue.skills)):
            continue
        out.extend(f"{queue.id}:{ch}" for ch in queue.channels if scope.allows_channel(ch))
    return out


def all_lanes(tenant: TenantConfig) -> list[str]:
    return [f"{q.id}:{ch}" for q in tenant.queues.values() for ch in q.channels]


def region_pools(
    tenant: TenantConfig, queues: Iterable[QueueConfig], channel: str, region: str
) -> list[str]:
    """Pools of `queues` (at any stage) that may take a `channel` contact tagged
    `region`: empty means such a contact would wait for ever."""
    out: list[str] = []
    for queue in queues:
        for pool in queue.pools_at(len(queue.stages) - 1):
            scope = pool_scope(tenant, pool)
            if (
                pool not in out
                and scope.allows_region(region)
                and scope.allows_queue(queue.id)
                and scope.allows_channel(channel)
            ):
                out.append(pool)
    return out
