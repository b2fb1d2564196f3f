"""A contact's service level against its queue's target ("80% answered in 20 s").

The SLA clock starts when the contact arrives and keeps running through
transfers; the contact is answered when an agent accepts it. Abandons inside
the threshold are "short abandons", which contact centers leave out of the
service level; later ones count against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .config.model import QueueConfig
from .model import Contact, ContactState


class SlaStatus(StrEnum):
    WAITING = "waiting"  # not answered, still inside the threshold
    BREACHED = "breached"  # not answered, past the threshold
    MET = "met"  # answered inside the threshold
    MISSED = "missed"  # answered after it
    SHORT_ABANDON = "short_abandon"  # left inside the threshold: not counted
    ABANDONED = "abandoned"  # left after it: counts as missed


@dataclass(frozen=True)
class Sla:
    threshold_s: float
    target: float
    due_ms: int
    status: SlaStatus
    answered_in_ms: int | None


def sla_of(c: Contact, queue: QueueConfig, now_ms: int) -> Sla:
    threshold_ms = round(queue.sla.threshold_s * 1000)
    due = c.created_ms + threshold_ms
    answered_in = None if c.assigned_ms is None else c.assigned_ms - c.created_ms
    if answered_in is not None:
        status = SlaStatus.MET if answered_in <= threshold_ms else SlaStatus.MISSED
    elif c.state is ContactState.ABANDONED:
        left = c.abandoned_ms if c.abandoned_ms is not None else now_ms
        status = SlaStatus.SHORT_ABANDON if left <= due else SlaStatus.ABANDONED
    else:
        status = SlaStatus.WAITING if now_ms <= due else SlaStatus.BREACHED
    return Sla(queue.sla.threshold_s, queue.sla.target, due, status, answered_in)
