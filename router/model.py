"""The domain model: contacts, customers and agents, as the engine reads and writes them.

Routing fields live in plain Redis hash fields (the Lua scripts need them); the
rest of a record is one msgpack blob (`data`), decoded here. See `codec.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PREVIEW_MAX = 1000  # characters kept of a contact's body; the platform keeps the rest
SUBJECT_MAX = 300
ATTRIBUTES_MAX = 64


class ContactState(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    WRAP_UP = "wrap_up"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


FINISHED_STATES = frozenset({ContactState.COMPLETED, ContactState.ABANDONED})


class AgentStatus(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Customer:
    id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    social_handle: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class NewContact:
    """What a channel adapter or the ingest API hands the engine."""

    channel: str
    queue: str
    customer: Customer = field(default_factory=Customer)
    subject: str = ""
    preview: str = ""
    language: str | None = None
    skills: dict[str, int] = field(default_factory=dict)  # extra requirements, level 1..5
    priority: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    idempotency_key: str | None = None
    preferred_agent: str | None = None
    id: str | None = None  # generated when absent
    # data residency: only pools allowed for this region are offered the contact
    # (docs/vendors.md, "Data residency"); a-z 0-9 -, at most 32 characters
    region: str | None = None


@dataclass(frozen=True)
class RouteResult:
    contact_id: str
    state: ContactState
    agent: str | None
    queue: str
    duplicate: bool = False
    # Set by create_contact when the contact is queued: its 1-based place in line,
    # and the estimated wait in seconds (None when there is no basis for one).
    position: int | None = None
    estimated_wait_s: float | None = None


@dataclass(frozen=True)
class Contact:
    id: str
    tenant: str
    channel: str
    queue: str
    state: ContactState
    stage: int
    priority: int
    created_ms: int
    customer: Customer
    subject: str
    preview: str
    language: str | None
    skills: dict[str, int]
    attributes: dict[str, Any]
    external_id: str | None
    agent: str | None
    pool: str | None
    offer_deadline_ms: int | None
    assigned_ms: int | None
    wrap_up_ms: int | None
    completed_ms: int | None
    disposition: str | None
    abandoned_ms: int | None
    preferred_agent: str | None
    why: dict[str, Any] | None
    first_response_ms: int | None = None  # POST /v1/contacts/{id}/respond, the first time
    # running SLA clocks, by code (a answer, f first response, r resolution):
    # (due ms, time allowed ms, warning ms); see router/sla.py
    sla_clocks: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # a contact held while its queue was closed: its arrival; `created_ms` is then
    # when it joined the queue, from which its wait counts
    arrived_ms: int | None = None
    region: str | None = None  # data-residency tag given at ingest


@dataclass(frozen=True)
class AgentSpec:
    """An agent as an admin or platform registers it."""

    id: str
    pool: str
    name: str = ""
    skills: dict[str, int] = field(default_factory=dict)  # proficiency 1..5
    capacity: dict[str, int] = field(default_factory=dict)  # channel -> concurrent contacts


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    pool: str
    skills: dict[str, int]
    capacity: dict[str, int]
    load: dict[str, int]
    status: AgentStatus
    reason: str | None
    idle_since_ms: int
    missed_offers: int
    last_seen_ms: int
    contacts: tuple[str, ...]
