"""Twilio Voice and Messaging webhooks: signature check, parsing into `Inbound`, TwiML replies.

Twilio posts `application/x-www-form-urlencoded` forms. The HTTP layer decodes the
body (e.g. `urllib.parse.parse_qsl(body, keep_blank_values=True)`) and hands the
pairs here: first to `verify_signature` (all pairs, repeated names included), then
to `parse_voice` or `parse_sms`. Nothing here touches Redis or the network.

Signature (X-Twilio-Signature), as Twilio's security docs describe it and its helper
libraries implement it: HMAC-SHA1, keyed with the account's auth token, over the full
URL Twilio requested (scheme, host, path and query string, exactly as configured)
followed by every POST parameter as name then value, no separators, sorted by name
(a repeated name: its values sorted); base64 of the digest. Like the helper
libraries, the URL is tried both without a port and with one (the scheme's default
443/80 added when none is given), because Twilio's own signing is not consistent
about an explicit port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from router.errors import PayloadError, SignatureError, ValidationError
from router.model import Customer

from .inbound import TEXT_MAX, Attachment, Inbound, Kind

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"

# Bounds on what a form may hand on. Twilio's SIDs are 34 characters and E.164
# numbers at most 16; the slack allows client:/sip:/whatsapp: addresses. An id over
# its bound is refused rather than cut, since two cut ids could collide on dedup.
ID_MAX = 64
ADDRESS_MAX = 256
VALUE_MAX = 256  # any other form value kept in attributes / ivr (cut, not refused)
SPEECH_MAX = 2048  # SpeechResult of a <Gather input="speech">
URL_MAX = 2048  # a media URL
MEDIA_MAX = 10  # Twilio delivers at most 10 media per message
QUEUE_NAME_MAX = 64  # <Enqueue>: "The queue name must be 64 characters or less"

# CallStatus values (Call resource): what each means for routing.
CALL_ACTIVE = frozenset({"queued", "ringing", "in-progress"})
CALL_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

Params = Mapping[str, str] | Sequence[tuple[str, str]]

# -- signature -------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    # surrogatepass: a form decoded with errors="surrogateescape" must not raise here.
    return text.encode("utf-8", "surrogatepass")


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def expected_signature(url: str, params: Params, auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for this exact URL and form.

    Sorting (name, value) pairs orders names alphabetically and, within a repeated
    name, its values: the order Twilio's helper libraries use.
    """
    mac = hmac.new(_utf8(auth_token), _utf8(url), hashlib.sha1)
    for name, value in sorted(_pairs(params)):
        mac.update(_utf8(name))
        mac.update(_utf8(value))
    return base64.b64encode(mac.digest()).decode("ascii")


def url_variants(url: str) -> tuple[str, ...]:
    """The URL without any port and with one (443/80 added when absent), as Twilio's libraries try.

    Only the authority is rewritten; path, query and fragment stay byte for byte, so
    an odd but valid URL is never normalized into one Twilio did not sign.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    start = url.find("//")
    if (
        not parts.netloc
        or start < 0
        or url[start + 2 : start + 2 + len(parts.netloc)] != parts.netloc
    ):
        return (url,)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    bare = hostport.rsplit(":", 1)[0] if port is not None or hostport.endswith(":") else hostport
    default = 443 if parts.scheme.lower() == "https" else 80
    with_port = f"{bare}:{port if port is not None else default}"
    head, tail = url[: start + 2], url[start + 2 + len(parts.netloc) :]
    without = f"{head}{userinfo}{at}{bare}{tail}"
    withp = f"{head}{userinfo}{at}{with_port}{tail}"
    return (without,) if without == withp else (without, withp)


def verify_signature(
    url: str, params: Params, signature_header: str | None, auth_token: str
) -> None:
    """Raise SignatureError unless `signature_header` signs this URL and form.

    Every candidate URL is computed and compared in constant time (no early exit),
    so the answer's timing says nothing about which part was wrong.
    """
    if not auth_token:
        # An empty HMAC key would let anyone sign: fail closed on a misconfiguration.
        raise SignatureError("no Twilio auth token is configured", reason="no_auth_token")
    if signature_header is None or not signature_header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header", reason="missing")
    given = _utf8(signature_header.strip())
    pairs = _pairs(params)
    ok = False
    for candidate in url_variants(url):
        ok |= hmac.compare_digest(_utf8(expected_signature(candidate, pairs, auth_token)), given)
    if not ok:
        raise SignatureError(f"{SIGNATURE_HEADER} does not match", reason="mismatch")


# -- form reading ----------------------------------------------------------------------


def _opt(params: Mapping[str, str], name: str, limit: int = VALUE_MAX) -> str | None:
    """The field's value cut to `limit` characters; None when absent or blank."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"form field {name} is not a string", field=name)
    value = value.strip()
    return value[:limit] if value else None


