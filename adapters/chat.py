"""Web chat widget and chat platform events: one JSON object per event.

    {"type": "chat.started" | "chat.message" | "chat.ended",
     "session_id": "...",                      # required
     "customer": {"id", "name", "email", "phone", "handle"},   # optional, strings
     "text": "...", "language": "es-MX",       # optional
     "attributes": {"key": scalar},            # optional, routed on by the tenant's rules
     "event_id": "..."}                        # optional, the widget's id of this event

`parse_event(obj)` returns one `Inbound` (channel "chat", provider "widget"):

- chat.started: MESSAGE, status "chat.started". external_id = session_id: the session
  IS the contact as far as the widget knows, so a repeated start (a page reload, a
  retry) finds the same contact instead of making a second one.
- chat.message: MESSAGE, status "chat.message", external_id = event_id (None without
  one). Not the session id: a message after the contact was completed must be able to
  start a new contact, which a reused external_id would turn into a "duplicate".
- chat.ended: ENDED, status "chat.ended".
- any other type: IGNORED, reason "unknown_event", status = the type. Checked before
  any other field, so a newer widget's new events never fail on an older server.

thread_key is always the session id: every event of a session is one conversation.
event_id is the one given, or for chat.started / chat.ended (once per session by
nature) `"{session_id}:{type}"`, so their retries are processed once; a chat.message
without one cannot be told from a repeat and is taken every time.

Unknown fields are ignored, not rejected: widgets and platform connectors are
upgraded separately from the server, and a 400 for a field this version does not
know would drop a customer's message. The cost is that a misspelt optional field
(`langauge`) is silently lost; required fields and the types of known ones are
checked, and a wrong one raises PayloadError naming it (`customer.email: must be a
string, got number`). Text is cut at TEXT_MAX (`attributes["text_truncated"]`).

The readers at the end (`read_customer`, `read_attributes`...) are shared with
`adapters.voice`, the other JSON event format of ours, so both stay alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, cast

from router.errors import PayloadError
from router.model import ATTRIBUTES_MAX, Customer

from .inbound import TEXT_MAX, Inbound, Kind

PROVIDER = "widget"
CHANNEL = "chat"

ID_MAX = 200  # session and event ids (the API's Idempotency-Key limit)
TYPE_MAX = 64
CUSTOMER_FIELD_MAX = 320  # as the contacts API
LANGUAGE_MAX = 35  # BCP 47 tags in practice
ATTRIBUTE_KEY_MAX = 64
ATTRIBUTE_VALUE_MAX = 1000

KINDS = {"chat.started": Kind.MESSAGE, "chat.message": Kind.MESSAGE, "chat.ended": Kind.ENDED}
_ONCE_PER_SESSION = ("chat.started", "chat.ended")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_CUSTOMER_FIELDS = ("id", "name", "email", "phone", "handle")

Obj = Mapping[str, object]


def parse_event(obj: object) -> Inbound:
    """One widget event as an `Inbound`; PayloadError names the field at fault."""
    event = read_object(obj, "body")
    etype = read_type(event)
    kind = KINDS.get(etype)
    if kind is None:
        return Inbound(
            channel=CHANNEL,
            kind=Kind.IGNORED,
            provider=PROVIDER,
            thread_key=lenient_id(event, "session_id"),
            event_id=lenient_id(event, "event_id"),
            status=etype,
            reason="unknown_event",
        )
    session = require_id(event, "session_id")
    given = read_id(event, "event_id")
    event_id = given
    if event_id is None and etype in _ONCE_PER_SESSION:
        event_id = f"{session}:{etype}"
    attributes = read_attributes(event.get("attributes"), "attributes")
    text = read_text(event, "text", attributes)
    return Inbound(
        channel=CHANNEL,
        kind=kind,
        provider=PROVIDER,
        external_id=session if etype == "chat.started" else given,
        thread_key=session,
        event_id=event_id,
        customer=read_customer(event.get("customer"), "customer"),
        text=text,
        language=read_language(event, "language"),
        attributes=attributes,
        status=etype,
    )


# -- readers shared with adapters.voice -------------------------------------------------


def field_error(path: str, detail: str) -> PayloadError:
    return PayloadError(f"{path}: {detail}", field=path)


def type_name(v: object) -> str:
    """JSON's name for a decoded value, for messages a sender can act on."""
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
    return "object" if isinstance(v, dict) else type(v).__name__


