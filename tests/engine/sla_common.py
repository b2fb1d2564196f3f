"""Shared config and helpers of the SLA engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.engine import Engine
from router.model import NewContact

from .test_transitions import events

# Monday 23 November 2026, 10:00 UTC
MONDAY_10 = int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000)
H = 3_600_000

# Routing without presence timeouts or missed-offer penalties, an in-house pool and
# a nearshore vendor pool: the start of every SLA test tenant.
BASE = """
[routing]
presence_timeout_s = 0
max_missed_offers = 0

[pools.inhouse]

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"
"""

SLA_BODY = (
    BASE
    + """
[routing.wrap_up_s]
chat = 0
email = 0
voice = 0

[calendars.office]
timezone = "UTC"
hours = { mon = ["09:00-12:00", "13:00-17:00"], tue = ["09:00-12:00", "13:00-17:00"], wed = ["09:00-12:00", "13:00-17:00"], thu = ["09:00-12:00", "13:00-17:00"], fri = ["09:00-12:00", "13:00-17:00"] }
holidays = ["2026-11-26"]

[queues.chat]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 1000

[queues.chat.sla]
threshold_s = 20
warn_at = 0.5

[[queues.chat.sla.priority]]
min = 5
threshold_s = 10

[[queues.chat.overflow]]
after_s = 600
pools = ["near"]

[queues.email]
channel = "email"
pools = ["inhouse"]
offer_timeout_s = 1000

[queues.email.sla]
first_response_s = 3600
resolution_s = 7200

[queues.email_biz]
channel = "email"
pools = ["inhouse"]
offer_timeout_s = 1000

[queues.email_biz.sla]
first_response_s = 3600
calendar = "office"

[queues.plain]
channel = "chat"
pools = ["inhouse"]
offer_timeout_s = 1000
"""
)


def chat(**kw: Any) -> NewContact:
    return NewContact(channel="chat", queue=kw.pop("queue", "chat"), **kw)


def email(**kw: Any) -> NewContact:
    return NewContact(channel="email", queue=kw.pop("queue", "email"), **kw)


async def typed(eng: Engine, *types: str) -> list[dict[str, str]]:
    """The tenant's events of these types, oldest first."""
    return [e for e in await events(eng) if e["type"] in types]


SLA_EVENTS = ("sla.warning", "sla.breached")
