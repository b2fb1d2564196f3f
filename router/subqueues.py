"""Sub-queues: per-contact skill requirements without per-decision skill checks.

A contact that needs skills beyond its queue's (say Spanish level 3 in an
English-and-Spanish billing queue) waits in a sub-queue `<queue>~<sig>`, where
`sig` names the contact's requirement. The sub-queue has the queue's settings
and the merged requirement, and every agent's eligibility for it is computed
once, when it is first used. Routing then stays O(log n). The number of
distinct sub-queues per tenant is bounded.

A contact's data-residency region rides on the same mechanism: it becomes the
pseudo-requirement `@region:<tag>` (REGION_PREFIX), which only agents of pools
allowed for that region meet (router/eligibility.py). It never shows among the
contact's `skills`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping

from .config.model import QueueConfig

MAX_SUBQUEUES = 256
SEP = "~"
REGION_PREFIX = "@region:"
# a region tag: what a vendor's `region` may be (router/config/vendors.py)
REGION_RE = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")


def is_region(value: object) -> bool:
    return isinstance(value, str) and REGION_RE.match(value) is not None


def requirement(skills: Mapping[str, int], region: str | None) -> dict[str, int]:
    """A contact's routing requirement: its extra skills, plus its region as the
    pseudo-requirement `@region:<tag>` (level 1) when it is tagged."""
    out = dict(skills)
    if region:
        out[REGION_PREFIX + region] = 1
    return out


def region_of(skills: Mapping[str, int]) -> str | None:
    """The region folded into a requirement by `requirement`, if any."""
    for key in skills:
        if key.startswith(REGION_PREFIX):
            return key[len(REGION_PREFIX) :]
    return None


def signature(skills: Mapping[str, int]) -> str:
    """Short stable name of a skill requirement ('' for none)."""
    if not skills:
        return ""
    text = ",".join(f"{k}={v}" for k, v in sorted(skills.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def covers(queue: QueueConfig, skills: Mapping[str, int]) -> bool:
    """Whether the queue's own requirement already implies `skills`. A region
    never is: a configured queue admits pools of every region."""
    if region_of(skills) is not None:
        return False
    return all(queue.skills.get(s, 0) >= level for s, level in skills.items())


def derive(queue: QueueConfig, skills: Mapping[str, int], sig: str) -> QueueConfig:
    merged = dict(queue.skills)
    for s, level in skills.items():
        merged[s] = max(merged.get(s, 0), level)
    return dataclasses.replace(queue, id=f"{queue.id}{SEP}{sig}", skills=merged)


def encode(queue: QueueConfig, skills: Mapping[str, int]) -> str:
    return queue.id + "|" + ",".join(f"{k}={v}" for k, v in sorted(skills.items()))


def decode(value: str) -> tuple[str, dict[str, int]]:
    base, _, rest = value.partition("|")
    skills = {}
    for part in filter(None, rest.split(",")):
        k, _, v = part.partition("=")
        skills[k] = int(v)
    return base, skills


def base_id(queue_id: str) -> str:
    return queue_id.split(SEP, 1)[0]
