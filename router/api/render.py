"""JSON representations of engine objects, as the API returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..model import Agent, Contact
from ..sla import Sla


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sla_json(sla: Sla | None) -> dict[str, Any] | None:
    if sla is None:
        return None
    return {
        "threshold_s": sla.threshold_s,
        "target": sla.target,
        "due_at": rfc3339(sla.due_ms),
        "status": sla.status.value,
        "answered_in_s": None if sla.answered_in_ms is None else sla.answered_in_ms / 1000,
        "kind": sla.kind.value,
        "warning_at": rfc3339(sla.warn_ms),
        "resolution": None
        if sla.resolution_due_ms is None or sla.resolution_status is None
        else {"due_at": rfc3339(sla.resolution_due_ms), "status": sla.resolution_status.value},
    }


def contact_json(c: Contact, sla: Sla | None = None) -> dict[str, Any]:
    """`sla` is computed by the caller, which knows the queue config and the time."""
    return {
        "id": c.id,
        "state": c.state.value,
        "channel": c.channel,
        "queue": c.queue,
        "stage": c.stage,
        "priority": c.priority,
        "agent": c.agent,
        "pool": c.pool,
        "created_at": rfc3339(c.created_ms),
        "arrived_at": rfc3339(c.created_ms if c.arrived_ms is None else c.arrived_ms),
        "offer_expires_at": rfc3339(c.offer_deadline_ms),
        "assigned_at": rfc3339(c.assigned_ms),
        "wrap_up_at": rfc3339(c.wrap_up_ms),
        "completed_at": rfc3339(c.completed_ms),
        "abandoned_at": rfc3339(c.abandoned_ms),
        "first_response_at": rfc3339(c.first_response_ms),
        "disposition": c.disposition,
        "preferred_agent": c.preferred_agent,
        "customer": c.customer.to_dict(),
        "subject": c.subject,
        "preview": c.preview,
        "language": c.language,
        "region": c.region,
        "skills": c.skills,
        "attributes": c.attributes,
        "external_id": c.external_id,
        "routing": c.why,
        "sla": sla_json(sla),
    }


def agent_json(a: Agent, offers: list[str]) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "pool": a.pool,
        "skills": a.skills,
        "capacity": a.capacity,
        "load": a.load,
        "status": a.status.value,
        "reason": a.reason,
        "idle_since": rfc3339(a.idle_since_ms),
        "missed_offers": a.missed_offers,
        "last_seen": rfc3339(a.last_seen_ms),
        "offers": offers,
        "contacts": [c for c in a.contacts if c not in offers],
    }


def offer_json(c: Contact, view: dict[str, Any] | None = None) -> dict[str, Any]:
    """`view`: the contact as the agent may see it (defaults to `contact_json(c)`)."""
    return {
        "id": c.id,
        "contact": view if view is not None else contact_json(c),
        "queue": c.queue,
        "expires_at": rfc3339(c.offer_deadline_ms),
    }