def read_object(value: object, path: str) -> Obj:
    if not isinstance(value, dict):
        raise field_error(path, f"must be an object, got {type_name(value)}")
    return cast(Obj, value)


def read_type(event: Obj) -> str:
    v = event.get("type")
    if v is None or v == "":
        raise field_error("type", "required")
    if not isinstance(v, str):
        raise field_error("type", f"must be a string, got {type_name(v)}")
    if len(v) > TYPE_MAX:
        raise field_error("type", f"longer than {TYPE_MAX} characters")
    return v


def _id_problem(v: object) -> str | None:
    if not isinstance(v, str):
        return f"must be a string, got {type_name(v)}"
    if not v:
        return "required"
    if len(v) > ID_MAX:
        return f"longer than {ID_MAX} characters"
    if any(c.isspace() or not c.isprintable() for c in v):
        return "must not contain whitespace or control characters"
    return None


def read_id(event: Obj, key: str) -> str | None:
    """An id: it keys threads and dedup records, so 1-ID_MAX printable, no whitespace."""
    return None if event.get(key) is None else require_id(event, key)


def require_id(event: Obj, key: str) -> str:
    v = event.get(key)
    problem = "required" if v is None else _id_problem(v)
    if problem:
        raise field_error(key, problem)
    return cast(str, v)


def lenient_id(event: Obj, key: str) -> str | None:
    """The id if it is a good one, else None: for events we only record."""
    v = event.get(key)
    return cast(str, v) if v is not None and _id_problem(v) is None else None


def read_text(event: Obj, key: str, attributes: dict[str, Any]) -> str:
    """Customer text, cut at TEXT_MAX: a long message is still the customer's message."""
    v = event.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise field_error(key, f"must be a string, got {type_name(v)}")
    if len(v) > TEXT_MAX:
        attributes["text_truncated"] = True
        return v[:TEXT_MAX]
    return v


def read_language(event: Obj, key: str) -> str | None:
    v = event.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise field_error(key, f"must be a string, got {type_name(v)}")
    if len(v) > LANGUAGE_MAX or not _LANGUAGE.fullmatch(v):
        raise field_error(key, "must be a language tag such as en or es-MX")
    return v


def read_customer(value: object, path: str) -> Customer:
    """`{id, name, email, phone, handle}`, each a string or null; other keys ignored."""
    if value is None:
        return Customer()
    obj = read_object(value, path)
    fields: dict[str, str | None] = {}
    for key in _CUSTOMER_FIELDS:
        v = obj.get(key)
        if v is None or v == "":
            fields[key] = None
            continue
        if not isinstance(v, str):
            raise field_error(f"{path}.{key}", f"must be a string, got {type_name(v)}")
        if len(v) > CUSTOMER_FIELD_MAX:
            raise field_error(f"{path}.{key}", f"longer than {CUSTOMER_FIELD_MAX} characters")
        fields[key] = v
    return Customer(
        id=fields["id"],
        name=fields["name"],
        email=fields["email"],
        phone=fields["phone"],
        social_handle=fields["handle"],
    )


def read_attributes(value: object, path: str) -> dict[str, Any]:
    """Flat routing data: at most ATTRIBUTES_MAX keys, each a string, number, bool or null.

    Flat because routing rules compare values, and bounded because they are stored
    with the contact.
    """
    if value is None:
        return {}
    obj = read_object(value, path)
    if len(obj) > ATTRIBUTES_MAX:
        raise field_error(path, f"more than {ATTRIBUTES_MAX} keys")
    out: dict[str, Any] = {}
    for key, v in obj.items():
        if not isinstance(key, str) or not 0 < len(key) <= ATTRIBUTE_KEY_MAX:
            raise field_error(path, f"keys must be 1-{ATTRIBUTE_KEY_MAX} characters")
        where = f"{path}.{key}"
        if isinstance(v, str):
            if len(v) > ATTRIBUTE_VALUE_MAX:
                raise field_error(where, f"longer than {ATTRIBUTE_VALUE_MAX} characters")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise field_error(where, "must be a finite number")
        elif isinstance(v, int) and not isinstance(v, bool):
            if not -(2**63) <= v < 2**64:
                raise field_error(where, "must fit in 64 bits")
        elif v is not None and not isinstance(v, bool):
            raise field_error(
                where, f"must be a string, number, boolean or null, got {type_name(v)}"
            )
        out[key] = v
    return out
