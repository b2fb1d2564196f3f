"""PBX call-event adapter: kinds, ids, caller and IVR data, field validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import voice
from adapters.inbound import Inbound, Kind
from router.errors import PayloadError
from router.model import Customer

QUEUED: dict[str, Any] = {
    "type": "call.queued",
    "call_id": "1700000000.42",  # Asterisk's uniqueid style
    "from": "+34911234567",
    "to": "+34900100200",
    "ivr": {"menu": "2", "lang": "es", "account_digits": 1234},
    "language": "es",
    "attributes": {"queue_hint": "cards", "to": "ignored: the event's own `to` wins"},
}


def error(obj: object) -> str:
    with pytest.raises(PayloadError) as exc:
        voice.parse_event(obj)
    assert exc.value.details["field"]
    return exc.value.message


def test_call_queued_is_a_new_contact() -> None:
    item = voice.parse_event(QUEUED)
    assert (item.channel, item.provider, item.kind) == ("voice", "pbx", Kind.MESSAGE)
    assert item.status == "call.queued"
    assert item.external_id == item.thread_key == "1700000000.42"
    assert item.event_id == "1700000000.42:call.queued"
    assert item.customer == Customer(phone="+34911234567")
    assert item.ivr == {"menu": "2", "lang": "es", "account_digits": "1234"}
    assert item.language == "es"
    assert item.attributes == {
        "queue_hint": "cards",
        "from": "+34911234567",
        "to": "+34900100200",
    }


@pytest.mark.parametrize(
    ("etype", "kind"), [("call.answered", Kind.ANSWERED), ("call.hangup", Kind.ENDED)]
)
def test_answered_and_hangup(etype: str, kind: Kind) -> None:
    item = voice.parse_event({"type": etype, "call_id": "c-1"})
    assert (item.kind, item.status) == (kind, etype)
    assert (item.external_id, item.thread_key, item.event_id) == ("c-1", "c-1", f"c-1:{etype}")
    assert item.customer == Customer() and item.ivr == {} and item.attributes == {}


def test_given_event_id_wins() -> None:
    assert voice.parse_event({**QUEUED, "event_id": "ev-1"}).event_id == "ev-1"


def test_customer_phone_wins_over_caller_id() -> None:
    item = voice.parse_event({**QUEUED, "customer": {"id": "crm-1", "phone": "+34600000000"}})
    assert item.customer == Customer(id="crm-1", phone="+34600000000")
    named = voice.parse_event({**QUEUED, "customer": {"name": "Ana"}})
    assert named.customer == Customer(name="Ana", phone="+34911234567")


@pytest.mark.parametrize("caller", ["anonymous", "Anonymous", "unknown", "restricted"])
def test_withheld_caller_id_is_not_a_phone(caller: str) -> None:
    item = voice.parse_event({**QUEUED, "from": caller})
    assert item.customer.phone is None and item.attributes["from"] == caller


def test_sip_uri_caller() -> None:
    item = voice.parse_event({**QUEUED, "from": "sip:alice@pbx.example.com"})
    assert item.customer.phone == "sip:alice@pbx.example.com"


def test_unknown_type_is_ignored_without_checking_other_fields() -> None:
    item = voice.parse_event({"type": "call.ringing", "call_id": "c-2", "ivr": "junk"})
    assert (item.kind, item.reason, item.status) == (Kind.IGNORED, "unknown_event", "call.ringing")
    assert item.external_id == item.thread_key == "c-2"
    bad_id = voice.parse_event({"type": "call.parked", "call_id": {"x": 1}})
    assert bad_id.external_id is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"call_id": None}, "call_id: required"),
        ({"call_id": 17}, "call_id: must be a string, got number"),
        ({"call_id": "c 1"}, "call_id: must not contain whitespace or control characters"),
        ({"type": None}, "type: required"),
        ({"from": 34911234567}, "from: must be a string, got number"),
        ({"to": "+34 900"}, "to: must be 1-256 characters without spaces"),
        ({"ivr": ["2"]}, "ivr: must be an object, got array"),
        ({"ivr": {"menu": True}}, "ivr.menu: must be a string or a natural number, got boolean"),
        ({"ivr": {"menu": -1}}, "ivr.menu: must be a string or a natural number, got number"),
        ({"ivr": {"menu": "9" * 257}}, "ivr.menu: longer than 256 characters"),
        ({"ivr": {f"k{i}": "1" for i in range(33)}}, "ivr: more than 32 keys"),
        ({"language": "es_ES"}, "language: must be a language tag such as en or es-MX"),
        (
            {"attributes": {"a": {"b": 1}}},
            "attributes.a: must be a string, number, boolean or null, got object",
        ),
        ({"customer": {"handle": 3}}, "customer.handle: must be a string, got number"),
        ({"event_id": ""}, "event_id: required"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], message: str) -> None:
    event = {k: v for k, v in {**QUEUED, **change}.items() if v is not None}
    assert error(event) == message


def test_body_must_be_an_object() -> None:
    assert error(["call.queued"]) == "body: must be an object, got array"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=20,
)
FIELDS = ["type", "call_id", "from", "to", "ivr", "language", "attributes", "customer", "event_id"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=9), st.sampled_from(sorted(voice.KINDS))
)
def test_any_event_parses_or_raises_payload_error(fields: dict[str, Any], etype: str) -> None:
    event = {"type": etype, "call_id": "c", **fields}
    try:
        item = voice.parse_event(event)
    except PayloadError as exc:
        assert exc.details["field"]
        return
    assert isinstance(item, Inbound) and item.channel == "voice"
