"""Meta webhooks: Messenger, Instagram and the WhatsApp Cloud API, in one adapter.

One adapter because Meta signs all three the same way (`X-Hub-Signature-256`, an
HMAC-SHA256 of the raw body with the app secret), verifies the endpoint with the same
GET handshake, and wraps every delivery in `{"object": ..., "entry": [...]}`.

- `verify_signature(raw_body, header, app_secret)`: the POST check. Run it on the raw
  bytes before parsing; a missing, malformed or wrong header raises SignatureError (401).
- `verify_subscription(query, verify_token)`: the GET handshake. Returns
  `hub.challenge`, to be answered as text/plain 200; a wrong mode or token raises
  VerifyTokenError (403), a missing or odd challenge PayloadError (400).
- `parse_webhook(obj)`: the decoded JSON body, one `Inbound` per provider item.

What `parse_webhook` makes of each item (channel "social", provider "meta";
`attributes["network"]` is "messenger", "instagram" or "whatsapp", for routing):

- Messenger/Instagram `entry[].messaging[].message`: MESSAGE, status "message",
  external_id = event_id = mid; with `is_echo` (our page wrote it) IGNORED "echo",
  with `is_deleted` (the customer unsent it) IGNORED "deleted".
- `messaging[].postback`: MESSAGE, status "postback", text = the button title,
  `attributes["postback_payload"]`; ids = postback.mid.
- `messaging[].delivery` / `.read`: STATUS "delivered" / "read", reason "receipt".
- `messaging[].reaction`: IGNORED "reaction".
- WhatsApp `entry[].changes[].value.messages[]`: MESSAGE, status "message",
  external_id = event_id = wamid, `attributes["message_type"]`; type `reaction` is
  IGNORED "reaction", type `system` (number changed) STATUS "system".
- WhatsApp `value.statuses[]`: STATUS, status = sent / delivered / read / failed.
- An unknown `object`, entry shape, messaging event, change field or message type:
  one IGNORED item, reason "unknown_event", status = the word we did not know.

- thread_key is `"{network}:{customer handle}"`: the PSID / IGSID (for an echo, the
  recipient's) or the WhatsApp number; customer.social_handle is that handle, and for
  WhatsApp customer.phone is the number in E.164 (`+` added) and customer.name the
  profile name from `value.contacts[]`.
- STATUS items carry no external_id, so a receipt can never be mistaken for the
  message it reports on; their event_id (`"{wamid}:{status}"`,
  `"delivery:{psid}:{watermark}"`...) makes a repeated receipt a no-op, and the
  message ids they cover are in `attributes["message_ids"]`.
- Attachments: Messenger gives a type and a URL, WhatsApp a media id and MIME type;
  neither gives a size, so `Attachment.size` is 0 (unknown). The URLs and media ids are
  in `attributes["media"]`, `[{"type", "url"}]` / `[{"type", "id"}]` (Inbound has no
  URL field); any attachment type is listed there, but only files become Attachments.

Unknown is not malformed: Meta keeps retrying a delivery that failed, so anything
well-formed but not understood becomes an IGNORED item (recorded, never routed)
instead of an error. A body that breaks the envelope (not an object, `entry` not a
list, a message without its id or sender, a field of the wrong type) raises
PayloadError naming the JSON path, e.g. `entry[0].messaging[1].sender.id: required`.

Bounds: at most MAX_ITEMS items per webhook (Meta batches up to 1000); ids up to
ID_MAX characters without whitespace; message text is cut at TEXT_MAX and names,
titles and captions at their limits (`attributes["text_truncated"]` tells); opaque
strings (payloads, URLs) over their limit are rejected, since a cut one is useless.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any, cast

from router.errors import PayloadError, SignatureError, VerifyTokenError
from router.model import Customer

from .inbound import TEXT_MAX, Attachment, Inbound, Kind

PROVIDER = "meta"
CHANNEL = "social"
SIGNATURE_HEADER = "X-Hub-Signature-256"

MAX_ITEMS = 1000  # Inbound items per webhook, and elements per list
MAX_ATTACHMENTS = 100
ID_MAX = 500  # the API's external_id limit; mids and wamids are far shorter
NAME_MAX = 320  # the API's customer field limit
TITLE_MAX = 1000  # postback / button / list titles, captions, file names
PAYLOAD_MAX = 2000  # developer payloads (Meta caps them at 1000)
URL_MAX = 8192
WORD_MAX = 64  # type and status words, phone number ids
CHALLENGE_MAX = 256

_NETWORKS = {"page": "messenger", "instagram": "instagram"}
_MEDIA_TYPES = {"image": "image/*", "video": "video/*", "audio": "audio/*", "file": None}
_WA_MEDIA = ("image", "audio", "video", "document", "sticker")
_WA_MESSAGES = frozenset(
    {"text", "button", "interactive", "location", "contacts", "order", "unsupported", "unknown"}
)
_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})

Obj = Mapping[str, object]


# -- signature and handshake ---------------------------------------------------------


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> None:
    """Check `X-Hub-Signature-256: sha256=<hex>` against the raw body, in constant time.

    The raw bytes, not re-serialized JSON: Meta signs exactly what it sent (escaped
    unicode included). An empty app secret is a configuration bug (anyone could sign
    with it), so it raises ValueError rather than passing or blaming the caller.
    """
    if not app_secret:
        raise ValueError("app_secret: must not be empty")
    if header is None:
        raise SignatureError(f"{SIGNATURE_HEADER}: missing", field=SIGNATURE_HEADER)
    scheme, sep, given = header.strip().partition("=")
    if (
        not sep
        or scheme.lower() != "sha256"
        or len(given) != 64
        or not all(c in "0123456789abcdefABCDEF" for c in given)
    ):
        raise SignatureError(
            f"{SIGNATURE_HEADER}: must be sha256=<64 hex digits>", field=SIGNATURE_HEADER
        )
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise SignatureError(f"{SIGNATURE_HEADER}: does not match the body", field=SIGNATURE_HEADER)


def verify_subscription(query: Mapping[str, str], verify_token: str) -> str:
    """The GET handshake: the challenge to echo when mode and token are right.

    Mode and token are checked before the challenge, so a caller without the token
    learns nothing else. The challenge is answered verbatim, so it is limited to
    CHALLENGE_MAX visible ASCII characters (Meta sends a number).
    """
    if not verify_token:
        raise ValueError("verify_token: must not be empty")
    if query.get("hub.mode") != "subscribe":
        raise VerifyTokenError("hub.mode: must be subscribe", field="hub.mode")
    token = query.get("hub.verify_token") or ""
    # bytes: compare_digest refuses non-ASCII str, and the query is the caller's
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise VerifyTokenError("hub.verify_token: does not match", field="hub.verify_token")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise PayloadError("hub.challenge: required", field="hub.challenge")
    if len(challenge) > CHALLENGE_MAX or not all("!" <= c <= "~" for c in challenge):
        raise PayloadError(
            f"hub.challenge: must be 1-{CHALLENGE_MAX} visible ASCII characters",
            field="hub.challenge",
        )
    return challenge


# -- parsing ---------------------------------------------------------------------------


def parse_webhook(obj: object) -> list[Inbound]:
    """Every item of one decoded webhook body, in the order Meta sent them.

    Raises PayloadError for a body that is not a Meta webhook envelope; see the
    module docstring for what each item becomes.
    """
    root = _as_obj(obj, "")
    kind = _req_word(root, "object", "")
    out: list[Inbound] = []
    if kind == "whatsapp_business_account":
        for i, e in enumerate(_list(root, "entry", "", required=True)):
            _whatsapp_entry(_as_obj(e, f"entry[{i}]"), f"entry[{i}]", out)
    elif kind in _NETWORKS:
        network = _NETWORKS[kind]
        for i, e in enumerate(_list(root, "entry", "", required=True)):
            _messaging_entry(network, _as_obj(e, f"entry[{i}]"), f"entry[{i}]", out)
    else:
        out.append(_unknown("", None, status=kind))
    return out


def _messaging_entry(network: str, entry: Obj, path: str, out: list[Inbound]) -> None:
    account = _id(entry, "id", path)
    if "messaging" not in entry:
        # standby (another app owns the thread), changes (feed, comments)...
        other = next((k for k in ("standby", "changes") if k in entry), None)
        _add(out, _unknown(network, account, status=other), path)
        return
    for j, ev in enumerate(_list(entry, "messaging", path, required=True)):
        p = f"{path}.messaging[{j}]"
        _add(out, _messaging_event(network, account, _as_obj(ev, p), p), p)


def _messaging_event(network: str, account: str | None, ev: Obj, path: str) -> Inbound:
    event = next(
        (k for k in ("message", "postback", "delivery", "read", "reaction") if k in ev), None
    )
    if event is None:
        other = next((str(k) for k in ev if k not in _ENVELOPE_KEYS), None)
        return _unknown(network, account, status=other[:WORD_MAX] if other else None)
    sender = _req_obj(ev, "sender", path)
    # user_ref: a guest of the (retired) chat plugin has no PSID, only this
    sender_id = _id(sender, "id", f"{path}.sender") or _id(sender, "user_ref", f"{path}.sender")
    if sender_id is None:
        raise _fail(f"{path}.sender.id", "required")
    recipient = _obj(ev, "recipient", path)
    recipient_id = _id(recipient, "id", f"{path}.recipient") if recipient is not None else None
    attrs: dict[str, Any] = {"network": network}
    ts = _timestamp(ev, "timestamp", path, scale=1)
    if ts is not None:
        attrs["timestamp_ms"] = ts
    if event == "message":
        return _message(network, account, sender_id, recipient_id, ev, path, attrs)
    if account or recipient_id:
        attrs["account_id"] = account or recipient_id
    if event == "postback":
        pb = _req_obj(ev, "postback", path)
        pp = f"{path}.postback"
        mid = _id(pb, "mid", pp)
        title, cut = _text(pb, "title", pp, TITLE_MAX)
        payload = _opaque(pb, "payload", pp, PAYLOAD_MAX)
        if payload is not None:
            attrs["postback_payload"] = payload
        if cut:
            attrs["text_truncated"] = True
        synthetic = f"postback:{sender_id}:{ts}" if ts is not None else None
        return _item(
            network,
            Kind.MESSAGE,
            sender_id,
            attrs,
            external_id=mid,
            event_id=mid or synthetic,
            text=title,
            status="postback",
        )
    if event == "reaction":
        _req_obj(ev, "reaction", path)
        return _item(network, Kind.IGNORED, sender_id, attrs, status="reaction", reason="reaction")
    receipt = _req_obj(ev, event, path)
    rp = f"{path}.{event}"
    mids = [_id_value(m, f"{rp}.mids[{n}]") for n, m in enumerate(_list(receipt, "mids", rp))]
    mid = _id(receipt, "mid", rp)  # Instagram's messaging_seen names the one message read
    if mid is not None:
        mids.append(mid)
    watermark = _timestamp(receipt, "watermark", rp, scale=1)
    if mids:
        attrs["message_ids"] = mids
    if watermark is not None:
        attrs["watermark_ms"] = watermark
    status = "delivered" if event == "delivery" else "read"
    if watermark is not None:
        event_id: str | None = f"{event}:{sender_id}:{watermark}"
    else:
        event_id = f"{event}:{mids[0]}" if mids else None
    return _item(
        network, Kind.STATUS, sender_id, attrs, event_id=event_id, status=status, reason="receipt"
    )


def _message(
    network: str,
    account: str | None,
    sender_id: str,
    recipient_id: str | None,
    ev: Obj,
    path: str,
    attrs: dict[str, Any],
) -> Inbound:
    mp = f"{path}.message"
    m = _req_obj(ev, "message", path)
    mid = _req_id(m, "mid", mp)
    echo = _bool(m, "is_echo", mp)
    # An echo is our page writing to the customer: the customer is the recipient.
    handle = recipient_id if echo else sender_id
    business = sender_id if echo else recipient_id
    if account or business:
        attrs["account_id"] = account or business
    if echo or _bool(m, "is_deleted", mp):
        reason = "echo" if echo else "deleted"
        return _item(
            network,
            Kind.IGNORED,
            handle,
            attrs,
            external_id=mid,
            event_id=mid,
            status="message",
            reason=reason,
        )
    text, cut = _text(m, "text", mp, TEXT_MAX)
    if cut:
        attrs["text_truncated"] = True
    files: list[Attachment] = []
    media: list[dict[str, str]] = []
    for n, a in enumerate(_list(m, "attachments", mp, max_len=MAX_ATTACHMENTS)):
        ap = f"{mp}.attachments[{n}]"
        att = _as_obj(a, ap)
        atype = _req_word(att, "type", ap)
        payload = _obj(att, "payload", ap)
        url = _opaque(payload, "url", f"{ap}.payload", URL_MAX) if payload is not None else None
        media.append({"type": atype, "url": url} if url else {"type": atype})
        if atype in _MEDIA_TYPES:
            ctype = _MEDIA_TYPES[atype] or "application/octet-stream"
            files.append(Attachment(name=None, content_type=ctype, size=0))
    if media:
        attrs["media"] = media
    quick = _obj(m, "quick_reply", mp)
    if quick is not None:
        payload_text = _opaque(quick, "payload", f"{mp}.quick_reply", PAYLOAD_MAX)
        if payload_text is not None:
            attrs["quick_reply_payload"] = payload_text
    reply_to = _obj(m, "reply_to", mp)
    if reply_to is not None:
        reply_mid = _id(reply_to, "mid", f"{mp}.reply_to")
        if reply_mid is not None:
            attrs["reply_to"] = reply_mid
    if _bool(m, "is_unsupported", mp):
        attrs["unsupported"] = True
    return _item(
        network,
        Kind.MESSAGE,
        handle,
        attrs,
        external_id=mid,
        event_id=mid,
        text=text,
        status="message",
        attachments=tuple(files),
    )


def _whatsapp_entry(entry: Obj, path: str, out: list[Inbound]) -> None:
    account = _id(entry, "id", path)
    if "changes" not in entry:
        _add(out, _unknown("whatsapp", account, status=None), path)
        return
    for j, c in enumerate(_list(entry, "changes", path, required=True)):
        cp = f"{path}.changes[{j}]"
        change = _as_obj(c, cp)
        field = _word(change, "field", cp)
        if field is not None and field != "messages":
            # template status, account and quality updates...: not a conversation
            _add(out, _unknown("whatsapp", account, status=field), cp)
            continue
        value = _req_obj(change, "value", cp)
        vp = f"{cp}.value"
        base: dict[str, Any] = {"network": "whatsapp"}
        if account is not None:
            base["account_id"] = account
        meta = _obj(value, "metadata", vp)
        if meta is not None:
            for key in ("phone_number_id", "display_phone_number"):
                v = _opaque(meta, key, f"{vp}.metadata", WORD_MAX)
                if v is not None:
                    base[key] = v
        names = _contact_names(value, vp)
        messages = _list(value, "messages", vp)
        statuses = _list(value, "statuses", vp)
        if not messages and not statuses:
            _add(
                out,
                _unknown("whatsapp", account, status="errors" if "errors" in value else None),
                cp,
            )
            continue
        for k, msg in enumerate(messages):
            mp = f"{vp}.messages[{k}]"
            _add(out, _wa_message(_as_obj(msg, mp), mp, names, dict(base)), mp)
        for k, st in enumerate(statuses):
            sp = f"{vp}.statuses[{k}]"
            _add(out, _wa_status(_as_obj(st, sp), sp, dict(base)), sp)


def _contact_names(value: Obj, vp: str) -> dict[str | None, str]:
    """wa_id -> profile name (key None: a contact that came without its wa_id)."""
    names: dict[str | None, str] = {}
    for n, c in enumerate(_list(value, "contacts", vp)):
        cp = f"{vp}.contacts[{n}]"
        contact = _as_obj(c, cp)
        wa_id = _id(contact, "wa_id", cp)
        profile = _obj(contact, "profile", cp)
        name, _ = _text(profile, "name", f"{cp}.profile", NAME_MAX) if profile else ("", False)
        if name:
            names[wa_id] = name
    return names


def _wa_message(m: Obj, path: str, names: dict[str | None, str], attrs: dict[str, Any]) -> Inbound:
    frm = _req_id(m, "from", path)
    wamid = _req_id(m, "id", path)
    mtype = _req_word(m, "type", path)
    ts = _timestamp(m, "timestamp", path, scale=1000)
    if ts is not None:
        attrs["timestamp_ms"] = ts
    attrs["message_type"] = mtype
    # a lone contact is the sender's, whether or not its wa_id was given
    name = names.get(frm) or (next(iter(names.values())) if len(names) == 1 else None)
    customer = Customer(name=name, phone=_e164(frm), social_handle=frm)
    context = _obj(m, "context", path)
    if context is not None:
        reply_to = _id(context, "id", f"{path}.context")
        if reply_to is not None:
            attrs["reply_to"] = reply_to
        if _bool(context, "forwarded", f"{path}.context"):
            attrs["forwarded"] = True

    def item(kind: Kind, text: str = "", reason: str = "", **kw: Any) -> Inbound:
        return _item(
            "whatsapp",
            kind,
            frm,
            attrs,
            customer=customer,
            external_id=wamid if kind is not Kind.STATUS else None,
            event_id=wamid,
            text=text,
            status="message" if kind is not Kind.STATUS else mtype,
            reason=reason,
            **kw,
        )

    text, cut = "", False
    files: tuple[Attachment, ...] = ()
    if mtype == "reaction":
        return item(Kind.IGNORED, reason="reaction")
    if mtype == "system":
        system = _req_obj(m, "system", path)
        text, _ = _text(system, "body", f"{path}.system", TITLE_MAX)
        return item(Kind.STATUS, text, reason="system")
    if mtype in _WA_MEDIA:
        media = _req_obj(m, mtype, path)
        mp = f"{path}.{mtype}"
        media_id = _id(media, "id", mp)
        mime = _opaque(media, "mime_type", mp, 255) or (
            "image/webp" if mtype == "sticker" else "application/octet-stream"
        )
        attrs["media"] = [{"type": mtype, "id": media_id} if media_id else {"type": mtype}]
        filename, _ = _text(media, "filename", mp, TITLE_MAX)
        text, cut = _text(media, "caption", mp, TITLE_MAX)
        files = (Attachment(name=filename or None, content_type=mime, size=0),)
    elif mtype not in _WA_MESSAGES:
        return _unknown("whatsapp", None, status=mtype, attrs=attrs)
    elif mtype == "text":
        body = _req_obj(m, "text", path)
        text, cut = _text(body, "body", f"{path}.text", TEXT_MAX)
    elif mtype == "button":
        button = _req_obj(m, "button", path)
        bp = f"{path}.button"
        text, cut = _text(button, "text", bp, TITLE_MAX)
        payload = _opaque(button, "payload", bp, PAYLOAD_MAX)
        if payload is not None:
            attrs["button_payload"] = payload
    elif mtype == "interactive":
        text, cut = _wa_interactive(_req_obj(m, "interactive", path), f"{path}.interactive", attrs)
    elif mtype == "location":
        _wa_location(_req_obj(m, "location", path), f"{path}.location", attrs)
    elif mtype == "order":
        order = _req_obj(m, "order", path)
        text, cut = _text(order, "text", f"{path}.order", TEXT_MAX)
    elif mtype in ("unsupported", "unknown"):
        attrs["unsupported"] = True
    if cut:
        attrs["text_truncated"] = True
    return item(Kind.MESSAGE, text, attachments=files)


def _wa_interactive(inter: Obj, path: str, attrs: dict[str, Any]) -> tuple[str, bool]:
    """A tap on a reply button or list row: the title is the text, the id goes along."""
    itype = _req_word(inter, "type", path)
    attrs["interactive_type"] = itype
    reply = _obj(inter, itype, path)
    if reply is None:
        return "", False
    rp = f"{path}.{itype}"
    reply_id = _opaque(reply, "id", rp, PAYLOAD_MAX)
    if reply_id is not None:
        attrs["reply_id"] = reply_id
    if itype == "nfm_reply":  # a WhatsApp Flow's answer
        return _text(reply, "body", rp, TEXT_MAX)
    return _text(reply, "title", rp, TITLE_MAX)


def _wa_location(loc: Obj, path: str, attrs: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    for key in ("latitude", "longitude"):
        v = loc.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _fail(f"{path}.{key}", f"must be a number, got {_type_name(v)}")
        out[key] = v
    for key in ("name", "address"):
        text, _ = _text(loc, key, path, TITLE_MAX)
        if text:
            out[key] = text
    attrs["location"] = out


def _wa_status(st: Obj, path: str, attrs: dict[str, Any]) -> Inbound:
    wamid = _req_id(st, "id", path)
    status = _req_word(st, "status", path)
    recipient = _id(st, "recipient_id", path)
    ts = _timestamp(st, "timestamp", path, scale=1000)
    if ts is not None:
        attrs["timestamp_ms"] = ts
    attrs["message_ids"] = [wamid]
    codes: list[int] = []
    for n, e in enumerate(_list(st, "errors", path, max_len=MAX_ATTACHMENTS)):
        ep = f"{path}.errors[{n}]"
        code = _as_obj(e, ep).get("code")
        if code is not None:
            if isinstance(code, bool) or not isinstance(code, int):
                raise _fail(f"{ep}.code", f"must be an integer, got {_type_name(code)}")
            codes.append(code)
    if codes:
        attrs["error_codes"] = codes
    customer = Customer(phone=_e164(recipient), social_handle=recipient) if recipient else None
    return _item(
        "whatsapp",
        Kind.STATUS,
        recipient,
        attrs,
        customer=customer,
        event_id=f"{wamid}:{status}",
        status=status,
        reason="receipt",
    )


# -- building items --------------------------------------------------------------------


def _item(
    network: str,
    kind: Kind,
    handle: str | None,
    attrs: dict[str, Any],
    *,
    customer: Customer | None = None,
    external_id: str | None = None,
    event_id: str | None = None,
    text: str = "",
    status: str | None = None,
    reason: str = "",
    attachments: tuple[Attachment, ...] = (),
) -> Inbound:
    return Inbound(
        channel=CHANNEL,
        kind=kind,
        provider=PROVIDER,
        external_id=external_id,
        thread_key=f"{network}:{handle}" if handle else None,
        event_id=event_id,
        customer=customer or Customer(social_handle=handle),
        text=text,
        attributes=attrs,
        attachments=attachments,
        status=status,
        reason=reason,
    )


def _unknown(
    network: str,
    account: str | None,
    *,
    status: str | None,
    attrs: dict[str, Any] | None = None,
) -> Inbound:
    """An item we do not understand: recorded (IGNORED), never routed, never an error."""
    attributes = dict(attrs or {})
    if network:
        attributes["network"] = network
    if account is not None:
        attributes["account_id"] = account
    return Inbound(
        channel=CHANNEL,
        kind=Kind.IGNORED,
        provider=PROVIDER,
        attributes=attributes,
        status=status,
        reason="unknown_event",
    )


def _add(out: list[Inbound], item: Inbound, path: str) -> None:
    if len(out) >= MAX_ITEMS:
        raise _fail(path, f"more than {MAX_ITEMS} items in one webhook")
    out.append(item)


def _e164(number: str | None) -> str | None:
    """WhatsApp sends numbers as bare digits; the engine keeps phones in E.164."""
    if number and number.isascii() and number.isdigit() and 6 <= len(number) <= 15:
        return "+" + number
    return None


# -- reading JSON, naming the path at fault --------------------------------------------


def _fail(path: str, detail: str) -> PayloadError:
    where = path or "body"
    return PayloadError(f"{where}: {detail}", field=where)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _as_obj(v: object, path: str) -> Obj:
    if not isinstance(v, dict):
        raise _fail(path, f"must be an object, got {_type_name(v)}")
    return cast(Obj, v)


def _obj(parent: Obj, key: str, path: str) -> Obj | None:
    v = parent.get(key)
    return None if v is None else _as_obj(v, _join(path, key))


def _req_obj(parent: Obj, key: str, path: str) -> Obj:
    v = parent.get(key)
    if v is None:
        raise _fail(_join(path, key), "required")
    return _as_obj(v, _join(path, key))


def _list(
    parent: Obj, key: str, path: str, *, required: bool = False, max_len: int = MAX_ITEMS
) -> list[object]:
    v = parent.get(key)
    p = _join(path, key)
    if v is None:
        if required:
            raise _fail(p, "required")
        return []
    if not isinstance(v, list):
        raise _fail(p, f"must be an array, got {_type_name(v)}")
    if len(v) > max_len:
        raise _fail(p, f"more than {max_len} elements")
    return v


def _opaque(parent: Obj, key: str, path: str, max_len: int) -> str | None:
    """A string kept whole (payload, URL, type word): over max_len it is an error."""
    v = parent.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _fail(_join(path, key), f"must be a string, got {_type_name(v)}")
    if len(v) > max_len:
        raise _fail(_join(path, key), f"longer than {max_len} characters")
    return v


def _word(parent: Obj, key: str, path: str) -> str | None:
    return _opaque(parent, key, path, WORD_MAX)


def _req_word(parent: Obj, key: str, path: str) -> str:
    v = _opaque(parent, key, path, WORD_MAX)
    if not v:
        raise _fail(_join(path, key), "required")
    return v


def _id_value(v: object, path: str) -> str:
    if not isinstance(v, str):
        raise _fail(path, f"must be a string, got {_type_name(v)}")
    if not v:
        raise _fail(path, "required")
    if len(v) > ID_MAX:
        raise _fail(path, f"longer than {ID_MAX} characters")
    if any(c.isspace() or not c.isprintable() for c in v):
        raise _fail(path, "must not contain whitespace or control characters")
    return v


def _id(parent: Obj, key: str, path: str) -> str | None:
    """An identifier: it becomes part of thread keys and dedup keys, so no whitespace."""
    v = parent.get(key)
    return None if v is None else _id_value(v, _join(path, key))


def _req_id(parent: Obj, key: str, path: str) -> str:
    v = parent.get(key)
    if v is None:
        raise _fail(_join(path, key), "required")
    return _id_value(v, _join(path, key))


def _text(parent: Obj, key: str, path: str, max_len: int) -> tuple[str, bool]:
    """Human text, cut at max_len (a long message is still a message): (text, was_cut)."""
    v = parent.get(key)
    if v is None:
        return "", False
    if not isinstance(v, str):
        raise _fail(_join(path, key), f"must be a string, got {_type_name(v)}")
    return (v[:max_len], True) if len(v) > max_len else (v, False)


def _bool(parent: Obj, key: str, path: str) -> bool:
    v = parent.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _fail(_join(path, key), f"must be a boolean, got {_type_name(v)}")
    return v


def _timestamp(parent: Obj, key: str, path: str, *, scale: int) -> int | None:
    """Epoch time as ms: Messenger sends ms as a number, WhatsApp seconds as a string."""
    v = parent.get(key)
    if v is None:
        return None
    n: int | None = None
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and 0 < len(v) <= 16 and v.isascii() and v.isdigit():
        n = int(v)
    if n is None or not 0 <= n < 10**16:
        raise _fail(_join(path, key), "must be a non-negative integer timestamp")
    return n * scale
