"""Chat widget adapter: event types, ids for dedup and threading, field validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import chat
from adapters.inbound import TEXT_MAX, Inbound, Kind
from router.errors import PayloadError
from router.model import ATTRIBUTES_MAX, Customer

STARTED: dict[str, Any] = {
    "type": "chat.started",
    "session_id": "s-7f3a9c",
    "customer": {
        "id": "crm-42",
        "name": "Bo Lindqvist",
        "email": "bo@example.com",
        "phone": "+46701234567",
        "handle": "bo_l",
    },
    "text": "My card is blocked",
    "language": "sv-SE",
    "attributes": {"page": "/cards", "vip": True, "cart_total": 129.5, "visits": 3, "ab": None},
}


def error(obj: object) -> tuple[str, object]:
    with pytest.raises(PayloadError) as exc:
        chat.parse_event(obj)
    assert exc.value.http_status == 400
    return exc.value.message, exc.value.details.get("field")


def test_chat_started_is_a_new_contact_keyed_by_the_session() -> None:
    item = chat.parse_event(STARTED)
    assert (item.channel, item.provider, item.kind) == ("chat", "widget", Kind.MESSAGE)
    assert item.status == "chat.started"
    assert item.external_id == "s-7f3a9c"
    assert item.thread_key == "s-7f3a9c"
    assert item.event_id == "s-7f3a9c:chat.started"
    assert item.customer == Customer(
        id="crm-42",
        name="Bo Lindqvist",
        email="bo@example.com",
        phone="+46701234567",
        social_handle="bo_l",
    )
    assert item.text == "My card is blocked"
    assert item.language == "sv-SE"
    assert item.attributes == STARTED["attributes"]


def test_chat_message_has_its_own_external_id() -> None:
    event = {"type": "chat.message", "session_id": "s-1", "text": "hello?", "event_id": "e-9"}
    item = chat.parse_event(event)
    assert (item.kind, item.status, item.text) == (Kind.MESSAGE, "chat.message", "hello?")
    assert (item.external_id, item.event_id, item.thread_key) == ("e-9", "e-9", "s-1")
    bare = chat.parse_event({"type": "chat.message", "session_id": "s-1", "text": "again"})
    assert bare.external_id is None and bare.event_id is None  # no way to spot a repeat


def test_chat_ended() -> None:
    item = chat.parse_event({"type": "chat.ended", "session_id": "s-1"})
    assert (item.kind, item.status, item.external_id) == (Kind.ENDED, "chat.ended", None)
    assert (item.thread_key, item.event_id) == ("s-1", "s-1:chat.ended")
    given_id = chat.parse_event({"type": "chat.ended", "session_id": "s-1", "event_id": "x"})
    assert given_id.event_id == "x"


def test_unknown_type_is_ignored_without_checking_other_fields() -> None:
    item = chat.parse_event({"type": "chat.typing", "session_id": 5, "customer": "Bo"})
    assert (item.kind, item.reason, item.status) == (Kind.IGNORED, "unknown_event", "chat.typing")
    assert item.thread_key is None
    named = chat.parse_event({"type": "chat.rated", "session_id": "s-1", "event_id": "r1"})
    assert (named.thread_key, named.event_id) == ("s-1", "r1")


def test_unknown_fields_are_ignored() -> None:
    item = chat.parse_event({**STARTED, "widget_version": "9.1", "customer": {"nick": "b"}})
    assert item.kind is Kind.MESSAGE and item.customer == Customer()


def test_empty_optional_strings_are_absent() -> None:
    item = chat.parse_event(
        {"type": "chat.started", "session_id": "s", "language": "", "customer": {"email": ""}}
    )
    assert item.language is None and item.customer.email is None


def test_long_text_is_cut_and_flagged() -> None:
    item = chat.parse_event({**STARTED, "text": "y" * (TEXT_MAX + 1)})
    assert len(item.text) == TEXT_MAX and item.attributes["text_truncated"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"session_id": None}, "session_id: required"),
        ({"session_id": ""}, "session_id: required"),
        ({"session_id": 42}, "session_id: must be a string, got number"),
        ({"session_id": "a b"}, "session_id: must not contain whitespace or control characters"),
        ({"session_id": "s" * 201}, "session_id: longer than 200 characters"),
        ({"event_id": ["e"]}, "event_id: must be a string, got array"),
        ({"type": None}, "type: required"),
        ({"type": 1}, "type: must be a string, got number"),
        ({"text": {"body": "x"}}, "text: must be a string, got object"),
        ({"language": "english please"}, "language: must be a language tag such as en or es-MX"),
        ({"language": 7}, "language: must be a string, got number"),
        ({"customer": "Bo"}, "customer: must be an object, got string"),
        ({"customer": {"email": 1}}, "customer.email: must be a string, got number"),
        ({"customer": {"name": "n" * 321}}, "customer.name: longer than 320 characters"),
        ({"attributes": []}, "attributes: must be an object, got array"),
        (
            {"attributes": {"tags": ["a"]}},
            "attributes.tags: must be a string, number, boolean or null, got array",
        ),
        ({"attributes": {"x": "v" * 1001}}, "attributes.x: longer than 1000 characters"),
        ({"attributes": {"": 1}}, "attributes: keys must be 1-64 characters"),
        ({"attributes": {"n": float("inf")}}, "attributes.n: must be a finite number"),
        ({"attributes": {"n": 2**64}}, "attributes.n: must fit in 64 bits"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], message: str) -> None:
    event = {k: v for k, v in {**STARTED, **change}.items() if v is not None}
    assert error(event)[0] == message


def test_too_many_attributes() -> None:
    attrs = {f"k{i}": i for i in range(ATTRIBUTES_MAX + 1)}
    assert (
        error({**STARTED, "attributes": attrs})[0] == f"attributes: more than {ATTRIBUTES_MAX} keys"
    )
    ok = {f"k{i}": i for i in range(ATTRIBUTES_MAX)}
    assert len(chat.parse_event({**STARTED, "attributes": ok}).attributes) == ATTRIBUTES_MAX


@pytest.mark.parametrize("body", [None, [], "chat.started", 1.5])
def test_body_must_be_an_object(body: object) -> None:
    assert error(body) == ("body: must be an object, got " + chat.type_name(body), "body")


def test_error_details_carry_the_field() -> None:
    assert error({**STARTED, "customer": {"phone": False}})[1] == "customer.phone"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=20,
)
FIELDS = ["type", "session_id", "customer", "text", "language", "attributes", "event_id"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=7),
    st.sampled_from(sorted(chat.KINDS)),
    st.booleans(),
)
def test_any_event_parses_or_raises_payload_error(
    fields: dict[str, Any], etype: str, keep_type: bool
) -> None:
    event = {"type": etype, "session_id": "s", **fields} if keep_type else fields
    try:
        item = chat.parse_event(event)
    except PayloadError as exc:
        assert exc.details["field"]
        return
    assert isinstance(item, Inbound) and item.channel == "chat"
