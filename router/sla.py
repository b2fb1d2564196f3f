"""SLA clocks of a contact: which apply, when they warn and fall due, and its status.

A queue's policy (`QueueConfig.sla`) gives each contact up to two clocks:
  * the main clock: *answer* on live channels (voice, chat), within `threshold_s`,
    met when an agent accepts; *first response* on the others (email, social,
    SMS...), within `first_response_s` (or `threshold_s`), met by
    POST /v1/contacts/{id}/respond;
  * *resolution*, within `resolution_s` when set, met when the contact completes.
Per-priority overrides pick other durations, and a policy `calendar` counts
business time only. Due times are computed here, on the engine's clock, and
handed to the scripts that start the clocks (create_contact, a reopen); the
timers script fires the warnings and breaches. Only queues whose config has an
`sla` table run timers (`SlaTarget.timed`); the others report their service
level against the default target.

Abandons inside the threshold are "short abandons", which contact centers leave
out of the service level; later ones count against it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

from .calendar import Calendar
from .config.model import (
    LIVE_CHANNELS,
    CalendarConfig,
    ClosedAction,
    EscalationAction,
    QueueConfig,
    SlaKind,
    TenantConfig,
)
from .errors import QueueClosed
from .model import Contact, ContactState

# one-letter codes of the clocks in timer members (`aw|<id>`...) and hash fields (`sl:a`...)
KIND_CODE = {SlaKind.ANSWER: "a", SlaKind.FIRST_RESPONSE: "f", SlaKind.RESOLUTION: "r"}
CODE_KIND = {v: k for k, v in KIND_CODE.items()}


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
    kind: SlaKind = SlaKind.ANSWER
    warn_ms: int | None = None  # when the warning fires (timed queues)
    resolution_due_ms: int | None = None
    resolution_status: SlaStatus | None = None


@dataclass(frozen=True)
class SlaClock:
    """One running clock: warning and breach times, and the time allowed (ms)."""

    kind: SlaKind
    start_ms: int
    warn_ms: int
    due_ms: int
    target_ms: int


@lru_cache(maxsize=256)
def calendar_of(config: CalendarConfig) -> Calendar:
    """One Calendar per config (configs are frozen and hashable)."""
    return Calendar(config)


def admit(
    tenant: TenantConfig, queue: QueueConfig, now_ms: int, channel: str
) -> tuple[QueueConfig, int]:
    """Where a new contact goes given queue hours: (queue, opening it is held for, or 0).

    An open queue (or one without hours) takes it at once. A closed one holds it
    until its next opening (when_closed = "wait"), sends it to its closed_queue,
    which follows its own hours ("overflow"), or refuses it ("refuse"), raising
    QueueClosed before anything is written. A contact on a live channel (voice,
    chat) is never held: a caller cannot wait all night, so where the chain would
    hold it (the loader forbids that; a config from before the rule may not), it is
    refused, naming the queue asked for and its opening."""
    seen: set[str] = set()
    q = queue
    while q.hours is not None:
        cal = calendar_of(tenant.calendars[q.hours])
        if cal.is_open(now_ms):
            return q, 0
        opens = cal.next_open(now_ms)
        if q.when_closed is ClosedAction.REFUSE:
            raise closed_error(q.id, opens)
        if q.when_closed is ClosedAction.WAIT or q.id in seen or q.closed_queue is None:
            # (a loop of closed queues holds in the first one seen twice)
            if channel in LIVE_CHANNELS:
                first = calendar_of(tenant.calendars[queue.hours]) if queue.hours else cal
                raise closed_error(queue.id, first.next_open(now_ms))
            return q, opens
        seen.add(q.id)
        q = tenant.queues[q.closed_queue]
    return q, 0


def _utc(ms: int) -> str:
    at = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return at.replace("+00:00", "Z")


def closed_error(queue_id: str, opens_ms: int, contact_id: str | None = None) -> QueueClosed:
    """The 409 of a closed queue: a new contact refused, or a held contact that a
    supervisor tried to offer before the opening (`contact` then names it)."""
    at = _utc(opens_ms)
    if contact_id is None:
        return QueueClosed(
            f"queue {queue_id!r} is closed; it opens at {at}",
            reason="queue_closed",
            queue=queue_id,
            opens_at=at,
            opens_at_ms=opens_ms,
        )
    return QueueClosed(
        f"contact {contact_id!r} is held until queue {queue_id!r} opens at {at}; "
        "it is offered then",
        reason="queue_closed",
        queue=queue_id,
        contact=contact_id,
        opens_at=at,
        opens_at_ms=opens_ms,
    )


def unknown_notify(tenant: TenantConfig, known: Collection[str]) -> list[str]:
    """`notify` escalations naming a webhook subscription that is not in `known`
    (the config's and the admin API's): their contact.escalated events would reach
    nobody. A warning, not an error: the admin API may create the subscription later."""
    out = []
    for qid, queue in tenant.queues.items():
        for i, esc in enumerate(queue.sla.escalation):
            if esc.action is EscalationAction.NOTIFY and esc.webhook not in known:
                out.append(
                    f"queues.{qid}.sla.escalation[{i}].webhook: no webhook subscription "
                    f"{esc.webhook!r} in [webhooks] or made with the admin API; its "
                    "contact.escalated events are delivered to nobody until one is created"
                )
    return out


def main_kind(channel: str) -> SlaKind:
    return SlaKind.ANSWER if channel in LIVE_CHANNELS else SlaKind.FIRST_RESPONSE


def targets_s(queue: QueueConfig, channel: str, priority: int) -> dict[SlaKind, float]:
    """Seconds allowed per clock for a contact of this channel and priority."""
    sla = queue.sla
    threshold, first, resolution = sla.threshold_s, sla.first_response_s, sla.resolution_s
    for p in sla.priority:  # sorted by min: the highest matching min wins
        if p.min <= priority:
            threshold = p.threshold_s if p.threshold_s is not None else threshold
            first = p.first_response_s if p.first_response_s is not None else first
            resolution = p.resolution_s if p.resolution_s is not None else resolution
    kind = main_kind(channel)
    out = {kind: threshold if kind is SlaKind.ANSWER or first is None else first}
    if resolution is not None:
        out[SlaKind.RESOLUTION] = resolution
    return out


def plan(
    tenant: TenantConfig, queue: QueueConfig, channel: str, priority: int, start_ms: int
) -> list[SlaClock]:
    """The clocks a contact starts at `start_ms` (none when the queue has no timers)."""
    if not queue.sla.timed:
        return []
    cal = calendar_of(tenant.calendars[queue.sla.calendar]) if queue.sla.calendar else None
    out = []
    for kind, seconds in targets_s(queue, channel, priority).items():
        target = round(seconds * 1000)
        warn_len = round(target * queue.sla.warn_at)
        if cal is None:
            warn, due = start_ms + warn_len, start_ms + target
        else:
            warn, due = cal.add_business(start_ms, warn_len), cal.add_business(start_ms, target)
        out.append(SlaClock(kind, start_ms, warn, due, target))
    return out


def timer_spec(clocks: list[SlaClock]) -> str:
    """`<code>:<warn>:<due>:<target>;...`: what the scripts' `start_sla` reads."""
    return ";".join(f"{KIND_CODE[c.kind]}:{c.warn_ms}:{c.due_ms}:{c.target_ms}" for c in clocks)


