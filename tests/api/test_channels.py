"""Channel endpoints end to end: real provider payloads, signatures, threading, TwiML."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from redis.asyncio import Redis

from adapters.twilio import expected_signature

from ..factories import BASE_BODY
from .conftest import Api, ApiFactory

FIXTURES = Path(__file__).parent.parent / "adapters" / "fixtures"
PROBLEM = "application/problem+json"
BODY = BASE_BODY + '\n[queues.msgs]\nchannels = ["sms", "social"]\npools = ["inhouse"]\n'
PROVIDERS = """
[providers.twilio]
auth_token_env = "SB_TEST_TWILIO_TOKEN"
hold_message = "Please hold"

[providers.meta]
app_secret_env = "SB_TEST_META_SECRET"
verify_token_env = "SB_TEST_META_VERIFY"

[conversations]
reopen_s = 600
"""
TWILIO_TOKEN = "12345-test-auth-token"
META_SECRET = "meta-app-secret"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_TEST_TWILIO_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("SB_TEST_META_SECRET", META_SECRET)
    monkeypatch.setenv("SB_TEST_META_VERIFY", "verify-me")


async def _api(make_api: ApiFactory) -> Api:
    return await make_api(BODY, extra=PROVIDERS)


async def _twilio(api: Api, kind: str, form: str, *, sign: bool = True) -> tuple[int, str, str]:
    path = f"/v1/webhooks/{api.tenant}/twilio/{kind}"
    url = str(api.client.make_url(path))
    pairs = parse_qsl(form, keep_blank_values=True)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sign:
        headers["X-Twilio-Signature"] = expected_signature(url, pairs, TWILIO_TOKEN)
    r = await api.client.post(path, data=form.encode(), headers=headers)
    return r.status, r.content_type, await r.text()


def _fixture(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text().strip()


async def _contact(api: Api, external_id: str) -> dict[str, object]:
    r = await api.client.get(
        "/v1/contacts", params={"external_id": external_id}, headers=api.auth("supervisor")
    )
    found = (await r.json())["contacts"]
    assert len(found) == 1, found
    return dict(found[0])


async def test_a_twilio_call_is_enqueued_and_its_hang_up_abandons_it(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    status, ctype, text = await _twilio(api, "voice", _fixture("twilio", "voice_incoming.form"))
    assert (status, ctype) == (200, "text/xml"), text
    assert "<Say>Please hold</Say>" in text
    assert f'<Enqueue action="/v1/webhooks/{api.tenant}/twilio/voice">voice</Enqueue>' in text
    call = await _contact(api, "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5")
    assert (call["channel"], call["state"]) == ("voice", "queued")
    # Twilio retries the same webhook: still one contact
    assert (await _twilio(api, "voice", _fixture("twilio", "voice_incoming.form")))[0] == 200
    await _contact(api, "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5")
    # the status callback of the hang-up: an abandon while queued
    status, _, text = await _twilio(api, "voice", _fixture("twilio", "voice_status_completed.form"))
    assert status == 200 and "<Enqueue" not in text
    call = await _contact(api, "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5")
    assert call["state"] == "abandoned"


async def test_bad_twilio_signatures_get_401_and_store_nothing(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await _api(make_api)
    form = _fixture("twilio", "voice_incoming.form")
    status, ctype, _ = await _twilio(api, "voice", form, sign=False)
    assert (status, ctype) == (401, PROBLEM)
    path = f"/v1/webhooks/{api.tenant}/twilio/voice"
    url = str(api.client.make_url(path))
    good = expected_signature(url, parse_qsl(form), TWILIO_TOKEN)
    tampered = form.replace("ringing", "in-progress")
    for body, sig in ((tampered, good), (form, good[:-2] + "AA"), (form, "")):
        r = await api.client.post(
            path,
            data=body.encode(),
            headers={
                "X-Twilio-Signature": sig,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert r.status == 401
    assert not [k async for k in redis.scan_iter(match=f"sb:{{{api.tenant}}}:c:*")]
    r = await api.client.post("/v1/webhooks/nobody/twilio/voice", data=b"x=1")
    assert r.status == 404


async def test_sms_from_one_number_is_one_conversation(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    first = _fixture("twilio", "sms_inbound_media.form")
    assert (await _twilio(api, "sms", first))[0] == 200
    pairs = dict(parse_qsl(first))
    follow = {**pairs, "MessageSid": "SM" + "f" * 32, "SmsSid": "SM" + "f" * 32, "Body": "more"}
    follow["NumMedia"] = "0"
    for k in [k for k in follow if k.startswith("Media")]:
        del follow[k]
    status, _, text = await _twilio(api, "sms", urlencode(follow))
    assert status == 200 and text.endswith("<Response/>")
    c = await _contact(api, pairs["MessageSid"])
    assert c["channel"] == "sms" and c["queue"] == "msgs"
    r = await api.client.get(f"/v1/contacts/{c['id']}", headers=api.auth("supervisor"))
    assert (await r.json())["id"] == c["id"]


def _meta_sig(raw: bytes) -> str:
    return "sha256=" + hmac.new(META_SECRET.encode(), raw, hashlib.sha256).hexdigest()


async def test_meta_handshake_and_signed_batches(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    path = f"/v1/webhooks/{api.tenant}/meta"
    q = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    r = await api.client.get(path, params=q)
    assert (r.status, r.content_type, await r.text()) == (200, "text/plain", "1158201444")
    r = await api.client.get(path, params={**q, "hub.verify_token": "wrong"})
    assert r.status == 403
    raw = _fixture("meta", "batch_whatsapp.json").encode()
    r = await api.client.post(path, data=raw, headers={"X-Hub-Signature-256": "sha256=00"})
    assert r.status == 401
    r = await api.client.post(path, data=raw, headers={"X-Hub-Signature-256": _meta_sig(raw)})
    assert r.status == 200, await r.text()
    results = (await r.json())["results"]
    assert len(results) >= 2 and {x["status"] for x in results} <= {200, 201, 202}
    again = await api.client.post(path, data=raw, headers={"X-Hub-Signature-256": _meta_sig(raw)})
    assert all(x.get("duplicate") for x in (await again.json())["results"] if x["id"])
    r = await api.client.post(
        path, data=b"{not json", headers={"X-Hub-Signature-256": _meta_sig(b"{not json")}
    )
    assert r.status == 400 and r.content_type == PROBLEM


async def test_chat_events_over_the_ingest_endpoint(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    ev = {"type": "chat.started", "session_id": "S-1", "customer": {"name": "Ann"}, "text": "hi"}
    r = await api.client.post("/v1/channels/chat", json=ev, headers=api.auth("ingest"))
    assert r.status == 201, await r.text()
    cid = (await r.json())["id"]
    msg = {**ev, "type": "chat.message", "text": "still there?"}
    r = await api.client.post("/v1/channels/chat", json=msg, headers=api.auth("ingest"))
    assert (r.status, (await r.json())["id"]) == (200, cid)
    r = await api.client.get(f"/v1/contacts/{cid}", headers=api.auth("supervisor"))
    timeline = (await r.json())["timeline"]
    assert [(e["kind"], e["text"]) for e in timeline] == [("message", "still there?")]
    r = await api.client.post(
        "/v1/channels/chat",
        json={"type": "chat.ended", "session_id": "S-1"},
        headers=api.auth("ingest"),
    )
    assert (r.status, (await r.json())["state"]) == (200, "abandoned")
    r = await api.client.post(
        "/v1/channels/chat",
        json={"type": "chat.typing", "session_id": "S-1"},
        headers=api.auth("ingest"),
    )
    assert r.status in (200, 202)
    r = await api.client.post("/v1/channels/chat", json=[1], headers=api.auth("ingest"))
    assert r.status == 400 and r.content_type == PROBLEM
    r = await api.client.post("/v1/channels/chat", json=ev, headers=api.auth("agent"))
    assert r.status == 403


async def test_voice_json_events(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    ev = {"type": "call.queued", "call_id": "pbx-1", "from": "+34911222333", "to": "100"}
    r = await api.client.post("/v1/channels/voice", json=ev, headers=api.auth("ingest"))
    assert r.status == 201, await r.text()
    r = await api.client.post(
        "/v1/channels/voice", json={**ev, "type": "call.hangup"}, headers=api.auth("ingest")
    )
    assert (r.status, (await r.json())["state"]) == (200, "abandoned")


async def test_an_email_and_its_reply_are_one_contact(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    raw = FIXTURES.joinpath("email", "alternative.eml").read_bytes()
    headers = {**api.auth("ingest"), "Content-Type": "message/rfc822"}
    r = await api.client.post("/v1/channels/email", data=raw, headers=headers)
    assert r.status == 201, await r.text()
    cid = (await r.json())["id"]
    reply = (
        b"Message-ID: <reply-1@example.org>\r\n"
        b"In-Reply-To: <4f6b8c2e-1d3a-4c55-9e2b-7a1f0c9d3e21@example.org>\r\n"
        b"From: Maria Lopez <maria.lopez@example.org>\r\nTo: support@demo.example\r\n"
        b"Subject: Re: My card was charged twice\r\nContent-Type: text/plain\r\n\r\nAny news?\r\n"
    )
    r = await api.client.post("/v1/channels/email", data=reply, headers=headers)
    assert (r.status, (await r.json())["id"]) == (200, cid)
    auto = FIXTURES.joinpath("email", "auto_reply.eml").read_bytes()
    r = await api.client.post("/v1/channels/email", data=auto, headers=headers)
    assert r.status == 202 and (await r.json())["reason"] == "auto_reply"
    r = await api.client.post("/v1/channels/email", data=b"\x00\x01garbage", headers=headers)
    assert r.status == 400 and r.content_type == PROBLEM
    r = await api.client.post(
        "/v1/channels/email", data=raw, headers={**api.auth("ingest"), "Content-Type": "text/html"}
    )
    assert r.status == 415


async def test_a_caller_who_leaves_twilios_queue_abandons_the_contact(make_api: ApiFactory) -> None:
    api = await _api(make_api)
    first = _fixture("twilio", "voice_incoming.form")
    assert (await _twilio(api, "voice", first))[0] == 200
    # the <Enqueue action> request: same call, in progress, QueueResult=hangup
    left = {**dict(parse_qsl(first)), "CallStatus": "in-progress", "QueueResult": "hangup"}
    left["QueueTime"] = "42"
    status, _, text = await _twilio(api, "voice", urlencode(left))
    assert status == 200 and "<Enqueue" not in text
    call = await _contact(api, "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5")
    assert call["state"] == "abandoned"


# -- closed queues (when_closed = "refuse") ---------------------------------------------

# 1970-01-01 (the virtual clock's epoch) is a Thursday: this calendar is closed then
SHUT = '\n[calendars.shut]\ntimezone = "UTC"\nhours = { mon = ["09:00-10:00"] }\n'
CLOSED_BODY = (
    BODY.replace("[queues.voice]\n", '[queues.voice]\nhours = "shut"\nwhen_closed = "refuse"\n')
    .replace("[queues.msgs]\n", '[queues.msgs]\nhours = "shut"\nwhen_closed = "refuse"\n')
    .replace("[queues.chat]\n", '[queues.chat]\nhours = "shut"\nwhen_closed = "refuse"\n')
    + SHUT
)


async def _closed_api(make_api: ApiFactory, closed_message: str | None = None) -> Api:
    extra = PROVIDERS
    if closed_message is not None:
        extra = extra.replace(
            'hold_message = "Please hold"\n',
            f'hold_message = "Please hold"\nclosed_message = "{closed_message}"\n',
        )
    return await make_api(CLOSED_BODY, extra=extra)


async def _ignored(api: Api) -> list[dict[str, str]]:
    eng = api.service.engines[api.tenant]
    raw = await eng.redis.xrange(eng.keys.events)
    evs = [{k.decode(): v.decode() for k, v in f.items()} for _, f in raw]
    return [e for e in evs if e["type"] == "inbound.ignored"]


async def test_a_twilio_call_to_a_closed_queue_hears_the_closed_message(
    make_api: ApiFactory, redis: Redis
) -> None:
    api = await _closed_api(make_api, "We open on Monday at nine")
    status, ctype, text = await _twilio(api, "voice", _fixture("twilio", "voice_incoming.form"))
    assert (status, ctype) == (200, "text/xml"), text
    assert text.endswith("<Response><Say>We open on Monday at nine</Say><Hangup/></Response>")
    assert not [k async for k in redis.scan_iter(match=f"sb:{{{api.tenant}}}:c:*")]
    (ev,) = await _ignored(api)
    assert (ev["channel"], ev["reason"], ev["provider"], ev["external_id"]) == (
        "voice",
        "queue_closed",
        "twilio",
        "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5",
    )
    assert await api.service.engines[api.tenant].ignored_counts() == {"voice:queue_closed": 1}


async def test_the_default_closed_message(make_api: ApiFactory) -> None:
    api = await _closed_api(make_api)
    _, _, text = await _twilio(api, "voice", _fixture("twilio", "voice_incoming.form"))
    assert "<Say>Sorry, we are closed right now." in text and text.endswith("<Hangup/></Response>")


async def test_a_twilio_sms_to_a_closed_queue_is_acknowledged_and_ignored(
    make_api: ApiFactory,
) -> None:
    api = await _closed_api(make_api)
    status, ctype, text = await _twilio(api, "sms", _fixture("twilio", "sms_inbound_media.form"))
    assert (status, ctype) == (200, "text/xml") and text.endswith("<Response/>")
    (ev,) = await _ignored(api)
    assert (ev["channel"], ev["reason"], ev["provider"]) == ("sms", "queue_closed", "twilio")


async def test_a_meta_message_to_a_closed_queue_is_acknowledged_and_ignored(
    make_api: ApiFactory,
) -> None:
    api = await _closed_api(make_api)
    raw = _fixture("meta", "whatsapp_text.json").encode()
    r = await api.client.post(
        f"/v1/webhooks/{api.tenant}/meta", data=raw, headers={"X-Hub-Signature-256": _meta_sig(raw)}
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["results"] == [
        {"id": None, "state": None, "queue": None, "reason": "queue_closed", "status": 202}
    ]
    (ev,) = await _ignored(api)
    assert (ev["channel"], ev["reason"], ev["provider"]) == ("social", "queue_closed", "meta")


async def test_a_redelivery_refused_by_a_closed_queue_is_a_duplicate_not_ignored_again(
    make_api: ApiFactory,
) -> None:
    """Twilio and Meta deliver again when unsure of the first answer: the refusal was
    processed, so the same event is answered as before without a second
    inbound.ignored (the call hears the closed message again)."""
    api = await _closed_api(make_api, "We open on Monday at nine")
    sms = _fixture("twilio", "sms_inbound_media.form")
    for _ in range(2):
        status, _, text = await _twilio(api, "sms", sms)
        assert status == 200 and text.endswith("<Response/>")
    call = _fixture("twilio", "voice_incoming.form")
    for _ in range(2):
        _, _, text = await _twilio(api, "voice", call)
        assert text.endswith("<Say>We open on Monday at nine</Say><Hangup/></Response>")
    raw = _fixture("meta", "whatsapp_text.json").encode()
    results = []
    for _ in range(2):
        r = await api.client.post(
            f"/v1/webhooks/{api.tenant}/meta",
            data=raw,
            headers={"X-Hub-Signature-256": _meta_sig(raw)},
        )
        assert r.status == 200, await r.text()
        results += (await r.json())["results"]
    assert [(x["status"], x["reason"], x.get("duplicate")) for x in results] == [
        (202, "queue_closed", None),
        (202, "queue_closed", True),
    ]
    assert sorted(e["channel"] for e in await _ignored(api)) == ["sms", "social", "voice"]
    assert await api.service.engines[api.tenant].ignored_counts() == {
        "sms:queue_closed": 1,
        "social:queue_closed": 1,
        "voice:queue_closed": 1,
    }


async def test_platform_endpoints_keep_the_closed_problem(make_api: ApiFactory) -> None:
    """The chat and voice JSON endpoints answer 409 with the opening: the platform
    plays its own closed message. Nothing is recorded as ignored."""
    api = await _closed_api(make_api)
    ev = {"type": "chat.started", "session_id": "S-1", "customer": {"name": "Ann"}, "text": "hi"}
    r = await api.client.post("/v1/channels/chat", json=ev, headers=api.auth("ingest"))
    assert (r.status, r.content_type) == (409, PROBLEM)
    body = await r.json()
    assert (body["reason"], body["queue"], body["opens_at"]) == (
        "queue_closed",
        "chat",
        "1970-01-05T09:00:00.000Z",
    )
    call = {"type": "call.queued", "call_id": "pbx-1", "from": "+34911222333", "to": "100"}
    r = await api.client.post("/v1/channels/voice", json=call, headers=api.auth("ingest"))
    assert (r.status, (await r.json())["reason"]) == (409, "queue_closed")
    assert await _ignored(api) == []
