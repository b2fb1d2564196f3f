"""router/privacy.py: masks, pseudonyms, hidden attributes, and a property: no view
rendered for an outsourced viewer holds the customer's raw email or phone."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.config.model import Visibility, VisibilityPolicy
from router.privacy import (
    Policy,
    customer_identity,
    mask_email,
    mask_phone,
    policy_for,
    pseudonym,
    render,
)

SECRET = b"s" * 32


def _policy(email: str = "mask", phone: str = "mask", hide: tuple[str, ...] = ()) -> Policy:
    return Policy("near", "near-co", VisibilityPolicy(Visibility(email), Visibility(phone), hide))


def _view(customer: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "customer": customer,
        "subject": extra.get("subject", ""),
        "preview": extra.get("preview", ""),
        "attributes": extra.get("attributes", {}),
        "external_id": None,
    }


def test_masks_read_as_the_docs_say() -> None:
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_email("not-an-email") == "***"
    assert mask_phone("+34 612 345 123") == "+34 *** *** 123"
    assert mask_phone("+15551234567") == "+1 *** *** 567"
    assert mask_phone("0612345123") == "*** *** 123"
    assert mask_phone("12345") == "***"


def test_pseudonym_is_stable_per_customer_and_depends_on_the_secret() -> None:
    a = pseudonym(SECRET, customer_identity({"email": "Jane@Example.com"}))
    assert a == pseudonym(SECRET, customer_identity({"email": "jane@example.com "}))
    assert a != pseudonym(SECRET, customer_identity({"email": "john@example.com"}))
    assert a != pseudonym(b"other", customer_identity({"email": "jane@example.com"}))
    assert a.startswith("cus_") and len(a) == 20
    # the id wins over email and phone: one customer, one name
    assert customer_identity({"id": "42", "email": "x@y.z"}) == "id:42"


def test_render_applies_each_setting_and_hides_attributes() -> None:
    customer = {
        "id": "crm-42",
        "name": "Jane",
        "email": "jane@example.com",
        "phone": "+34612345123",
    }
    view = _view(customer, attributes={"iban": "ES00", "plan": "gold"})
    out, _, fields = render(view, _policy("tokenize", "mask", ("iban",)), SECRET)
    token = pseudonym(SECRET, "id:crm-42")
    assert out["customer"] == {
        "id": token,
        "name": "Jane",
        "email": token,
        "phone": "+34 *** *** 123",
    }
    assert out["attributes"] == {"plan": "gold"}
    assert set(fields) == {"customer.email", "customer.phone", "customer.name", "attributes"}
    shown, _, _ = render(view, _policy("show", "show"), SECRET)
    assert shown["customer"]["email"] == "jane@example.com"
    assert shown["customer"]["phone"] == "+34612345123"
    assert view["customer"]["email"] == "jane@example.com"  # the input is not changed


def test_raw_values_in_free_text_and_timeline_are_replaced() -> None:
    view = _view(
        {"email": "jane@example.com", "phone": "+34612345123"},
        subject="from JANE@example.com",
        preview="call me on +34612345123",
        attributes={"note": {"deep": ["jane@example.com"]}},
    )
    timeline = [{"kind": "message", "text": "again: jane@example.com"}]
    out, tl, fields = render(view, _policy(), SECRET, timeline)
    assert out["subject"] == "from j***@example.com"
    assert out["preview"] == "call me on +34 *** *** 123"
    assert out["attributes"] == {"note": {"deep": ["j***@example.com"]}}
    assert tl == [{"kind": "message", "text": "again: j***@example.com"}]
    assert "timeline" in fields


def test_policy_for_only_outsourced_pools(tmp_path: Any) -> None:
    from router.config import load_config_text

    from .factories import tenant_toml

    tenant = load_config_text(tenant_toml("t1"), "<test>").tenants["t1"]
    assert policy_for(tenant, "inhouse") is None
    assert policy_for(tenant, None) is None
    assert policy_for(tenant, "nope") is None
    near = policy_for(tenant, "near")
    assert near is not None and near.vendor == "near-co"
    assert near.visibility.email is Visibility.MASK  # the default: masked


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in _strings(k) + _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


emails = st.emails(domains=st.sampled_from(["example.com", "mail.test", "x.io"]))
phones = st.builds(
    lambda cc, rest: f"+{cc}{rest}",
    st.integers(1, 999),
    st.text(alphabet="0123456789", min_size=7, max_size=12),
)
settings_ = st.sampled_from(["mask", "tokenize"])
free = st.text(max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    email=emails,
    phone=phones,
    email_how=settings_,
    phone_how=settings_,
    with_id=st.booleans(),
    before=free,
    after=free,
)
def test_no_outsourced_view_holds_the_raw_email_or_phone(
    email: str,
    phone: str,
    email_how: str,
    phone_how: str,
    with_id: bool,
    before: str,
    after: str,
) -> None:
    customer = {"name": "Jane", "email": email, "phone": phone, "social_handle": phone}
    if with_id:
        customer["id"] = email
    view = _view(
        customer,
        subject=before + email + after,
        preview=before + phone + after + email.upper(),
        attributes={"contact": [email, {"tel": phone}], "iban": "ES00"},
    )
    timeline = [{"text": f"{before}{email} / {phone}{after}"}]
    out, tl, _ = render(view, _policy(email_how, phone_how, ("iban",)), SECRET, timeline)
    for s in _strings(out) + _strings(tl):
        assert email.lower() not in s.lower(), (s, email)
        assert phone not in s, (s, phone)
    assert "iban" not in out["attributes"]