def _left(c: Contact, due: int, now_ms: int) -> SlaStatus:
    left = c.abandoned_ms if c.abandoned_ms is not None else now_ms
    return SlaStatus.SHORT_ABANDON if left <= due else SlaStatus.ABANDONED


def sla_of(c: Contact, queue: QueueConfig, now_ms: int) -> Sla:
    """The contact's main clock (and resolution) at `now_ms`. Due times started by
    the scripts are used as stored; untimed queues count from arrival."""
    kind = main_kind(c.channel) if queue.sla.timed else SlaKind.ANSWER
    threshold_ms = round(queue.sla.threshold_s * 1000)
    due = c.created_ms + threshold_ms
    stored = c.sla_clocks.get(KIND_CODE[kind])
    warn = None
    if stored is not None:
        due, threshold_ms, warn = stored
    done_ms = c.assigned_ms
    if kind is SlaKind.FIRST_RESPONSE:
        done_ms = c.first_response_ms if c.first_response_ms is not None else c.completed_ms
    done_in = None if done_ms is None else done_ms - c.created_ms
    if done_ms is not None:
        status = SlaStatus.MET if done_ms <= due else SlaStatus.MISSED
    elif c.state is ContactState.ABANDONED:
        status = _left(c, due, now_ms)
    else:
        status = SlaStatus.WAITING if now_ms <= due else SlaStatus.BREACHED
    res_due: int | None = None
    res_status: SlaStatus | None = None
    res = c.sla_clocks.get(KIND_CODE[SlaKind.RESOLUTION])
    if res is not None:
        res_due = res[0]
        if c.completed_ms is not None:
            res_status = SlaStatus.MET if c.completed_ms <= res_due else SlaStatus.MISSED
        elif c.state is ContactState.ABANDONED:
            res_status = SlaStatus.ABANDONED
        else:
            res_status = SlaStatus.WAITING if now_ms <= res_due else SlaStatus.BREACHED
    return Sla(
        threshold_ms / 1000,
        queue.sla.target,
        due,
        status,
        done_in,
        kind,
        warn,
        res_due,
        res_status,
    )
