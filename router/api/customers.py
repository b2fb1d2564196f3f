"""Customers' personal data: erasure (GDPR) and the audit of who read it.

`DELETE /v1/customers/{id}` erases a customer's personal data from every contact
of the tenant that carries it; `{id}` is the customer id a channel or the ingest
API gave, or the customer's email address or phone number (contacts from email,
SMS or voice often carry only those). `GET /v1/audit` lists the reads of personal
data by outsourced pools, and the erasures. Both are for admins. docs/privacy.md.
"""

from __future__ import annotations

import re

from aiohttp import web

from .. import audit
from ..config.model import Role
from ..engine import Engine
from ..ids import new_contact_id
from ..privacy import email_digest, handle_digest, phone_digest
from .auth import principal
from .context import engine_for
from .metrics import parse_time
from .negotiate import respond
from .problems import ApiError

routes = web.RouteTableDef()

MAX_CUSTOMER_ID = 320
AUDIT_DEFAULT_SPAN_MS = 24 * 3600 * 1000
AUDIT_MAX_LIMIT = 1000


def invalid(field: str, detail: str) -> ApiError:
    return ApiError(400, "bad request", f"{field}: {detail}", field=field)


_PHONE = re.compile(r"^\+?[0-9 ().\-]{7,40}$")


def identity_digests(customer: str) -> list[str]:
    """The index sets (lib/customers.lua) that may hold this customer's contacts."""
    out = [Engine.customer_digest(customer), handle_digest(customer)]
    if "@" in customer:
        out.append(email_digest(customer))
    if _PHONE.match(customer):
        ph = phone_digest(customer)
        if ph:
            out.append(ph)
    return out


@routes.delete("/v1/customers/{id}")
async def erase_customer(request: web.Request) -> web.Response:
    """Erase the customer's personal data everywhere; 200 with how many contacts it
    cleared (0 for a customer never seen or already erased: a repeat is harmless)."""
    who = principal(request, Role.ADMIN)
    customer = request.match_info["id"]
    if not customer.strip() or len(customer) > MAX_CUSTOMER_ID:
        raise invalid("id", f"must be a customer id, email or phone of 1-{MAX_CUSTOMER_ID} chars")
    engine = engine_for(request, who)
    now = engine.clock.now_ms()
    erasure = "er-" + new_contact_id(now)
    digests = identity_digests(customer)
    count = await engine.erase_customer(digests[0], digests, erasure)
    await audit.append(
        engine.redis,
        engine.keys,
        audit.AuditEntry(
            action="erase", who=who.name or "admin", at=now, erasure=erasure, contacts=count
        ),
    )
    return respond(request, {"erasure": erasure, "contacts": count})


@routes.get("/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    """Audit entries of [from, to), oldest first, optionally of one pool, vendor or
    contact; `truncated` when more matched than `limit`."""
    who = principal(request, Role.ADMIN)
    engine = engine_for(request, who)
    q = request.query
    end = parse_time(q["to"], "to") if "to" in q else engine.clock.now_ms() + 1
    start = parse_time(q["from"], "from") if "from" in q else end - AUDIT_DEFAULT_SPAN_MS
    if start >= end:
        raise invalid("from", "must be before to")
    pool = q.get("pool")
    if pool is not None and pool not in engine.tenant.pools:
        raise invalid("pool", f"no pool named {pool[:64]!r}")
    vendor = q.get("vendor")
    if vendor is not None and vendor not in engine.tenant.vendors:
        raise invalid("vendor", f"no vendor named {vendor[:64]!r}")
    contact = q.get("contact")
    if contact is not None and not 1 <= len(contact) <= 200:
        raise invalid("contact", "must be a contact id")
    raw_limit = q.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= AUDIT_MAX_LIMIT:
        raise invalid("limit", f"must be an integer 1..{AUDIT_MAX_LIMIT}")
    entries, truncated = await audit.query(
        engine.redis,
        engine.keys,
        start,
        end,
        pool=pool,
        vendor=vendor,
        contact=contact,
        limit=int(raw_limit),
    )
    return respond(request, {"from": start, "to": end, "entries": entries, "truncated": truncated})
