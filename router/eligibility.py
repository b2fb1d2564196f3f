"""Where an agent may work: its lanes, computed once per agent or config change.

A lane is one queue and one of its channels. For each lane an agent serves we
keep its *entry stage*: the first overflow stage at which its pool is admitted
and its skills meet the (possibly relaxed) requirement. Stages only widen, so
the agent stays eligible at every later stage. Routing then never evaluates
skills per decision; it reads ready sets keyed by entry stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .config.model import QueueConfig, TenantConfig


def entry_stage(queue: QueueConfig, pool: str, skills: Mapping[str, int]) -> int | None:
    for k in range(len(queue.stages)):
        if pool not in queue.pools_at(k):
            continue
        need = queue.requirement_at(k)
        if all(skills.get(s, 0) >= level for s, level in need.items()):
            return k
    return None


def proficiency_rank(queue: QueueConfig, skills: Mapping[str, int]) -> int:
    """Sum of the agent's levels in the queue's skills (0..99): the highest-proficiency key."""
    return min(99, sum(skills.get(s, 0) for s in queue.skills))


def agent_lanes(
    queues: Iterable[QueueConfig],
    pool: str,
    skills: Mapping[str, int],
    capacity: Mapping[str, int],
) -> dict[str, str]:
    """`queue:channel` -> `entry_stage:rank` for every lane the agent may serve."""
    lanes: dict[str, str] = {}
    for queue in queues:
        e = entry_stage(queue, pool, skills)
        if e is None:
            continue
        rank = proficiency_rank(queue, skills)
        for ch in queue.channels:
            if capacity.get(ch, 0) > 0:
                lanes[f"{queue.id}:{ch}"] = f"{e}:{rank}"
    return lanes


def pool_lanes(queues: Iterable[QueueConfig], pool: str) -> list[str]:
    """Every lane whose queue admits `pool` at some stage."""
    out: list[str] = []
    for queue in queues:
        if pool in queue.pools_at(len(queue.stages) - 1):
            out.extend(f"{queue.id}:{ch}" for ch in queue.channels)
    return out


def all_lanes(tenant: TenantConfig) -> list[str]:
    return [f"{q.id}:{ch}" for q in tenant.queues.values() for ch in q.channels]
