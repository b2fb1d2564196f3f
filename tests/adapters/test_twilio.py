"""Twilio adapter: signature vectors, webhook parsing from form bodies, TwiML output."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import twilio
from adapters.inbound import TEXT_MAX, Kind
from router.errors import PayloadError, SignatureError, ValidationError

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"

# The worked example of Twilio's request-validation docs (twilio-php docs/usage/validation.rst,
# the vector twilio-python's tests/unit/test_request_validator.py checks).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_TOKEN = "12345"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def pairs(name: str) -> list[tuple[str, str]]:
    return parse_qsl((FIXTURES / name).read_text().strip(), keep_blank_values=True)


def form(name: str) -> dict[str, str]:
    return dict(pairs(name))


def reference_signature(url: str, params: list[tuple[str, str]], token: str) -> str:
    """Twilio's algorithm written out the long way, independent of the adapter's code."""
    data = url
    for name in sorted({k for k, _ in params}):
        for value in sorted(v for k, v in params if k == name):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# -- signature ------------------------------------------------------------------------


def test_documented_example() -> None:
    assert twilio.expected_signature(DOC_URL, DOC_PARAMS, DOC_TOKEN) == DOC_SIGNATURE
    twilio.verify_signature(DOC_URL, DOC_PARAMS, DOC_SIGNATURE, DOC_TOKEN)


def test_documented_example_other_numbers() -> None:
    # The same example as other write-ups of the security docs give it (+12349013030).
    params = DOC_PARAMS | {"Caller": "+12349013030", "From": "+12349013030"}
    assert twilio.expected_signature(DOC_URL, params, DOC_TOKEN) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_repeated_names_sorted_by_value() -> None:
    # twilio-python's vector for a repeated parameter name.
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio.expected_signature(DOC_URL, params, DOC_TOKEN) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert twilio.expected_signature(DOC_URL, params[::-1], DOC_TOKEN) == (
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    )


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # twilio-python's port vectors: signed without a port, request seen with one ...
        (DOC_URL.replace(".com", ".com:1234"), DOC_SIGNATURE),
        # ... signed with an explicit non-default port, on http
        (
            DOC_URL.replace(".com", ".com:1234").replace("https", "http"),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        # ... signed with :443 added, request seen without a port
        (DOC_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        # ... signed with :80 added, on http
        (DOC_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_port_variants(url: str, signature: str) -> None:
    twilio.verify_signature(url, DOC_PARAMS, signature, DOC_TOKEN)


def test_port_variant_is_not_a_wildcard() -> None:
    # :443 is tried, :8443 is not: a signature over another port must fail.
    other = twilio.expected_signature(DOC_URL.replace(".com", ".com:8443"), DOC_PARAMS, DOC_TOKEN)
    with pytest.raises(SignatureError):
        twilio.verify_signature(DOC_URL, DOC_PARAMS, other, DOC_TOKEN)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.form")))
def test_fixture_signatures_match_reference(name: str) -> None:
    params = pairs(name)
    url = "https://switchboard.example.com/twilio/voice?tenant=demo&x=a%20b"
    token = "f00dfacef00dfacef00dfacef00dface"
    sig = reference_signature(url, params, token)
    assert twilio.expected_signature(url, params, token) == sig
    twilio.verify_signature(url, params, sig, token)
    twilio.verify_signature(url, dict(params), sig, token)


def test_verify_rejects() -> None:
    params = form("voice_incoming.form")
    url = "https://switchboard.example.com/twilio/voice"
    good = twilio.expected_signature(url, params, "tok")
    twilio.verify_signature(url, params, f"  {good} ", "tok")  # header whitespace is not content
    cases: list[tuple[str, dict[str, str], str | None, str]] = [
        (url, params, None, "tok"),
        (url, params, "", "tok"),
        (url, params, good, "other-token"),
        (url, params, good, ""),
        (url, params | {"CallStatus": "completed"}, good, "tok"),
        (url, params | {"Extra": ""}, good, "tok"),
        (url + "?a=1", params, good, "tok"),
        (url.replace("https", "http"), params, good, "tok"),
        (url, params, good[:-2] + "A=", "tok"),
        (url, params, "é" * 28, "tok"),
    ]
    for u, p, header, token in cases:
        with pytest.raises(SignatureError):
            twilio.verify_signature(u, p, header, token)


def test_signature_error_is_401() -> None:
    with pytest.raises(SignatureError) as info:
        twilio.verify_signature(DOC_URL, DOC_PARAMS, None, DOC_TOKEN)
    assert info.value.http_status == 401
    assert info.value.details["reason"] == "missing"


def test_url_variants() -> None:
    assert twilio.url_variants("https://a.example/p?q=1") == (
        "https://a.example/p?q=1",
        "https://a.example:443/p?q=1",
    )
    assert twilio.url_variants("http://u:pw@a.example:8080/p?x=%20#f") == (
        "http://u:pw@a.example/p?x=%20#f",
        "http://u:pw@a.example:8080/p?x=%20#f",
    )
    assert twilio.url_variants("https://[::1]:443/x") == ("https://[::1]/x", "https://[::1]:443/x")
    # Path and query are never normalized (an empty query, odd escapes stay as sent).
    assert twilio.url_variants("https://a.example/p?")[0] == "https://a.example/p?"
    assert twilio.url_variants("https://a.example:99999/p") == ("https://a.example:99999/p",)
    assert twilio.url_variants("not a url") == ("not a url",)


# -- voice ----------------------------------------------------------------------------


def test_voice_incoming_call() -> None:
    item = twilio.parse_voice(form("voice_incoming.form"))
    assert item.kind is Kind.MESSAGE
    assert (item.channel, item.provider) == ("voice", "twilio")
    assert item.external_id == item.thread_key == "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5"
    assert item.event_id == "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5:ringing"
    assert item.customer.phone == "+14158675309"
    assert item.customer.name == "JENNY JONES"
    assert item.status == "ringing"
    assert item.ivr == {}
    assert item.attributes["to"] == "+15558675310"
    assert item.attributes["from_city"] == "SAN FRANCISCO"
    assert item.attributes["account_sid"] == "AC0123456789abcdef0123456789abcdef"
    assert item.attributes["direction"] == "inbound"


def test_voice_gather_digits() -> None:
    item = twilio.parse_voice(form("voice_gather_digits.form"))
    assert item.kind is Kind.MESSAGE
    assert item.ivr == {"digits": "2"}
    assert item.event_id is not None
    assert item.event_id.startswith("CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5:in-progress:ivr-")
    # A second menu answer on the same call is a new event; a retry of the same one is not.
    again = twilio.parse_voice(form("voice_gather_digits.form"))
    other = twilio.parse_voice(form("voice_gather_digits.form") | {"Digits": "3"})
    assert again.event_id == item.event_id != other.event_id


def test_voice_gather_speech() -> None:
    params = form("voice_gather_digits.form")
    del params["Digits"]
    params |= {"SpeechResult": "I want to talk about billing.", "Confidence": "0.92"}
    item = twilio.parse_voice(params)
    assert item.ivr == {"speech": "I want to talk about billing.", "confidence": "0.92"}


def test_voice_status_completed() -> None:
    item = twilio.parse_voice(form("voice_status_completed.form"))
    assert item.kind is Kind.ENDED
    assert item.event_id == "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5:completed"
    assert item.attributes["call_duration_s"] == "57"
    assert item.attributes["callback_source"] == "call-progress-events"


@pytest.mark.parametrize("status", ["completed", "busy", "failed", "no-answer", "canceled"])
def test_voice_ended_statuses(status: str) -> None:
    item = twilio.parse_voice(form("voice_incoming.form") | {"CallStatus": status})
    assert item.kind is Kind.ENDED
    assert item.event_id == f"CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5:{status}"


@pytest.mark.parametrize("status", ["queued", "ringing", "in-progress"])
def test_voice_active_statuses(status: str) -> None:
    assert twilio.parse_voice(form("voice_incoming.form") | {"CallStatus": status}).kind is (
        Kind.MESSAGE
    )
    # The same status from a call-progress status callback does not start a contact.
    progress = form("voice_status_completed.form") | {"CallStatus": status}
    assert twilio.parse_voice(progress).kind is Kind.STATUS


def test_voice_unknown_status() -> None:
    item = twilio.parse_voice(form("voice_incoming.form") | {"CallStatus": "initiated"})
    assert (item.kind, item.reason) == (Kind.STATUS, "call_status:initiated")
    params = form("voice_incoming.form")
    del params["CallStatus"]
    item = twilio.parse_voice(params)
    assert (item.kind, item.reason, item.status) == (Kind.STATUS, "call_status:missing", None)


@pytest.mark.parametrize("direction", ["outbound-api", "outbound-dial"])
def test_voice_outbound_ignored(direction: str) -> None:
    item = twilio.parse_voice(form("voice_incoming.form") | {"Direction": direction})
    assert (item.kind, item.reason) == (Kind.IGNORED, "outbound")


def test_voice_client_caller_is_not_a_phone() -> None:
    item = twilio.parse_voice(form("voice_incoming.form") | {"From": "client:tommy"})
    assert item.customer.phone is None
    assert item.customer.id == "client:tommy"


@pytest.mark.parametrize("field", ["CallSid", "From"])
def test_voice_missing_required(field: str) -> None:
    params = form("voice_incoming.form")
    del params[field]
    with pytest.raises(PayloadError) as info:
        twilio.parse_voice(params)
    assert info.value.details["field"] == field
    assert info.value.http_status == 400
    with pytest.raises(PayloadError):
        twilio.parse_voice(form("voice_incoming.form") | {field: "   "})


def test_voice_values_bounded() -> None:
    with pytest.raises(PayloadError):
        twilio.parse_voice(form("voice_incoming.form") | {"CallSid": "CA" + "0" * 100})
    item = twilio.parse_voice(
        form("voice_incoming.form") | {"CallerName": "x" * 10_000, "SpeechResult": "y" * 10**5}
    )
    assert len(item.customer.name or "") == twilio.VALUE_MAX
    assert len(item.ivr["speech"]) == twilio.SPEECH_MAX


# -- messaging ------------------------------------------------------------------------


def test_sms_inbound_with_media() -> None:
    item = twilio.parse_sms(form("sms_inbound_media.form"))
    mm = "MM7a3c5e9f1b2d4c6e8a0b1c2d3e4f5a6b"
    assert item.kind is Kind.MESSAGE
    assert (item.channel, item.provider) == ("sms", "twilio")
    assert item.external_id == item.event_id == mm
    assert item.thread_key == "+14158675309"
    assert item.customer.phone == "+14158675309"
    assert item.text.startswith("Hi, my order #4521 arrived broken & the box")
    assert [(a.name, a.content_type, a.size) for a in item.attachments] == [
        ("ME0a1b2c3d4e5f60718293a4b5c6d7e8f9", "image/jpeg", 0),
        ("ME1f2e3d4c5b6a79880796a5b4c3d2e1f0", "image/png", 0),
    ]
    urls = item.attributes["media_urls"]
    assert len(urls) == 2
    assert urls[0].endswith(f"/Messages/{mm}/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    assert item.attributes["num_media"] == "2"
    assert item.attributes["messaging_service_sid"] == "MG9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    assert item.status == "received"


def test_sms_without_media() -> None:
    params = {
        k: v for k, v in form("sms_inbound_media.form").items() if not k.startswith("Media")
    } | {"NumMedia": "0", "Body": ""}
    item = twilio.parse_sms(params)
    assert item.kind is Kind.MESSAGE
    assert item.attachments == ()
    assert "media_urls" not in item.attributes
    assert item.text == ""


def test_sms_status_callback() -> None:
    item = twilio.parse_sms(form("sms_status_delivered.form"))
    sm = "SM1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
    assert (item.kind, item.status, item.reason) == (Kind.STATUS, "delivered", "message_status")
    assert item.event_id == f"{sm}:delivered"
    # A status callback is about our outbound message: the customer is To.
    assert item.thread_key == item.customer.phone == "+14158675309"


def test_sms_stop_is_ignored() -> None:
    item = twilio.parse_sms(form("sms_inbound_media.form") | {"Body": "STOP", "OptOutType": "STOP"})
    assert (item.kind, item.reason) == (Kind.IGNORED, "opt_out")
    assert item.attributes["opt_out_type"] == "STOP"
    help_ = twilio.parse_sms(
        form("sms_inbound_media.form") | {"Body": "HELP", "OptOutType": "HELP"}
    )
    assert help_.kind is Kind.MESSAGE


def test_sms_whatsapp_sender() -> None:
    params = form("sms_inbound_media.form") | {
        "From": "whatsapp:+14158675309",
        "ProfileName": "Jenny",
        "WaId": "14158675309",
    }
    item = twilio.parse_sms(params)
    assert item.thread_key == "whatsapp:+14158675309"
    assert (item.customer.phone, item.customer.name) == ("+14158675309", "Jenny")


def test_sms_body_bounded() -> None:
    item = twilio.parse_sms(form("sms_inbound_media.form") | {"Body": "z" * (TEXT_MAX + 5)})
    assert len(item.text) == TEXT_MAX


@pytest.mark.parametrize("field", ["MessageSid", "From"])
def test_sms_missing_required(field: str) -> None:
    params = form("sms_inbound_media.form")
    del params[field]
    with pytest.raises(PayloadError) as info:
        twilio.parse_sms(params)
    assert info.value.details["field"] == field


# -- arbitrary forms ------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "CallSid",
        "From",
        "To",
        "CallStatus",
        "Direction",
        "Digits",
        "SpeechResult",
        "CallbackSource",
        "MessageSid",
        "MessageStatus",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "MediaUrl9",
        "OptOutType",
        "CallerName",
        "ProfileName",
    ]
)
_FORMS = st.dictionaries(st.one_of(_KEYS, st.text(max_size=12)), st.text(max_size=80), max_size=12)


@settings(max_examples=200, deadline=None)
@given(_FORMS)
def test_arbitrary_forms_raise_only_payload_error(params: dict[str, str]) -> None:
    for parse in (twilio.parse_voice, twilio.parse_sms):
        try:
            item = parse(params)
        except PayloadError:
            continue
        assert item.provider == "twilio"
        assert item.external_id


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=60), _FORMS, st.one_of(st.none(), st.text(max_size=40)), st.text(max_size=8)
)
def test_arbitrary_signatures_raise_only_signature_error(
    url: str, params: dict[str, str], header: str | None, token: str
) -> None:
    with pytest.raises(SignatureError):
        twilio.verify_signature(url, params, header, token)


# -- TwiML ----------------------------------------------------------------------------


def test_twiml_enqueue_escapes() -> None:
    doc = twilio.twiml_enqueue(
        'billing & "VIP" <1>',
        wait_url="https://x.example/wait?a=1&b=2",
        hold_message="Please hold <beep> & wait\x00.",
    )
    assert doc.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    root = ET.fromstring(doc)
    assert root.tag == "Response"
    say, enqueue = list(root)
    assert (say.tag, say.text) == ("Say", "Please hold <beep> & wait.")
    assert enqueue.tag == "Enqueue"
    assert enqueue.text == 'billing & "VIP" <1>'
    assert enqueue.attrib == {"waitUrl": "https://x.example/wait?a=1&b=2"}


def test_twiml_enqueue_minimal() -> None:
    doc = twilio.twiml_enqueue("support", wait_url=None, hold_message=None)
    assert (
        doc
        == '<?xml version="1.0" encoding="UTF-8"?><Response><Enqueue>support</Enqueue></Response>'
    )


@pytest.mark.parametrize("name", ["", "   ", "q" * 65, "a\x01b"])
def test_twiml_enqueue_bad_queue_name(name: str) -> None:
    with pytest.raises(ValidationError):
        twilio.twiml_enqueue(name)


def test_twiml_empty_and_message() -> None:
    assert twilio.twiml_empty() == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert ET.fromstring(twilio.twiml_empty()).tag == "Response"
    root = ET.fromstring(twilio.twiml_message('Thanks! We\'ll reply <soon> & "shortly".'))
    (message,) = list(root)
    assert (message.tag, message.text) == ("Message", 'Thanks! We\'ll reply <soon> & "shortly".')


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=100))
def test_twiml_always_well_formed(text: str, url: str) -> None:
    ET.fromstring(twilio.twiml_message(text))
    ET.fromstring(twilio.twiml_enqueue("q", wait_url=url or None, hold_message=text or None))


def test_queue_results_of_the_enqueue_action() -> None:
    base = dict(pairs("voice_incoming.form"))
    for result, kind in (
        ("hangup", Kind.ENDED),
        ("queue-full", Kind.ENDED),
        ("bridged", Kind.ANSWERED),
        ("redirected", Kind.STATUS),
    ):
        item = twilio.parse_voice({**base, "CallStatus": "in-progress", "QueueResult": result})
        assert item.kind is kind, result
        assert item.event_id == f"{base['CallSid']}:queue-{result}"
    xml = twilio.twiml_enqueue("billing", action="/v1/webhooks/t/twilio/voice?a=1&b=2")
    assert '<Enqueue action="/v1/webhooks/t/twilio/voice?a=1&amp;b=2">billing</Enqueue>' in xml