def _required(params: Mapping[str, str], name: str, limit: int) -> str:
    """A field the webhook cannot be understood without; too long is refused, not cut."""
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"form field {name} is not a string", field=name)
    value = (value or "").strip()
    if not value:
        raise PayloadError(f"missing form field {name}", field=name)
    if len(value) > limit:
        raise PayloadError(f"form field {name} is longer than {limit} characters", field=name)
    return value


def _collect(params: Mapping[str, str], names: Mapping[str, str]) -> dict[str, Any]:
    """Copy the present fields of `names` (Twilio name -> attribute key), bounded."""
    out: dict[str, Any] = {}
    for twilio_name, key in names.items():
        value = _opt(params, twilio_name)
        if value is not None:
            out[key] = value
    return out


def _customer(address: str, name: str | None) -> Customer:
    """A phone number is the customer's phone; a client:/sip: identity is only an id."""
    if address.startswith("whatsapp:"):
        return Customer(phone=address.removeprefix("whatsapp:") or None, name=name)
    if address.startswith(("client:", "sip:")):
        return Customer(id=address, name=name)
    return Customer(phone=address, name=name)


_GEO = {
    f"{side}{part}": f"{side.lower()}_{part.lower()}"
    for side in ("From", "To")
    for part in ("City", "State", "Zip", "Country")
}

# -- voice -----------------------------------------------------------------------------

_VOICE_ATTRIBUTES = {
    "AccountSid": "account_sid",
    "To": "to",
    "Direction": "direction",
    "ApiVersion": "api_version",
    "Caller": "caller",
    "Called": "called",
    "ForwardedFrom": "forwarded_from",
    "ParentCallSid": "parent_call_sid",
    "CallbackSource": "callback_source",
    "SequenceNumber": "sequence_number",
    "CallDuration": "call_duration_s",
    "SipResponseCode": "sip_response_code",
    "QueueResult": "queue_result",
    "QueueTime": "queue_time_s",
    **_GEO,
}


