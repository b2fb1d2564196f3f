"""Meta adapter: X-Hub-Signature-256, the GET handshake, and Messenger / Instagram /
WhatsApp webhook bodies re-typed from Meta's documentation (fixtures/meta)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import meta
from adapters.inbound import TEXT_MAX, Inbound, Kind
from router.errors import PayloadError, SignatureError, VerifyTokenError

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
SECRET = "6f1c0e2d9b8a7f6e5d4c3b2a19081726"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def one(name: str) -> Inbound:
    items = meta.parse_webhook(load(name))
    assert len(items) == 1, items
    return items[0]


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def messenger(event: dict[str, Any], obj: str = "page") -> dict[str, Any]:
    return {"object": obj, "entry": [{"id": "PAGE", "time": 1, "messaging": [event]}]}


def whatsapp(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    change = {"value": value, "field": field}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [change]}]}


def payload_error(obj: object) -> str:
    with pytest.raises(PayloadError) as exc:
        meta.parse_webhook(obj)
    return exc.value.message


# -- signature ------------------------------------------------------------------------


def test_signature_of_the_raw_body_passes() -> None:
    body = (FIXTURES / "messenger_text.json").read_bytes()
    meta.verify_signature(body, sign(body), SECRET)
    meta.verify_signature(body, sign(body).upper().replace("SHA256=", "sha256="), SECRET)


def test_signature_covers_the_exact_bytes() -> None:
    # Meta signs the escaped form; a re-serialized (unescaped) body no longer matches
    escaped = b'{"text":"caf\\u00e9"}'
    meta.verify_signature(escaped, sign(escaped), SECRET)
    unescaped = json.dumps(json.loads(escaped), ensure_ascii=False).encode()
    with pytest.raises(SignatureError):
        meta.verify_signature(unescaped, sign(escaped), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 63,
        "sha256=" + "g" * 64,
        "sha256=" + "é" * 64,
        "sha256=" + "0" * 64,
    ],
)
def test_missing_malformed_or_wrong_signature_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError) as exc:
        meta.verify_signature(b"{}", header, SECRET)
    assert exc.value.http_status == 401
    assert exc.value.details["field"] == "X-Hub-Signature-256"


def test_signature_with_another_secret_or_body_is_refused() -> None:
    body = b'{"object":"page","entry":[]}'
    with pytest.raises(SignatureError):
        meta.verify_signature(body, sign(body, "another-secret"), SECRET)
    with pytest.raises(SignatureError):
        meta.verify_signature(body + b" ", sign(body), SECRET)


def test_empty_app_secret_is_a_configuration_error() -> None:
    body = b"{}"
    with pytest.raises(ValueError):
        meta.verify_signature(body, "sha256=" + hmac.new(b"", body, "sha256").hexdigest(), "")


# -- GET handshake --------------------------------------------------------------------

HANDSHAKE = {"hub.mode": "subscribe", "hub.verify_token": "tok-123", "hub.challenge": "1158201444"}


def test_handshake_echoes_the_challenge() -> None:
    assert meta.verify_subscription(HANDSHAKE, "tok-123") == "1158201444"


@pytest.mark.parametrize(
    "change",
    [
        {"hub.verify_token": "tok-124"},
        {"hub.verify_token": ""},
        {"hub.verify_token": "tök-123"},  # non-ASCII must not crash compare_digest
        {"hub.mode": "unsubscribe"},
        {"hub.mode": ""},
    ],
)
def test_handshake_with_wrong_token_or_mode_is_forbidden(change: dict[str, str]) -> None:
    with pytest.raises(VerifyTokenError) as exc:
        meta.verify_subscription({**HANDSHAKE, **change}, "tok-123")
    assert exc.value.http_status == 403
    assert isinstance(exc.value, SignatureError)


def test_handshake_without_token_or_mode_is_forbidden_before_the_challenge_is_read() -> None:
    for key in ("hub.mode", "hub.verify_token"):
        query = {k: v for k, v in HANDSHAKE.items() if k not in (key, "hub.challenge")}
        with pytest.raises(VerifyTokenError):
            meta.verify_subscription(query, "tok-123")


@pytest.mark.parametrize("challenge", [None, "", "a b", "x" * 257, "<script>", "1\n2"])
def test_handshake_needs_a_sane_challenge(challenge: str | None) -> None:
    query = {k: v for k, v in HANDSHAKE.items() if k != "hub.challenge"}
    if challenge is not None:
        query["hub.challenge"] = challenge
    if challenge == "<script>":
        assert meta.verify_subscription(query, "tok-123") == "<script>"  # text/plain: harmless
        return
    with pytest.raises(PayloadError) as exc:
        meta.verify_subscription(query, "tok-123")
    assert exc.value.details["field"] == "hub.challenge"


def test_handshake_refuses_an_unconfigured_token() -> None:
    with pytest.raises(ValueError):
        meta.verify_subscription({**HANDSHAKE, "hub.verify_token": ""}, "")


# -- Messenger ------------------------------------------------------------------------


def test_messenger_text_message() -> None:
    item = one("messenger_text")
    assert item.kind is Kind.MESSAGE
    assert (item.channel, item.provider, item.status) == ("social", "meta", "message")
    assert item.external_id == item.event_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert item.thread_key == "messenger:6524379430962843"
    assert item.customer.social_handle == "6524379430962843"
    assert item.customer.phone is None and item.customer.name is None
    assert item.text == "hello, world!"
    assert item.attributes == {
        "network": "messenger",
        "account_id": "106540352242922",
        "timestamp_ms": 1458692752478,
        "quick_reply_payload": "DEVELOPER_DEFINED_PAYLOAD",
    }


def test_messenger_attachments() -> None:
    item = one("messenger_attachment")
    assert item.kind is Kind.MESSAGE and item.text == ""
    assert [(a.name, a.content_type, a.size) for a in item.attachments] == [(None, "image/*", 0)]
    assert item.attributes["media"] == [
        {"type": "image", "url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg"},
        {"type": "fallback", "url": "https://www.example.com/shared-page"},
    ]


def test_messenger_echo_is_ignored_and_threads_on_the_customer() -> None:
    item = one("messenger_echo")
    assert (item.kind, item.reason) == (Kind.IGNORED, "echo")
    assert item.thread_key == "messenger:6524379430962843"  # the recipient, not our page
    assert item.customer.social_handle == "6524379430962843"
    assert item.attributes["account_id"] == "106540352242922"
    assert item.external_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert item.text == ""  # our own words are not the customer's message


def test_messenger_delivery_is_a_status_without_external_id() -> None:
    item = one("messenger_delivery")
    assert (item.kind, item.status, item.reason) == (Kind.STATUS, "delivered", "receipt")
    assert item.external_id is None
    assert item.event_id == "delivery:6524379430962843:1458668856253"
    assert item.thread_key == "messenger:6524379430962843"
    assert item.attributes["message_ids"] == ["mid.1458668856218:ed81099e15d3f4f233"]
    assert item.attributes["watermark_ms"] == 1458668856253
    assert "timestamp_ms" not in item.attributes  # this event has none


def test_messenger_read() -> None:
    item = one("messenger_read")
    assert (item.kind, item.status) == (Kind.STATUS, "read")
    assert item.event_id == "read:6524379430962843:1458668856253"


def test_instagram_seen_names_its_message() -> None:
    event = {"sender": {"id": "IGSID"}, "recipient": {"id": "IGID"}, "read": {"mid": "m_1"}}
    (item,) = meta.parse_webhook(messenger(event, "instagram"))
    assert (item.kind, item.event_id, item.thread_key) == (
        Kind.STATUS,
        "read:m_1",
        "instagram:IGSID",
    )
    assert item.attributes["message_ids"] == ["m_1"]


def test_messenger_postback() -> None:
    item = one("messenger_postback")
    assert (item.kind, item.status, item.text) == (Kind.MESSAGE, "postback", "Talk to an agent")
    assert item.attributes["postback_payload"] == "AGENT_HANDOFF"
    assert item.external_id == item.event_id
    assert item.external_id is not None and item.external_id.startswith("m_AG5Hz2")
    assert item.thread_key == "messenger:6524379430962843"


def test_old_postback_without_mid_gets_a_stable_event_id() -> None:
    event = {"sender": {"id": "U1"}, "timestamp": 5, "postback": {"payload": "GET_STARTED"}}
    (item,) = meta.parse_webhook(messenger(event))
    (again,) = meta.parse_webhook(messenger(event))
    assert item.external_id is None
    assert item.event_id == again.event_id == "postback:U1:5"
    assert item.text == ""


def test_instagram_message_with_reply() -> None:
    item = one("instagram_message")
    assert item.kind is Kind.MESSAGE
    assert item.attributes["network"] == "instagram"
    assert item.thread_key == "instagram:1914016395340468"
    assert item.text == "Is the blue one still in stock?"
    assert item.attributes["reply_to"].startswith("aWdfZAG1faXRlbTox")
    assert item.external_id != item.attributes["reply_to"]


def test_deleted_reaction_and_unknown_events_are_recorded_not_routed() -> None:
    deleted = {"sender": {"id": "U"}, "message": {"mid": "m_9", "is_deleted": True}}
    reaction = {"sender": {"id": "U"}, "reaction": {"mid": "m_9", "action": "react"}}
    optin = {"sender": {"id": "U"}, "recipient": {"id": "P"}, "optin": {"ref": "x"}}
    items = [meta.parse_webhook(messenger(e))[0] for e in (deleted, reaction, optin)]
    assert [(i.kind, i.reason, i.status) for i in items] == [
        (Kind.IGNORED, "deleted", "message"),
        (Kind.IGNORED, "reaction", "reaction"),
        (Kind.IGNORED, "unknown_event", "optin"),
    ]


def test_entries_without_messaging_are_unknown_events() -> None:
    body = {
        "object": "page",
        "entry": [
            {"id": "P", "time": 1, "standby": [{"sender": {"id": "U"}}]},
            {"id": "P", "time": 1, "changes": [{"field": "feed", "value": {}}]},
        ],
    }
    items = meta.parse_webhook(body)
    assert [(i.kind, i.reason, i.status) for i in items] == [
        (Kind.IGNORED, "unknown_event", "standby"),
        (Kind.IGNORED, "unknown_event", "changes"),
    ]


def test_unknown_object_is_one_ignored_item() -> None:
    (item,) = meta.parse_webhook({"object": "user", "entry": "not even a list"})
    assert (item.kind, item.reason, item.status) == (Kind.IGNORED, "unknown_event", "user")
    assert item.thread_key is None and item.event_id is None


def test_messenger_batch_keeps_every_item_in_order() -> None:
    items = meta.parse_webhook(load("batch_messenger"))
    assert [(i.kind, i.external_id or i.event_id) for i in items] == [
        (Kind.MESSAGE, "m_first"),
        (Kind.MESSAGE, "m_second"),
        (Kind.MESSAGE, "m_third"),
        (Kind.STATUS, "delivery:7014213338612345:1458692753050"),
    ]
    assert [i.thread_key for i in items] == [
        "messenger:6524379430962843",
        "messenger:6524379430962843",
        "messenger:7014213338612345",
        "messenger:7014213338612345",
    ]


def test_long_text_is_cut_and_flagged() -> None:
    event = {"sender": {"id": "U"}, "message": {"mid": "m", "text": "x" * (TEXT_MAX + 5)}}
    (item,) = meta.parse_webhook(messenger(event))
    assert len(item.text) == TEXT_MAX and item.attributes["text_truncated"] is True


# -- WhatsApp -------------------------------------------------------------------------


def test_whatsapp_text_message() -> None:
    item = one("whatsapp_text")
    assert (item.kind, item.channel, item.provider) == (Kind.MESSAGE, "social", "meta")
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert item.external_id == item.event_id == wamid
    assert item.thread_key == "whatsapp:16505551234"
    assert item.customer.name == "Sheena Nelson"
    assert item.customer.phone == "+16505551234"
    assert item.customer.social_handle == "16505551234"
    assert item.text == "Does it come in another color?"
    assert item.attributes == {
        "network": "whatsapp",
        "account_id": "102290129340398",
        "phone_number_id": "106540352242922",
        "display_phone_number": "15550783881",
        "timestamp_ms": 1749416383000,
        "message_type": "text",
    }


def test_whatsapp_image_reply() -> None:
    item = one("whatsapp_image")
    assert item.kind is Kind.MESSAGE
    assert item.text == "This one is scratched"
    assert [(a.name, a.content_type, a.size) for a in item.attachments] == [(None, "image/jpeg", 0)]
    assert item.attributes["media"] == [{"type": "image", "id": "2754859441498128"}]
    assert (
        item.attributes["reply_to"] == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjQ0RDBEMDhCRjVCNUQ4RTgA"
    )
    assert item.attributes["message_type"] == "image"


def test_whatsapp_document_keeps_its_file_name() -> None:
    msg = {
        "from": "447700900123",
        "id": "wamid.doc",
        "type": "document",
        "document": {"filename": "invoice.pdf", "mime_type": "application/pdf", "id": "77"},
    }
    (item,) = meta.parse_webhook(whatsapp({"messages": [msg]}))
    assert [(a.name, a.content_type) for a in item.attachments] == [
        ("invoice.pdf", "application/pdf")
    ]
    assert item.customer.name is None  # no contacts[] in this webhook


def test_whatsapp_interactive_reply() -> None:
    item = one("whatsapp_interactive")
    assert (item.kind, item.text) == (Kind.MESSAGE, "Change")
    assert item.attributes["interactive_type"] == "button_reply"
    assert item.attributes["reply_id"] == "change-button"


def test_whatsapp_status_update() -> None:
    item = one("whatsapp_status")
    assert (item.kind, item.status, item.reason) == (Kind.STATUS, "delivered", "receipt")
    wamid = "wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjgxQkVFRDVBQTVDODFDOTg3MQA="
    assert item.external_id is None
    assert item.event_id == f"{wamid}:delivered"
    assert item.attributes["message_ids"] == [wamid]
    assert item.thread_key == "whatsapp:5516992318222"
    assert item.customer.phone == "+5516992318222"


def test_whatsapp_batch_messages_then_statuses_per_change() -> None:
    items = meta.parse_webhook(load("batch_whatsapp"))
    assert [(i.kind, i.event_id) for i in items] == [
        (Kind.MESSAGE, "wamid.batch-1"),
        (Kind.MESSAGE, "wamid.batch-2"),
        (Kind.STATUS, "wamid.outbound-1:read"),
        (Kind.STATUS, "wamid.outbound-2:failed"),
    ]
    first, button, _, failed = items
    assert first.customer.name == "Sheena Nelson"
    assert button.customer.name == "Kerry Fisher"  # matched by wa_id, not position
    assert (button.text, button.attributes["button_payload"]) == (
        "Talk to an agent",
        "TALK_TO_AGENT",
    )
    assert failed.attributes["error_codes"] == [131026]
    assert failed.attributes["phone_number_id"] == "106540352242923"
    assert failed.attributes["account_id"] == "102290129340399"


def test_whatsapp_reaction_system_and_unknown_types() -> None:
    base = {"from": "15551234567", "timestamp": "1"}
    msgs = [
        {**base, "id": "w1", "type": "reaction", "reaction": {"message_id": "w0", "emoji": "x"}},
        {**base, "id": "w2", "type": "system", "system": {"body": "changed number"}},
        {**base, "id": "w3", "type": "hologram", "hologram": {}},
        {**base, "id": "w4", "type": "unsupported", "errors": [{"code": 131051}]},
    ]
    items = meta.parse_webhook(whatsapp({"messages": msgs}))
    assert [(i.kind, i.reason, i.status) for i in items] == [
        (Kind.IGNORED, "reaction", "message"),
        (Kind.STATUS, "system", "system"),
        (Kind.IGNORED, "unknown_event", "hologram"),
        (Kind.MESSAGE, "", "message"),
    ]
    assert items[1].external_id is None and items[1].text == "changed number"
    assert items[3].attributes["unsupported"] is True


def test_whatsapp_location() -> None:
    loc = {"latitude": 40.4168, "longitude": -3.7038, "name": "Sol"}
    msg = {"from": "34600000000", "id": "w", "type": "location", "location": loc}
    (item,) = meta.parse_webhook(whatsapp({"messages": [msg]}))
    assert item.attributes["location"] == loc


def test_whatsapp_other_fields_and_empty_values_are_unknown_events() -> None:
    (template,) = meta.parse_webhook(
        whatsapp({"event": "APPROVED"}, field="message_template_status_update")
    )
    (errors_only,) = meta.parse_webhook(whatsapp({"errors": [{"code": 1}]}))
    assert (template.reason, template.status) == ("unknown_event", "message_template_status_update")
    assert (errors_only.reason, errors_only.status) == ("unknown_event", "errors")


def test_whatsapp_non_numeric_sender_has_no_phone() -> None:
    msg = {"from": "user.handle", "id": "w", "type": "text", "text": {"body": "hi"}}
    (item,) = meta.parse_webhook(whatsapp({"messages": [msg]}))
    assert item.customer.phone is None and item.customer.social_handle == "user.handle"


# -- malformed bodies -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda b: b["entry"][0]["messaging"][0]["sender"].pop("id"),
            "entry[0].messaging[0].sender.id: required",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0].pop("sender"),
            "entry[0].messaging[0].sender: required",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0]["message"].pop("mid"),
            "entry[0].messaging[0].message.mid: required",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0]["message"].update(text=5),
            "entry[0].messaging[0].message.text: must be a string, got number",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0]["sender"].update(id="a b"),
            "entry[0].messaging[0].sender.id: must not contain whitespace",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0].update(timestamp="soon"),
            "entry[0].messaging[0].timestamp: must be a non-negative",
        ),
        (
            lambda b: b["entry"][0]["messaging"][0]["message"].update(is_echo="yes"),
            "entry[0].messaging[0].message.is_echo: must be a boolean, got string",
        ),
        (
            lambda b: b["entry"][0].update(messaging={}),
            "entry[0].messaging: must be an array, got object",
        ),
        (lambda b: b.update(entry={}), "entry: must be an array, got object"),
        (lambda b: b.pop("entry"), "entry: required"),
        (lambda b: b.pop("object"), "object: required"),
        (lambda b: b.update(object=7), "object: must be a string"),
    ],
)
def test_malformed_messenger_names_the_path(mutate: Any, expected: str) -> None:
    body = load("messenger_text")
    mutate(body)
    assert payload_error(body).startswith(expected)


def test_second_event_in_a_batch_is_named() -> None:
    body = load("batch_messenger")
    del body["entry"][1]["messaging"][1]["sender"]["id"]
    assert payload_error(body) == "entry[1].messaging[1].sender.id: required"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda v: v["messages"][0].pop("from"),
            "entry[0].changes[0].value.messages[0].from: required",
        ),
        (
            lambda v: v["messages"][0].pop("id"),
            "entry[0].changes[0].value.messages[0].id: required",
        ),
        (
            lambda v: v["messages"][0].pop("type"),
            "entry[0].changes[0].value.messages[0].type: required",
        ),
        (
            lambda v: v["messages"][0].pop("text"),
            "entry[0].changes[0].value.messages[0].text: required",
        ),
        (
            lambda v: v["messages"][0]["text"].update(body=[]),
            "entry[0].changes[0].value.messages[0].text.body: must be a string, got array",
        ),
        (lambda v: v.update(messages="hi"), "entry[0].changes[0].value.messages: must be an array"),
        (
            lambda v: v["contacts"][0].update(profile="Sheena"),
            "entry[0].changes[0].value.contacts[0].profile: must be an object",
        ),
    ],
)
def test_malformed_whatsapp_names_the_path(mutate: Any, expected: str) -> None:
    body = load("whatsapp_text")
    mutate(body["entry"][0]["changes"][0]["value"])
    assert payload_error(body).startswith(expected)


@pytest.mark.parametrize("body", [None, [], "page", 3, True])
def test_body_must_be_an_object(body: object) -> None:
    assert payload_error(body).startswith("body: must be an object")


def test_error_details_name_the_field() -> None:
    body = load("whatsapp_status")
    del body["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
    with pytest.raises(PayloadError) as exc:
        meta.parse_webhook(body)
    assert exc.value.http_status == 400
    assert exc.value.details == {"field": "entry[0].changes[0].value.statuses[0].status"}


def test_batch_size_is_bounded() -> None:
    event = {"sender": {"id": "U"}, "message": {"mid": "m", "text": "x"}}
    ok = {"object": "page", "entry": [{"id": "P", "messaging": [event] * meta.MAX_ITEMS}]}
    assert len(meta.parse_webhook(ok)) == meta.MAX_ITEMS
    over = {"object": "page", "entry": [{"id": "P", "messaging": [event] * meta.MAX_ITEMS}] * 2}
    assert "more than 1000 items" in payload_error(over)
    too_long = {
        "object": "page",
        "entry": [{"id": "P", "messaging": [event] * (meta.MAX_ITEMS + 1)}],
    }
    assert payload_error(too_long).startswith("entry[0].messaging: more than 1000 elements")


def test_oversized_ids_and_payloads_are_rejected() -> None:
    long_id = {"sender": {"id": "1" * (meta.ID_MAX + 1)}, "message": {"mid": "m"}}
    assert "longer than 500" in payload_error(messenger(long_id))
    quick = {"payload": "p" * (meta.PAYLOAD_MAX + 1)}
    long_payload = {"sender": {"id": "U"}, "message": {"mid": "m", "quick_reply": quick}}
    assert "quick_reply.payload: longer than" in payload_error(messenger(long_payload))


# -- property: only PayloadError escapes ----------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, to replace one node of a real webhook."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, (*path, i))
    return out


def _check(obj: object) -> None:
    try:
        items = meta.parse_webhook(obj)
    except PayloadError as exc:
        assert exc.message and exc.details["field"]
        return
    assert all(isinstance(i, Inbound) for i in items)
    assert len(items) <= meta.MAX_ITEMS


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_arbitrary_json_only_raises_payload_error(obj: object) -> None:
    _check(obj)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIXTURE_NAMES), st.data(), JSON)
def test_mutated_fixtures_only_raise_payload_error(
    name: str, data: st.DataObject, node: Any
) -> None:
    body = load(name)
    path = data.draw(st.sampled_from(_nodes(body)[1:]))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = node
    _check(body)
