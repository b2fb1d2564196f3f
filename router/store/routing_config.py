"""The routing config as the Lua scripts read it: flat hash fields per tenant and queue.

Written by the engine at start-up (and on config reload) from the typed config;
scripts read one queue hash with one HMGET per decision.
"""

from __future__ import annotations

from redis.typing import EncodableT, FieldT

from ..config.model import EscalationAction, FullAction, QueueConfig, Strategy, TenantConfig

_STRATEGY = {
    Strategy.LONGEST_IDLE: "li",
    Strategy.LEAST_OCCUPIED: "lo",
    Strategy.HIGHEST_PROFICIENCY: "hp",
}


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def tenant_fields(tenant: TenantConfig) -> dict[FieldT, EncodableT]:
    r = tenant.routing
    return {
        "excl": "," + ",".join(r.exclusive_channels) + ",",
        "maxmiss": r.max_missed_offers,
        "presence": _ms(r.presence_timeout_s),
        "ret": _ms(tenant.retention.finished_contact_s),
        "prefms": _ms(r.preferred_agent_s) if r.prefer_last_agent else 0,
        "xferms": _ms(r.transfer_wait_s),
    }


def queue_fields(tenant: TenantConfig, queue: QueueConfig) -> dict[FieldT, EncodableT]:
    first_stage: dict[str, int] = {}
    for k, stage in enumerate(queue.stages):
        for p in stage.pools:
            first_stage.setdefault(p, k)
    return {
        "chans": "," + ",".join(queue.channels) + ",",
        "nst": len(queue.stages),
        "after": ",".join(str(_ms(s.after_s)) for s in queue.stages),
        "pools": ",".join(f"{p}={k}" for p, k in first_stage.items()),
        # early-opening triggers of each stage (docs/vendors.md, "Overflow triggers"):
        # estimated-wait threshold in ms (0 = none) and when_unstaffed (1/0)
        "ewait": ",".join(
            str(_ms(s.estimated_wait_s) if s.estimated_wait_s is not None else 0)
            for s in queue.stages
        ),
        "unst": ",".join("1" if s.when_unstaffed else "0" for s in queue.stages),
        "aging": _ms(queue.aging_s),
        "offer": _ms(queue.offer_timeout_s),
        "strat": _STRATEGY[queue.strategy],
        "max": queue.max_size or 0,
        "full": "overflow" if queue.when_full is FullAction.OVERFLOW else "reject",
        "ovq": queue.overflow_queue or "",
        "wrap": ",".join(f"{ch}={tenant.wrap_up_ms(queue, ch)}" for ch in queue.channels),
        # SLA target, kept with the queue for the SLA timers and metrics to read
        "sla_ms": _ms(queue.sla.threshold_s),
        "sla_target": repr(queue.sla.target),
        # escalation actions, read by the timers script when an SLA clock fires
        "esc": escalation_field(queue),
    }


def escalation_field(queue: QueueConfig) -> str:
    """`<on>,<sla>,<action>,<arg>;...`: sla `*` is the contact's main clock (answer or
    first response); arg is the levels (raise_priority), the queue (move_queue) or
    the webhook subscription (notify). Ids never hold `,` or `;`."""
    out = []
    for e in queue.sla.escalation:
        arg = {
            EscalationAction.RAISE_PRIORITY: str(e.by),
            EscalationAction.MOVE_QUEUE: e.queue or "",
            EscalationAction.NOTIFY: e.webhook or "",
        }.get(e.action, "")
        out.append(f"{e.on},{e.sla.value if e.sla else '*'},{e.action.value},{arg}")
    return ";".join(out)