def parse_voice(params: Mapping[str, str]) -> Inbound:
    """One Twilio Voice request (incoming call, <Gather> action, status callback).

    event_id is (CallSid, CallStatus), so a retried webhook is processed once but the
    later status changes of the same call are not swallowed by the first. A <Gather>
    result also carries a digest of the input, since successive menu answers all
    arrive with CallStatus in-progress.
    """
    call_sid = _required(params, "CallSid", ID_MAX)
    caller = _required(params, "From", ADDRESS_MAX)
    status = (_opt(params, "CallStatus", 32) or "").lower() or None
    direction = (_opt(params, "Direction", 32) or "inbound").lower()

    ivr: dict[str, str] = {}
    digits = _opt(params, "Digits", 64)
    speech = _opt(params, "SpeechResult", SPEECH_MAX)
    if digits is not None:
        ivr["digits"] = digits
    if speech is not None:
        ivr["speech"] = speech
        confidence = _opt(params, "Confidence", 16)
        if confidence is not None:
            ivr["confidence"] = confidence

    event_id = f"{call_sid}:{status or 'unknown'}"
    if ivr:
        digest = hashlib.sha1(_utf8(f"{digits or ''}\x00{speech or ''}")).hexdigest()[:12]
        event_id += f":ivr-{digest}"

    callback = _opt(params, "CallbackSource", 64)
    # <Enqueue action>: how the caller left Twilio's queue
    queue_result = (_opt(params, "QueueResult", 32) or "").lower()
    if queue_result:
        event_id = f"{call_sid}:queue-{queue_result}"
    if direction.startswith("outbound"):
        kind, reason = Kind.IGNORED, "outbound"
    elif queue_result in QUEUE_LEFT:
        kind, reason = Kind.ENDED, f"queue_{queue_result}"
    elif queue_result == "bridged":
        kind, reason = Kind.ANSWERED, "bridged"
    elif queue_result:
        kind, reason = Kind.STATUS, f"queue_{queue_result}"
    elif status in CALL_ENDED:
        kind, reason = Kind.ENDED, ""
    elif status in CALL_ACTIVE and callback is None:
        kind, reason = Kind.MESSAGE, ""
    elif status in CALL_ACTIVE:
        # A call-progress status callback: the call itself came in on the voice URL.
        kind, reason = Kind.STATUS, "progress"
    else:
        kind, reason = Kind.STATUS, f"call_status:{status or 'missing'}"

    return Inbound(
        channel="voice",
        kind=kind,
        provider=PROVIDER,
        external_id=call_sid,
        thread_key=call_sid,
        event_id=event_id,
        customer=_customer(caller, _opt(params, "CallerName")),
        attributes=_collect(params, _VOICE_ATTRIBUTES),
        ivr=ivr,
        status=status,
        reason=reason,
    )


# -- messaging -------------------------------------------------------------------------

_SMS_ATTRIBUTES = {
    "AccountSid": "account_sid",
    "MessagingServiceSid": "messaging_service_sid",
    "To": "to",
    "ApiVersion": "api_version",
    "SmsStatus": "sms_status",
    "NumSegments": "num_segments",
    "NumMedia": "num_media",
    "OptOutType": "opt_out_type",
    "ErrorCode": "error_code",
    "WaId": "wa_id",
    **_GEO,
}


def _media(params: Mapping[str, str]) -> tuple[tuple[Attachment, ...], list[str]]:
    """MediaUrl{N}/MediaContentType{N}, N < 10, whatever NumMedia claims.

    Twilio does not send sizes, so `size` is 0 (unknown). The name is the URL's last
    path part (the Media SID); the URLs themselves go to attributes["media_urls"],
    since fetching them needs the account's credentials, outside this pure adapter.
    """
    attachments: list[Attachment] = []
    urls: list[str] = []
    for i in range(MEDIA_MAX):
        url = _opt(params, f"MediaUrl{i}", URL_MAX)
        if url is None:
            continue
        ctype = (_opt(params, f"MediaContentType{i}", 128) or "application/octet-stream").lower()
        try:
            path = urlsplit(url).path
        except ValueError:
            path = ""
        name = unquote(path.rstrip("/").rpartition("/")[2])[:VALUE_MAX] or None
        attachments.append(Attachment(name=name, content_type=ctype, size=0))
        urls.append(url)
    return tuple(attachments), urls


