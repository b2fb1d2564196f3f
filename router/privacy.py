"""What an outsourced pool's agents may see of a customer (docs/privacy.md).

Pure functions: the API builds a contact's full view, then `render` applies the
viewer's vendor policy to it. Email and phone are shown, masked
(`j***@example.com`, `+34 *** *** 123`) or replaced by a stable pseudonym per
customer (an HMAC of the customer's identity under a per-tenant secret, so the
same customer reads the same everywhere and it cannot be reversed without the
secret). The attributes the policy names in `hide` are removed, and a raw email
or phone that also appears in free text (subject, preview, attributes, timeline)
is replaced by what the field shows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from .config.model import TenantConfig, Visibility, VisibilityPolicy

PSEUDONYM_PREFIX = "cus_"
MIN_PHONE_DIGITS = 7  # fewer digits than this are masked entirely
_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class Policy:
    """The visibility clause that applies to one viewer: its pool's vendor's."""

    pool: str
    vendor: str
    visibility: VisibilityPolicy


def policy_for(tenant: TenantConfig, pool: str | None) -> Policy | None:
    """The policy of an outsourced pool with a vendor; None (everything shown) for
    in-house pools, unknown pools and viewers without a pool."""
    if pool is None:
        return None
    p = tenant.pools.get(pool)
    if p is None or p.vendor is None or p.kind.value != "outsourced":
        return None
    vendor = tenant.vendors.get(p.vendor)
    visibility = vendor.visibility if vendor is not None else VisibilityPolicy()
    return Policy(pool, p.vendor, visibility)


def _ascii_lower(text: str) -> str:
    """Lowercase as Lua's string.lower does it (ASCII only), so digests agree."""
    return "".join(ch.lower() if ch.isascii() else ch for ch in text)


def email_digest(email: str) -> str:
    """The erasure index's digest of an email (sets `cx:<digest>`, lib/customers.lua)."""
    return hashlib.sha1(f"email:{_ascii_lower(email)}".encode()).hexdigest()


def phone_digest(phone: str) -> str | None:
    """The erasure index's digest of a phone: its ASCII digits, when 7 or more."""
    digits = re.sub(r"[^0-9]", "", phone)
    return hashlib.sha1(f"phone:{digits}".encode()).hexdigest() if len(digits) >= 7 else None


def handle_digest(handle: str) -> str:
    """The erasure index's digest of a social handle (Messenger, Instagram, a
    WhatsApp number used as a handle), compared without case."""
    return hashlib.sha1(f"handle:{_ascii_lower(handle.strip())}".encode()).hexdigest()


def contact_digests(email: str | None, phone: str | None, handle: str | None = None) -> list[str]:
    """The email, phone and social-handle digests a new contact is indexed under."""
    out = [email_digest(email)] if email else []
    ph = phone_digest(phone) if phone else None
    out += [ph] if ph else []
    return out + ([handle_digest(handle)] if handle and handle.strip() else [])


def mask_email(email: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`: the first letter and the domain."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(phone: str) -> str:
    """`+34 612 345 123` -> `+34 *** *** 123`: the country prefix and the last 3 digits."""
    digits = _NON_DIGITS.sub("", phone)
    if len(digits) < MIN_PHONE_DIGITS:
        return "***"
    prefix = ""
    if phone.strip().startswith("+"):
        prefix = "+" + digits[: 1 if digits[0] in "17" else 2] + " "
    return f"{prefix}*** *** {digits[-3:]}"


def customer_identity(customer: dict[str, Any]) -> str:
    """What makes a customer the same customer: its id, else its email, else its phone."""
    if customer.get("id"):
        return "id:" + str(customer["id"])
    if customer.get("email"):
        return "email:" + str(customer["email"]).strip().lower()
    if customer.get("phone"):
        return "phone:" + _NON_DIGITS.sub("", str(customer["phone"]))
    return "handle:" + str(customer.get("social_handle", ""))


def pseudonym(secret: bytes, identity: str) -> str:
    """A stable, non-reversible name for a customer: `cus_` + 16 hex of an HMAC-SHA256."""
    mac = hmac.new(secret, identity.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + mac[:16]


def _apply(value: str, how: Visibility, masker: Any, token: str) -> str:
    if how is Visibility.SHOW:
        return value
    if how is Visibility.TOKENIZE:
        return token
    return str(masker(value))


def _scrub(obj: Any, subs: list[tuple[re.Pattern[str], str]]) -> Any:
    """`obj` with every raw value of `subs` replaced in its strings, at any depth."""
    if isinstance(obj, str):
        for pattern, shown in subs:
            obj = pattern.sub(shown, obj)
        return obj
    if isinstance(obj, dict):
        return {k: _scrub(v, subs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, subs) for v in obj]
    return obj


def render(
    view: dict[str, Any],
    policy: Policy,
    secret: bytes,
    timeline: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]] | None, list[str]]:
    """The contact view (and its timeline) as `policy` lets its viewer see it, and
    the names of the personal-data fields it still shows (for the audit)."""
    vis = policy.visibility
    customer = dict(view.get("customer") or {})
    token = pseudonym(secret, customer_identity(customer))
    subs: list[tuple[re.Pattern[str], str]] = []
    shown: list[str] = []
    rules = (
        ("email", vis.email, mask_email),
        ("phone", vis.phone, mask_phone),
        ("social_handle", vis.phone, mask_phone),
    )
    for name, how, masker in rules:
        raw = customer.get(name)
        if not raw:
            continue
        out = _apply(str(raw), how, masker, token)
        customer[name] = out
        shown.append(f"customer.{name}")
        if out != raw:
            subs.append((re.compile(re.escape(str(raw)), re.IGNORECASE), out))
    if customer.get("id"):
        # an identifier of the tenant's own systems (or an address): the pseudonym
        raw_id = str(customer["id"])
        customer["id"] = token
        if len(raw_id) >= 4:
            subs.append((re.compile(re.escape(raw_id)), token))
    if customer.get("name"):
        shown.append("customer.name")
    attributes = {k: v for k, v in (view.get("attributes") or {}).items() if k not in set(vis.hide)}
    out_view = {**view, "customer": customer, "attributes": attributes}
    # longest first: an email that contains the id is replaced whole
    subs.sort(key=lambda s: -len(s[0].pattern))
    for name in ("subject", "preview", "attributes", "external_id"):
        out_view[name] = _scrub(out_view.get(name), subs)
    for name in ("subject", "preview"):
        if out_view.get(name):
            shown.append(name)
    if attributes:
        shown.append("attributes")
    out_timeline = None if timeline is None else _scrub(timeline, subs)
    if out_timeline:
        shown.append("timeline")
    return out_view, out_timeline, shown
