"""Generic JSON call events from SIP PBXs (Asterisk / FreeSWITCH style integrations).

    {"type": "call.queued" | "call.answered" | "call.hangup",
     "call_id": "...",                        # required: the PBX's id of the call
     "from": "+34911234567", "to": "+34900100200",   # optional: caller and dialed number
     "ivr": {"menu": "2", "lang": "es"},      # optional: the caller's IVR selections
     "language": "es", "attributes": {...},   # optional, as in adapters.chat
     "customer": {"id", "name", "email", "phone", "handle"},   # optional
     "event_id": "..."}                       # optional

`parse_event(obj)` returns one `Inbound` (channel "voice", provider "pbx",
external_id = thread_key = call_id, status = the type):

- call.queued: MESSAGE (the caller is waiting: a new contact);
- call.answered: ANSWERED;
- call.hangup: ENDED (a hang-up while queued abandons the contact);
- any other type: IGNORED, reason "unknown_event", checked before any other field.

event_id is the one given, else `"{call_id}:{type}"`: each of these happens once per
call, so a PBX's retry is processed once.

`from` and `to` go to `attributes["from"]` / `attributes["to"]` (the dialed number is
what tenants route on most), overriding same-named keys of `attributes`. `from` is
also the customer's phone unless `customer.phone` is given, or `from` is a withheld
caller id such as "anonymous" (which would otherwise make all such callers one
customer). IVR values may be strings or integers (digits pressed), kept as strings.

Fields, bounds and the unknown-field policy (ignored, for the reason given in
adapters.chat) are those of adapters.chat, whose readers this module uses.
"""

from __future__ import annotations

from router.model import Customer

from .chat import (
    Obj,
    field_error,
    lenient_id,
    read_attributes,
    read_customer,
    read_id,
    read_language,
    read_object,
    read_type,
    require_id,
    type_name,
)
from .inbound import Inbound, Kind

PROVIDER = "pbx"
CHANNEL = "voice"

NUMBER_MAX = 256  # E.164 numbers, SIP URIs
IVR_KEYS_MAX = 32
IVR_KEY_MAX = 64
IVR_VALUE_MAX = 256
# What PBXs put in the caller id when the caller hides it.
WITHHELD = frozenset({"anonymous", "unknown", "private", "restricted", "unavailable"})

KINDS = {"call.queued": Kind.MESSAGE, "call.answered": Kind.ANSWERED, "call.hangup": Kind.ENDED}


def parse_event(obj: object) -> Inbound:
    """One PBX call event as an `Inbound`; PayloadError names the field at fault."""
    event = read_object(obj, "body")
    etype = read_type(event)
    kind = KINDS.get(etype)
    if kind is None:
        call_id = lenient_id(event, "call_id")
        return Inbound(
            channel=CHANNEL,
            kind=Kind.IGNORED,
            provider=PROVIDER,
            external_id=call_id,
            thread_key=call_id,
            event_id=lenient_id(event, "event_id"),
            status=etype,
            reason="unknown_event",
        )
    call_id = require_id(event, "call_id")
    attributes = read_attributes(event.get("attributes"), "attributes")
    caller = _number(event, "from")
    dialed = _number(event, "to")
    for key, number in (("from", caller), ("to", dialed)):
        if number is not None:
            attributes[key] = number
    customer = read_customer(event.get("customer"), "customer")
    if customer.phone is None and caller is not None and caller.lower() not in WITHHELD:
        customer = Customer(**{**customer.__dict__, "phone": caller})
    return Inbound(
        channel=CHANNEL,
        kind=kind,
        provider=PROVIDER,
        external_id=call_id,
        thread_key=call_id,
        event_id=read_id(event, "event_id") or f"{call_id}:{etype}",
        customer=customer,
        language=read_language(event, "language"),
        attributes=attributes,
        ivr=_ivr(event.get("ivr")),
        status=etype,
    )


def _number(event: Obj, key: str) -> str | None:
    """A caller or dialed number as the PBX gives it (E.164, extension, SIP URI)."""
    v = event.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise field_error(key, f"must be a string, got {type_name(v)}")
    if len(v) > NUMBER_MAX or any(c.isspace() or not c.isprintable() for c in v):
        raise field_error(key, f"must be 1-{NUMBER_MAX} characters without spaces")
    return v


def _ivr(value: object) -> dict[str, str]:
    if value is None:
        return {}
    obj = read_object(value, "ivr")
    if len(obj) > IVR_KEYS_MAX:
        raise field_error("ivr", f"more than {IVR_KEYS_MAX} keys")
    out: dict[str, str] = {}
    for key, v in obj.items():
        if not isinstance(key, str) or not 0 < len(key) <= IVR_KEY_MAX:
            raise field_error("ivr", f"keys must be 1-{IVR_KEY_MAX} characters")
        where = f"ivr.{key}"
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**18:
            v = str(v)
        if not isinstance(v, str):
            raise field_error(where, f"must be a string or a natural number, got {type_name(v)}")
        if len(v) > IVR_VALUE_MAX:
            raise field_error(where, f"longer than {IVR_VALUE_MAX} characters")
        out[key] = v
    return out