def parse_sms(params: Mapping[str, str]) -> Inbound:
    """One Twilio Messaging request: an inbound SMS/MMS, or a message status callback.

    The conversation key is the customer's number, so every text from one number
    threads into one conversation. A status callback (MessageStatus, no Body) is about
    a message we sent: its customer is `To`, and its event id adds the status so
    sent/delivered/failed are each seen once.
    """
    sid = _required(params, "MessageSid", ID_MAX)
    sender = _required(params, "From", ADDRESS_MAX)
    attributes = _collect(params, _SMS_ATTRIBUTES)
    message_status = (_opt(params, "MessageStatus", 32) or "").lower() or None
    body = params.get("Body")
    if body is not None and not isinstance(body, str):
        raise PayloadError("form field Body is not a string", field="Body")

    if message_status is not None and body is None:
        customer_address = _opt(params, "To", ADDRESS_MAX) or sender
        return Inbound(
            channel="sms",
            kind=Kind.STATUS,
            provider=PROVIDER,
            external_id=sid,
            thread_key=customer_address,
            event_id=f"{sid}:{message_status}",
            customer=_customer(customer_address, None),
            attributes=attributes,
            status=message_status,
            reason="message_status",
        )

    attachments, urls = _media(params)
    if urls:
        attributes["media_urls"] = urls
    opt_out = (_opt(params, "OptOutType", 16) or "").upper()
    # STOP: Twilio has already opted the number out and forwards the text only for the
    # record; routing it to an agent who can no longer reply would waste the agent.
    kind, reason = (Kind.IGNORED, "opt_out") if opt_out == "STOP" else (Kind.MESSAGE, "")
    return Inbound(
        channel="sms",
        kind=kind,
        provider=PROVIDER,
        external_id=sid,
        thread_key=sender,
        event_id=sid,
        customer=_customer(sender, _opt(params, "ProfileName")),
        text=(body or "")[:TEXT_MAX],
        attributes=attributes,
        attachments=attachments,
        status=(_opt(params, "SmsStatus", 32) or "").lower() or None,
        reason=reason,
    )


# -- TwiML -----------------------------------------------------------------------------

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Characters XML 1.0 cannot carry even escaped (most C0 controls, lone surrogates,
# U+FFFE/U+FFFF): dropped, or Twilio would reject the whole document.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(text: str) -> str:
    return _xml_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")


QUEUE_LEFT = frozenset({"hangup", "queue-full", "error", "system-error"})


def twiml_enqueue(
    queue_name: str,
    *,
    wait_url: str | None = None,
    hold_message: str | None = None,
    action: str | None = None,
) -> str:
    """Put the caller in a Twilio queue, after an optional spoken hold message.

    `wait_url` is the TwiML Twilio plays while the caller waits (its default is a
    classical playlist). The queue name is checked against Twilio's 64-character limit
    here, so a bad config fails in our logs rather than as a dropped call.
    """
    name = queue_name.strip()
    if not name or len(name) > QUEUE_NAME_MAX or _NOT_XML.search(name):
        raise ValidationError(
            f"Twilio queue name must be 1-{QUEUE_NAME_MAX} printable characters",
            field="queue_name",
        )
    say = f"<Say>{_xml_text(hold_message)}</Say>" if hold_message else ""
    wait = f' waitUrl="{_xml_attr(wait_url)}"' if wait_url else ""
    if action:  # Twilio posts QueueResult there when the caller leaves the queue
        wait += f' action="{_xml_attr(action)}"'
    return f"{XML_DECLARATION}<Response>{say}<Enqueue{wait}>{_xml_text(name)}</Enqueue></Response>"


def twiml_closed(message: str) -> str:
    """A call to a closed queue: say the closed message, then hang up (rather than
    answer an error, which makes Twilio play its generic application-error message)."""
    return f"{XML_DECLARATION}<Response><Say>{_xml_text(message)}</Say><Hangup/></Response>"


def twiml_empty() -> str:
    """An empty response: Twilio does nothing (no reply SMS; a call would hang up)."""
    return f"{XML_DECLARATION}<Response/>"


def twiml_message(text: str) -> str:
    """Reply to an inbound SMS with one message (Twilio splits long bodies itself)."""
    return f"{XML_DECLARATION}<Response><Message>{_xml_text(text)}</Message></Response>"
