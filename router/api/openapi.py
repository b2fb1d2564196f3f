"""The OpenAPI 3.1 document of the v1 API, served at GET /openapi.json.

It is built here, in Python, next to the handlers it describes, from the same
constants they use (id pattern, body bounds, field lists, enums), so a change
to a rule shows up in the document. tests/api/test_openapi.py checks that the
document is valid, names every route the app registers, and that the live
server answers as it says (schemathesis).

Request body schemas state the rules of bodies.py exactly: which fields are
required, their types and bounds, and `additionalProperties: false` wherever
unknown fields are rejected. An optional field may also be `null`, which the
API reads as "absent". Rules that depend on a tenant's configuration (which
channels, queues and pools exist) are in the descriptions, not the schemas.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from aiohttp import web

from ..config.model import Role, Strategy
from ..ids import ID_PATTERN
from ..model import PREVIEW_MAX, SUBJECT_MAX, AgentStatus, ContactState
from ..sla import SlaStatus
from .agent_events import KEEPALIVE_S, MAX_STREAMS_PER_AGENT, RECHECK_S
from .agents import MAX_WAIT_S
from .bodies import MAX_DEPTH, MAX_NUMBER, MAX_STRING, MIN_NUMBER
from .contacts import CUSTOMER_FIELDS
from .problems import PROBLEM_JSON

JSON = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
MSGPACK = "application/msgpack"
EVENT_STREAM = "text/event-stream"
ID_REGEX = f"^{ID_PATTERN}$"
# JSON Schema counts 2.0 as an integer; the body readers take only the literal 2.
INTEGER = {"description": "an integer literal: 2, not 2.0"}


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JSON) -> JSON:
    """`schema`, or null (which the body readers treat as an absent field)."""
    types = schema["type"]
    return {**schema, "type": [*(types if isinstance(types, list) else [types]), "null"]}


def _text(max_len: int, **extra: Any) -> JSON:
    """Body.text: a string of at most `max_len` characters."""
    return {"type": "string", "maxLength": max_len, **extra}


def _ident(**extra: Any) -> JSON:
    """Body.ident and ids.validate_id: a safe id."""
    return {"type": "string", "pattern": ID_REGEX, "minLength": 1, "maxLength": 64, **extra}


def _levels(lo: int, hi: int, description: str) -> JSON:
    """Body.levels: an object of id -> integer lo..hi."""
    return {
        "type": "object",
        "propertyNames": {"pattern": ID_REGEX},
        "additionalProperties": {"type": "integer", "minimum": lo, "maximum": hi, **INTEGER},
        "description": description,
    }


def _enum(values: list[str], **extra: Any) -> JSON:
    return {"type": "string", "enum": values, **extra}


CONTACT_STATES = [s.value for s in ContactState]
AGENT_STATUSES = [s.value for s in AgentStatus]
STRATEGIES = [s.value for s in Strategy]
TIMESTAMP = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, milliseconds"}
INT_MAP = {"type": "object", "additionalProperties": {"type": "integer"}}


def _bounded_json_schemas() -> dict[str, JSON]:
    """Free-form JSON as bodies._check_bounds allows it: strings of at most MAX_STRING
    characters, numbers in msgpack's 64-bit range, nested at most MAX_DEPTH levels
    below the body. `JsonAtDepthN` is a value N levels down (a top-level field is at
    depth 1)."""
    out: dict[str, JSON] = {}
    for depth in range(2, MAX_DEPTH + 1):
        deeper: JSON | bool = _ref(f"JsonAtDepth{depth + 1}") if depth < MAX_DEPTH else False
        out[f"JsonAtDepth{depth}"] = {
            "type": ["null", "boolean", "number", "string", "array", "object"],
            "maxLength": MAX_STRING,
            "minimum": MIN_NUMBER,
            "exclusiveMaximum": MAX_NUMBER,
            "items": deeper,
            "additionalProperties": deeper,
        }
    return out


def _schemas() -> dict[str, JSON]:
    customer_in = {
        name: _nullable(_text(320, description="at most 320 characters"))
        for name in CUSTOMER_FIELDS
    }
    new_contact = {
        "type": "object",
        "additionalProperties": False,
        "required": ["channel"],
        "properties": {
            "channel": _text(64, description="one of the tenant's channels (voice, chat...)"),
            "queue": _nullable(
                _ident(description="a queue of the tenant; default: the channel's default queue")
            ),
            "skills": _nullable(
                _levels(1, 5, "extra skill requirements for this contact, level 1..5")
            ),
            "priority": _nullable(
                {"type": "integer", "minimum": -1000, "maximum": 1000, "default": 0, **INTEGER}
            ),
            "language": _nullable(_text(35)),
            "customer": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": customer_in,
            },
            "subject": _nullable(_text(10_000, description=f"kept up to {SUBJECT_MAX} characters")),
            "body": _nullable(
                _text(
                    60_000,
                    description=f"the message; kept up to {PREVIEW_MAX} characters as `preview`",
                )
            ),
            "attributes": {
                "type": ["object", "null"],
                "additionalProperties": _ref("JsonAtDepth2"),
                "description": f"free-form; strings up to {MAX_STRING} characters, numbers "
                f"in the 64-bit integer range, nested at most {MAX_DEPTH - 1} levels deep",
            },
            "external_id": _nullable(
                _text(500, description="the platform's own id; also an idempotency key")
            ),
            "preferred_agent": _nullable(_ident(description="offer to this agent first")),
            "region": _nullable(
                _text(
                    32,
                    pattern="^[a-z][a-z0-9-]{0,31}$",
                    description="data-residency region, e.g. `eu`: the contact is only ever "
                    "offered to pools allowed for it (docs/vendors.md); 422 when no pool of "
                    "the queue may serve it",
                )
            ),
        },
    }

    def reason_body(name: str, description: str) -> JSON:  # {reason} or {disposition}
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: _nullable(_ident(description=description))},
        }

    contact_out: dict[str, JSON] = {
        "id": {"type": "string"},
        "state": _enum(CONTACT_STATES),
        "channel": {"type": "string"},
        "queue": {"type": "string"},
        "stage": {"type": "integer", "minimum": 0, "description": "overflow stage reached"},
        "priority": {"type": "integer"},
        "agent": {"type": ["string", "null"]},
        "pool": {"type": ["string", "null"]},
        "created_at": {
            **TIMESTAMP,
            "description": "when its wait started (RFC 3339, UTC): the arrival, or for a "
            "contact held while its queue was closed, the opening that queued it",
        },
        "arrived_at": {
            **TIMESTAMP,
            "description": "when it arrived (RFC 3339, UTC); before created_at for a "
            "contact held while its queue was closed",
        },
        "offer_expires_at": _nullable(TIMESTAMP),
        "assigned_at": _nullable(TIMESTAMP),
        "wrap_up_at": _nullable(TIMESTAMP),
        "completed_at": _nullable(TIMESTAMP),
        "abandoned_at": _nullable(TIMESTAMP),
        "first_response_at": _nullable(TIMESTAMP),
        "disposition": {"type": ["string", "null"]},
        "preferred_agent": {"type": ["string", "null"]},
        "customer": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: {"type": "string"} for k in ("id", "name", "email", "phone", "social_handle")
            },
            "description": "the customer as given; `handle` is returned as `social_handle`",
        },
        "subject": {"type": "string"},
        "preview": {"type": "string"},
        "language": {"type": ["string", "null"]},
        "region": {
            "type": ["string", "null"],
            "description": "data-residency region given at ingest; null when untagged",
        },
        "skills": INT_MAP,
        "attributes": {"type": "object"},
        "external_id": {"type": ["string", "null"]},
        "routing": {
            "type": ["object", "null"],
            "description": "why the contact was last offered to whom; null before any offer",
            "properties": {
                "strategy": {"type": "string"},
                "reason": {"type": "string"},
                "chosen": {"type": "string"},
                "candidates": {"type": ["array", "object"]},
                "at": {"type": "integer", "description": "epoch milliseconds"},
            },
        },
        "sla": {
            "oneOf": [{"type": "null"}, _ref("Sla")],
            "description": "the service level against the queue's target; null when the "
            "queue is no longer configured",
        },
    }
    agent_out: dict[str, JSON] = {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "pool": {"type": "string"},
        "skills": INT_MAP,
        "capacity": INT_MAP,
        "load": INT_MAP,
        "status": _enum(AGENT_STATUSES),
        "reason": {"type": ["string", "null"]},
        "idle_since": TIMESTAMP,
        "missed_offers": {"type": "integer", "minimum": 0},
        "last_seen": TIMESTAMP,
        "offers": {"type": "array", "items": {"type": "string"}},
        "contacts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "contacts the agent holds, other than open offers",
        },
    }
    queue_out: dict[str, JSON] = {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "channels": {"type": "array", "items": {"type": "string"}},
        "skills": INT_MAP,
        "pools": {"type": "array", "items": {"type": "string"}},
        "stages": {
            "type": "array",
            "items": _closed(
                {
                    "after_s": {"type": "number", "minimum": 0},
                    "pools": {"type": "array", "items": {"type": "string"}},
                    "min_proficiency": {"type": ["integer", "null"]},
                    "estimated_wait_s": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    "when_unstaffed": {"type": "boolean"},
                }
            ),
        },
        "strategy": _enum(STRATEGIES),
        "sla": _closed(
            {
                "threshold_s": {"type": "number"},
                "target": {"type": "number", "minimum": 0, "maximum": 1},
            }
        ),
        "waiting": {"type": "integer", "minimum": 0},
        "held": {
            "type": "integer",
            "minimum": 0,
            "description": "new contacts held while the queue is closed (not in waiting)",
        },
        "longest_wait_s": {"type": ["number", "null"], "minimum": 0},
        "agents_available": {"type": "integer", "minimum": 0},
    }
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details; extension members may be present",
            "required": ["type", "title", "status", "detail"],
            "additionalProperties": True,
            "properties": {
                "type": {"type": "string", "format": "uri-reference", "default": "about:blank"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "field": {"type": "string", "description": "the request field at fault"},
                "code": {"type": "string", "description": "the engine's error code"},
            },
        },
        "NewContact": new_contact,
        "ContactCreated": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "state", "queue", "agent"],
            "properties": {
                "id": {"type": "string"},
                "state": _enum(CONTACT_STATES),
                "queue": {"type": "string"},
                "agent": {"type": ["string", "null"], "description": "the agent offered to"},
                "position": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "place in line; only when the contact is queued",
                },
                "estimated_wait_s": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "description": "expected wait in seconds: place in line x recent handle "
                    "time per slot / agents available for the queue; null when there is no "
                    "basis (no agent available, no completed contact yet); only when queued",
                },
            },
        },
        "Contact": _closed(contact_out),
        "ContactDetail": _closed(
            {
                **contact_out,
                "timeline": {
                    "type": "array",
                    "description": "follow-ups on the conversation, newest first (at most 50)",
                    "items": {
                        "type": "object",
                        "required": ["at", "kind"],
                        "properties": {
                            "at": {"type": "integer", "description": "epoch ms"},
                            "kind": _enum(["message", "ended", "answered", "status", "ignored"]),
                            "text": {"type": "string"},
                            "subject": {"type": "string"},
                            "id": {"type": "string"},
                            "status": {"type": "string"},
                            "reason": {"type": "string"},
                            "attachments": {"type": "array"},
                        },
                    },
                },
            }
        ),
        "Sla": _closed(
            {
                "threshold_s": {"type": "number", "minimum": 0},
                "target": {"type": "number", "minimum": 0, "maximum": 1},
                "due_at": TIMESTAMP,
                "status": _enum(
                    [s.value for s in SlaStatus],
                    description="waiting / breached: not answered, inside / past the "
                    "threshold; met / missed: answered inside / after it; short_abandon: "
                    "left inside it (not counted); abandoned: left after it",
                ),
                "answered_in_s": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "description": "answer clock: time to answer; first_response: time "
                    "to the first response (or to completion without one)",
                },
                "kind": _enum(
                    ["answer", "first_response"],
                    description="the main clock: answer (voice, chat) or first response "
                    "(other channels, on queues whose config has an sla table)",
                ),
                "warning_at": _nullable(TIMESTAMP),
                "resolution": {
                    "type": ["object", "null"],
                    "additionalProperties": False,
                    "description": "the resolution clock (sla.resolution_s), met on completion",
                    "properties": {
                        "due_at": TIMESTAMP,
                        "status": _enum([s.value for s in SlaStatus]),
                    },
                },
            }
        ),
        "Responder": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "agent": _nullable(
                    _ident(description="the agent responding; must hold the contact")
                )
            },
        },
        "ContactList": _closed(
            {"contacts": {"type": "array", "items": _ref("Contact")}},
        ),
        "Survey": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "description": "the customer's answer: csat, nps or both",
            "properties": {
                "csat": {"type": "integer", "minimum": 1, "maximum": 5, "description": "1-5"},
                "nps": {"type": "integer", "minimum": 0, "maximum": 10, "description": "0-10"},
            },
        },
        "SurveyRecord": _closed(
            {
                "contact": {"type": "string"},
                "agent": {"type": "string", "description": "the answering agent, credited"},
                "pool": {"type": "string", "description": "that agent's pool, credited"},
                "csat": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
                "nps": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
                "at": {"type": "integer", "description": "when it was recorded (ms)"},
            }
        ),
        "Reason": reason_body("reason", "why: e.g. the customer left, the agent is busy"),
        "Transfer": {
            "type": "object",
            "additionalProperties": False,
            "description": "exactly one of `queue` or `agent`",
            "properties": {
                "queue": _nullable(_ident(description="a queue of the tenant")),
                "agent": _nullable(_ident(description="an agent of the tenant")),
            },
            "oneOf": [
                {"required": ["queue"], "properties": {"queue": {"type": "string"}}},
                {"required": ["agent"], "properties": {"agent": {"type": "string"}}},
            ],
        },
        "Disposition": reason_body("disposition", "the outcome, e.g. solved"),
        "AgentUpsert": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pool"],
            "properties": {
                "name": _nullable(_text(200)),
                "pool": _ident(description="a pool of the tenant"),
                "skills": _nullable(_levels(1, 5, "skill -> proficiency 1..5")),
                "capacity": _nullable(
                    _levels(0, 100, "channel of the tenant -> concurrent contacts 0..100")
                ),
                "status": _nullable(_enum(AGENT_STATUSES, default="offline")),
            },
        },
        "AgentStatusChange": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {
                "status": _enum(AGENT_STATUSES),
                "reason": _nullable(_ident(description="e.g. lunch")),
            },
        },
        "Agent": _closed(agent_out),
        "AgentList": _closed({"agents": {"type": "array", "items": _ref("Agent")}}),
        "AgentToken": _closed(
            {
                "agent": {"type": "string"},
                "token": {
                    "type": "string",
                    "pattern": "^sb1\\.",
                    "description": "shown once: only its SHA-256 is kept",
                },
                "roles": {"type": "array", "items": {"const": "agent"}},
                "tokens": {"type": "integer", "minimum": 1, "description": "the agent's tokens"},
            }
        ),
        "TokensRevoked": _closed({"agent": {"type": "string"}, "tokens": {"const": 0}}),
        "ChannelOutcome": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "state", "queue"],
            "properties": {
                "id": {"type": ["string", "null"], "description": "the contact's id"},
                "state": {"oneOf": [{"type": "null"}, _enum(CONTACT_STATES)]},
                "queue": {"type": ["string", "null"]},
                "reason": {
                    "type": "string",
                    "description": "200: added, reopened, ended, closed or duplicate; 202: why "
                    "it was not routed (auto_reply, bounce, bulk, unknown_event, "
                    "no_conversation...)",
                },
                "duplicate": {"const": True, "description": "a provider retry, seen before"},
                "status": {"type": "integer", "description": "in a batch: this item's status"},
            },
        },
        "ChannelEvent": {
            "type": "object",
            "description": "chat: {type: chat.started|chat.message|chat.ended, session_id, "
            "customer, text, language, attributes, event_id}; voice: {type: "
            "call.queued|call.answered|call.hangup, call_id, from, to, ivr, event_id}",
        },
        "MetaResults": _closed(
            {"results": {"type": "array", "items": _ref("ChannelOutcome")}},
        ),
        "Reloaded": _closed(
            {
                "version": {"type": "integer", "minimum": 1},
                "queues": {"type": "array", "items": {"type": "string"}},
                "pools": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "Heartbeat": _closed({"agent": {"type": "string"}, "status": _enum(AGENT_STATUSES)}),
        "Offer": _closed(
            {
                "id": {"type": "string", "description": "the offer's id is its contact's id"},
                "contact": _ref("Contact"),
                "queue": {"type": "string"},
                "expires_at": _nullable(TIMESTAMP),
            }
        ),
        "OfferList": _closed({"offers": {"type": "array", "items": _ref("Offer")}}),
        "Empty": {"type": "object", "additionalProperties": False},
        "Rejected": _closed({"id": {"type": "string"}, "rejected": {"const": True}}),
        "Queue": _closed(queue_out),
        "QueueList": _closed({"queues": {"type": "array", "items": _ref("Queue")}}),
        "Health": _closed({"status": {"const": "ok"}}),
        "Ready": _closed(
            {
                "status": {"const": "ready"},
                "tenants": {"type": "array", "items": {"type": "string"}},
                "memory": _ref("MemoryHeadroom"),
            }
        ),
        "MemoryHeadroom": _closed(
            {
                "used_bytes": {"type": "integer", "minimum": 0},
                "limit_bytes": {"type": ["integer", "null"], "minimum": 0},
                "limit_source": {"enum": ["maxmemory", "system", "unknown"]},
                "policy": {"type": "string"},
                "fail_at_ratio": {"type": "number"},
                "used_ratio": {"type": ["number", "null"], "minimum": 0},
                "headroom_bytes": {"type": ["integer", "null"], "minimum": 0},
                "ok": {"type": "boolean"},
            }
        ),
        **_bounded_json_schemas(),
        **_webhook_schemas(),
        **_metrics_schemas(),
        **_vendor_schemas(),
        **_privacy_schemas(),
    }


def _closed(properties: dict[str, JSON]) -> JSON:
    """A response object that always has exactly these members."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


# -- responses -----------------------------------------------------------------

_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Malformed", "The body is not valid JSON or msgpack."),
    401: ("Unauthorized", "No bearer token, or one that is not valid."),
    403: ("Forbidden", "The token lacks the role, or may not act for this agent."),
    404: ("NotFound", "No such resource for this tenant (or not visible to this token)."),
    406: ("NotAcceptable", "The Accept header excludes the only media type served here."),
    409: ("Conflict", "Not allowed in the resource's current state; nothing changed."),
    408: ("RequestTimeout", "The body did not arrive within the server's body timeout."),
    413: ("TooLarge", "The body is larger than the server's limit ({max_body} bytes by default)."),
    415: ("UnsupportedMediaType", "Send application/json or application/msgpack."),
    422: ("Invalid", "A field is invalid; `detail` starts with it and `field` names it."),
    429: ("TooManyRequests", "Too many requests, or too many open streams; see `detail`."),
    500: ("InternalError", "An unexpected error; it was logged."),
    503: ("Unavailable", "The data store is unreachable, a queue is full, or not ready yet."),
}


def _problem_response(status: int, description: str) -> JSON:
    out: JSON = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
    }
    if status == 401:
        out["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}
        }
    if status == 429:
        out["headers"] = {
            "Retry-After": {
                "description": "seconds until the token may send again",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    if status == 503:
        out["headers"] = {
            "Retry-After": {
                "description": "seconds; sent when the data store is down or not ready",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    return out


def _responses(max_body: int) -> dict[str, JSON]:
    return {
        name: _problem_response(s, d.format(max_body=max_body))
        for s, (name, d) in _PROBLEMS.items()
    }


def _ok(schema: str, description: str = "OK", *, json_only: bool = False) -> JSON:
    """JSON, or msgpack for a caller that sends `Accept: application/msgpack`."""
    content = {"application/json": {"schema": _ref(schema)}}
    if not json_only:
        content[MSGPACK] = {"schema": _ref(schema)}
    return {"description": description, "content": content}


# -- operations ----------------------------------------------------------------

BODY_ERRORS = (400, 408, 413, 415, 422)
ALWAYS = (500, 503)


def _body(schema: str, *, required: bool) -> JSON:
    """A request body in JSON or msgpack. An empty body reads as `{}`."""
    return {
        "required": required,
        "content": {
            "application/json": {"schema": _ref(schema)},
            MSGPACK: {"schema": _ref(schema)},
        },
    }


def _path_param(name: str, description: str, *, ident: bool = True) -> JSON:
    schema = _ident() if ident else {"type": "string", "minLength": 1}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


CONTACT_ID = _path_param("id", "the contact's id")
AGENT_ID = _path_param("id", "the agent's id")
OFFER_ID = _path_param("id", "the offer's id (its contact's id)")


def _op(
    op_id: str,
    tag: str,
    summary: str,
    ok: dict[str, JSON],
    errors: tuple[int, ...],
    *,
    roles: tuple[Role, ...] | None = (),
    params: tuple[JSON, ...] = (),
    body: JSON | None = None,
    description: str = "",
) -> JSON:
    """One operation. `roles`: None for a public route, () for any authenticated caller."""
    codes = set(errors) | set(ALWAYS)
    if roles is not None:
        codes.update((401, 429))  # 429: the token's rate limit
    if body is not None:
        codes.update(BODY_ERRORS)
    responses: JSON = dict(ok)
    for status in sorted(codes):
        responses[str(status)] = {"$ref": f"#/components/responses/{_PROBLEMS[status][0]}"}
    out: JSON = {"operationId": op_id, "tags": [tag], "summary": summary}
    if roles is None:
        out["security"] = []
        who = "Public: no token needed."
    else:
        out["x-roles"] = [r.value for r in roles]
        who = (
            f"Roles: {', '.join(r.value for r in roles)}."
            if roles
            else "Any role (what is visible depends on it)."
        )
    out["description"] = f"{description}\n\n{who}".strip()
    if params:
        out["parameters"] = list(params)
    if body is not None:
        out["requestBody"] = body
    out["responses"] = responses
    return out


def _outcomes() -> dict[str, JSON]:
    return {
        "201": _ok("ChannelOutcome", "A new contact"),
        "200": _ok("ChannelOutcome", "An event on an existing contact"),
        "202": _ok("ChannelOutcome", "Recorded, not routed (reason in the body)"),
    }


def _channel_paths() -> dict[str, JSON]:
    ingest = Role.INGEST
    tenant = _path_param("tenant", "the tenant's id")
    xml = {
        "200": {
            "description": "TwiML: <Enqueue> for a new call, else an empty <Response/>",
            "content": {"text/xml": {"schema": {"type": "string"}}},
        }
    }
    json_event = {
        "required": True,
        "content": {"application/json": {"schema": _ref("ChannelEvent")}},
    }
    form = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
    out: dict[str, JSON] = {}
    for name, summary in (("chat", "A chat widget event"), ("voice", "A telephony call event")):
        out[f"/v1/channels/{name}"] = {
            "post": _op(
                f"channel_{name}",
                "channels",
                summary,
                _outcomes(),
                (403,),
                roles=(ingest,),
                body=json_event,
            )
        }
    out["/v1/channels/email"] = {
        "post": _op(
            "channel_email",
            "channels",
            "A raw RFC 5322 email message",
            _outcomes(),
            (403,),
            roles=(ingest,),
            body={
                "required": True,
                "content": {"message/rfc822": {"schema": {"type": "string"}}},
            },
            description="Replies thread by In-Reply-To/References; auto-replies, bounces "
            "and bulk mail answer 202. Up to 10 MiB.",
        )
    }
    for kind in ("voice", "sms"):
        out[f"/v1/webhooks/{{tenant}}/twilio/{kind}"] = {
            "post": _op(
                f"twilio_{kind}",
                "webhooks",
                f"Twilio {kind} webhook (signed with X-Twilio-Signature)",
                xml,
                (401, 404),
                roles=None,
                params=(tenant,),
                body=form,
            )
        }
    out["/v1/webhooks/{tenant}/meta"] = {
        "get": _op(
            "meta_subscribe",
            "webhooks",
            "Meta subscription handshake",
            {
                "200": {
                    "description": "hub.challenge, echoed",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
            (400, 403, 404),
            roles=None,
            params=(tenant,),
        ),
        "post": _op(
            "meta_webhook",
            "webhooks",
            "Meta webhook: Messenger, Instagram, WhatsApp (signed with X-Hub-Signature-256)",
            {"200": _ok("MetaResults", "Each item's outcome", json_only=True)},
            (401, 404),
            roles=None,
            params=(tenant,),
            body=json_event,
        ),
    }
    return out


def _paths() -> dict[str, JSON]:
    ingest, agent, sup, admin = Role.INGEST, Role.AGENT, Role.SUPERVISOR, Role.ADMIN
    contact_actions = {
        "abandon": (
            "abandon_contact",
            "The customer left",
            (ingest, admin),
            "Reason",
            "",
        ),
        "transfer": (
            "transfer_contact",
            "Transfer to another queue or agent",
            (agent, sup, admin),
            "Transfer",
            "An agent transfers a contact it holds (409 otherwise). A contact with a "
            "data-residency `region` goes only where a pool may serve it: a queue with no "
            "such pool is refused with 422, an agent of a pool not allowed for the region "
            "with 409.",
        ),
        "complete": (
            "complete_contact",
            "End the conversation",
            (agent, admin),
            "Disposition",
            "To wrap-up if the queue has one, else completed; completing a contact in "
            "wrap-up finishes it.",
        ),
        "wrapup-done": (
            "finish_wrap_up",
            "The agent finished wrap-up",
            (agent, admin),
            "Disposition",
            "409 unless the contact is in wrap-up.",
        ),
        "respond": (
            "respond_contact",
            "The agent sent its first reply",
            (agent, admin),
            "Responder",
            "Records the first response (meets the first-response SLA; emits "
            "contact.responded). A repeat returns 200 with the original time and changes "
            "nothing. 409 when the contact is not held by the agent, or not assigned or in "
            "wrap-up before any response.",
        ),
    }
    paths: dict[str, JSON] = {
        "/v1/contacts": {
            "post": _op(
                "create_contact",
                "contacts",
                "Ingest a contact and route it",
                {
                    "201": _ok("ContactCreated", "Created (and offered, when an agent is ready)"),
                    "200": _ok("ContactCreated", "Seen before (same idempotency key): unchanged"),
                },
                (403, 409, 503),
                roles=(ingest,),
                params=(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "a retry with the same key returns the first contact",
                        "schema": {"type": "string", "maxLength": 200},
                    },
                ),
                body=_body("NewContact", required=True),
                description="A contact without `queue` goes to its channel's default queue. "
                "Outside a queue's hours (docs/sla.md) the contact is held until the opening "
                "(`state` queued, no position), goes to the queue's `closed_queue`, or is "
                "refused: 409 with `code` and `reason` `queue_closed`, `queue`, `opens_at` "
                "and `opens_at_ms`. A contact with a `region` that no pool of its queue (or "
                "its overflow queues) may serve is refused with 422 naming the region and "
                "the queue.",
            ),
            "get": _op(
                "find_contacts",
                "contacts",
                "Find contacts by external id",
                {"200": _ok("ContactList")},
                (403, 422),
                roles=(ingest, sup, admin),
                params=(
                    {
                        "name": "external_id",
                        "in": "query",
                        "required": True,
                        "description": "the platform's or provider's own id",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 500},
                    },
                ),
                description="A pool-scoped supervisor sees its pool's contacts only.",
            ),
        },
        "/v1/contacts/{id}": {
            "get": _op(
                "get_contact",
                "contacts",
                "Read a contact, with its conversation's timeline",
                {"200": _ok("ContactDetail")},
                (404, 422),
                params=(CONTACT_ID,),
                description="Supervisors and admins read any contact (a pool-scoped "
                "supervisor, its pool's); an agent, the contacts it holds. Others get 404.",
            ),
        },
    }
    for action, (op_id, summary, roles, schema, desc) in contact_actions.items():
        paths[f"/v1/contacts/{{id}}/{action}"] = {
            "post": _op(
                op_id,
                "contacts",
                summary,
                {"200": _ok("Contact", "The contact after the action")},
                (403, 404, 409, 422),
                roles=roles,
                params=(CONTACT_ID,),
                body=_body(schema, required=action == "transfer"),
                description=desc,
            )
        }
    paths["/v1/contacts/{id}/survey"] = {
        "post": _op(
            "survey_contact",
            "contacts",
            "The customer's survey answer",
            {
                "201": _ok("SurveyRecord", "Recorded (emits contact.surveyed)"),
                "200": _ok("SurveyRecord", "The same survey was recorded before: unchanged"),
            },
            (403, 404, 409, 422),
            roles=(ingest, admin),
            params=(CONTACT_ID,),
            body=_body("Survey", required=True),
            description="CSAT (integer 1-5) and/or NPS (integer 0-10), relayed by the "
            "platform, credited to the contact's answering agent and pool (docs/metrics.md). "
            "422 names the field that is missing, out of range or not an integer. 409 when "
            "the contact was never answered (no agent: queued, on offer, abandoned) or was "
            "surveyed before with other values: one survey per contact. 404 when unknown or "
            "its record expired (retention.finished_contact_s after completion).",
        )
    }
    paths |= {
        "/v1/agents": {
            "get": _op(
                "list_agents",
                "agents",
                "List agents",
                {"200": _ok("AgentList")},
                (403, 422),
                roles=(admin, sup),
                params=(
                    {
                        "name": "pool",
                        "in": "query",
                        "required": False,
                        "description": "only this pool's agents",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "only agents with this status",
                        "schema": _enum(AGENT_STATUSES),
                    },
                ),
                description="A supervisor token scoped to a pool sees that pool's agents only.",
            )
        },
        "/v1/agents/{id}/token": {
            "post": _op(
                "issue_agent_token",
                "agents",
                "Issue a token bound to this agent",
                {"201": _ok("AgentToken", "Issued")},
                (403, 404),
                roles=(admin,),
                params=(AGENT_ID,),
                body=_body("Empty", required=False),
                description="For the agent's desktop: it acts for this agent alone, with the "
                "agent role. The token is returned once; only its SHA-256 is stored.",
            ),
            "delete": _op(
                "revoke_agent_tokens",
                "agents",
                "Revoke every token issued for this agent",
                {"200": _ok("TokensRevoked")},
                (403, 422),
                roles=(admin,),
                params=(AGENT_ID,),
            ),
        },
        **_channel_paths(),
        **_webhook_paths(),
        **_metrics_paths(),
        **_vendor_paths(),
        **_privacy_paths(),
        "/v1/admin/reload": {
            "post": _op(
                "reload_config",
                "admin",
                "Reload the configuration file",
                {"200": _ok("Reloaded", "Applied by every server process")},
                (403,),
                roles=(admin,),
                body=_body("Empty", required=False),
                description="Validated first: a bad file gets 422 naming the file and key, and "
                "changes nothing. Contacts waiting in a removed queue move to "
                "`routing.fallback_queue` or their channel's default queue. Also done on SIGHUP.",
            )
        },
        "/v1/agents/{id}": {
            "put": _op(
                "put_agent",
                "agents",
                "Register or update an agent",
                {"201": _ok("Agent", "Registered"), "200": _ok("Agent", "Updated")},
                (403, 404, 422),
                roles=(admin,),
                params=(AGENT_ID,),
                body=_body("AgentUpsert", required=True),
            ),
            "get": _op(
                "get_agent",
                "agents",
                "Read an agent",
                {"200": _ok("Agent")},
                (403, 404, 422),
                roles=(admin, sup, agent),
                params=(AGENT_ID,),
                description="An agent token reads its own agent only.",
            ),
        },
        "/v1/agents/{id}/status": {
            "post": _op(
                "set_agent_status",
                "agents",
                "Set an agent's status",
                {"200": _ok("Agent")},
                (403, 404, 422),
                roles=(agent, admin),
                params=(AGENT_ID,),
                body=_body("AgentStatusChange", required=True),
            )
        },
        "/v1/agents/{id}/heartbeat": {
            "post": _op(
                "heartbeat",
                "agents",
                "The agent is still there",
                {"200": _ok("Heartbeat")},
                (403, 404, 422),
                roles=(agent,),
                params=(AGENT_ID,),
                description="No body is read.",
            )
        },
        "/v1/agents/{id}/offers": {
            "get": _op(
                "list_offers",
                "offers",
                "An agent's open offers; a long poll with `wait`",
                {"200": _ok("OfferList")},
                (403, 404, 422),
                roles=(agent, admin),
                params=(
                    AGENT_ID,
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "seconds to wait for an offer when there is none",
                        "schema": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": MAX_WAIT_S,
                            "default": 0,
                        },
                    },
                ),
                description="Answers at once when the agent has open offers, else as soon "
                "as one is made, or with an empty list after `wait` seconds. Counts as a "
                "heartbeat.",
            )
        },
        "/v1/agents/{id}/events": {
            "get": _op(
                "agent_events",
                "agents",
                "The agent's events, as Server-Sent Events",
                {
                    "200": {
                        "description": "An endless `text/event-stream` (docs/api.md). Events: "
                        "`agent` (an Agent, on connect and when it changes), `offer` (an Offer, "
                        "each open one), `offer.closed` (`{id, reason}`), `contact` (a Contact "
                        "of the agent whose state changed). Each has `id:` (a per-connection "
                        "sequence), `event:` and one line of JSON `data:`. A `: keepalive` "
                        f"comment comes every {KEEPALIVE_S:g} s or sooner.",
                        "headers": {
                            "Cache-Control": {"schema": {"type": "string", "const": "no-cache"}},
                            "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}},
                        },
                        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
                    }
                },
                (403, 404, 406, 422, 429),
                roles=(agent, admin),
                params=(AGENT_ID,),
                description="For desktops: Accept `text/event-stream` (or `*/*`, or none); "
                "the token goes in the Authorization header, never in the URL. Offers arrive "
                f"at once, other changes within {RECHECK_S:g} s. The open stream is the "
                f"agent's heartbeat. At most {MAX_STREAMS_PER_AGENT} streams per agent and "
                "server process (429 beyond). An agent token streams its own agent only.",
            )
        },
        "/v1/offers/{id}/accept": {
            "post": _op(
                "accept_offer",
                "offers",
                "Accept an offer",
                {"200": _ok("Offer", "The offer, its contact now assigned")},
                (403, 404, 409, 422),
                roles=(agent,),
                params=(OFFER_ID,),
                body=_body("Empty", required=False),
            )
        },
        "/v1/offers/{id}/reject": {
            "post": _op(
                "reject_offer",
                "offers",
                "Reject an offer",
                {"200": _ok("Rejected")},
                (403, 404, 409, 422),
                roles=(agent,),
                params=(OFFER_ID,),
                body=_body("Reason", required=False),
            )
        },
        "/v1/queues": {
            "get": _op(
                "list_queues",
                "queues",
                "All queues, with live state",
                {"200": _ok("QueueList")},
                (403,),
                roles=(sup, admin),
            )
        },
        "/v1/queues/{name}": {
            "get": _op(
                "get_queue",
                "queues",
                "A queue, with live state",
                {"200": _ok("Queue")},
                (403, 404),
                roles=(sup, admin),
                params=(_path_param("name", "the queue's name", ident=False),),
            )
        },
        "/healthz": {
            "get": _op(
                "healthz",
                "health",
                "Liveness",
                {"200": _ok("Health", json_only=True)},
                (),
                roles=None,
            )
        },
        "/openapi.json": {
            "get": _op(
                "openapi",
                "health",
                "This document",
                {
                    "200": {
                        "description": "The OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                (),
                roles=None,
            )
        },
    }
    for path, op_id in (("/readyz", "readyz"), ("/health", "health")):
        paths[path] = {
            "get": _op(
                op_id,
                "health",
                "Readiness: the data store answers and has memory headroom",
                {"200": _ok("Ready", json_only=True)},
                (),
                roles=None,
            )
        }
    return paths


def _webhook_schemas() -> dict[str, JSON]:
    """Outbound webhook administration (router/api/webhooks.py, docs/webhooks.md)."""
    from ..config.webhooks import EVENT_PATTERN, MAX_EVENTS, MAX_URL

    drop_run: dict[str, JSON] = {  # one run of drops: one outage
        "first_event_id": {"type": "string"},
        "last_event_id": {"type": "string"},
        "first_at": TIMESTAMP,
        "last_at": TIMESTAMP,
        "count": {"type": "integer", "minimum": 1, "description": "drops in this run"},
        "ended_at": {
            **_nullable(TIMESTAMP),
            "description": "null while still dropping; else when a delivery was stored again",
        },
    }
    sub: dict[str, JSON] = {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string"}},
        "source": _enum(["config", "api"], description="config subscriptions are read-only"),
        "secret_env": {
            "type": ["string", "null"],
            "description": "config subscriptions: the environment variable with the secret",
        },
        "created_at": _nullable(TIMESTAMP),
        "pending": {
            "type": "integer",
            "minimum": 0,
            "description": "deliveries not done yet: waiting, or being sent",
        },
        "dropped": {
            "type": "integer",
            "minimum": 0,
            "description": "deliveries not stored because `pending` had reached "
            "webhooks.max_pending",
        },
        "dropped_events": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": [*drop_run, "previous"],
            "properties": {
                **drop_run,
                "previous": {
                    "type": "array",
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": list(drop_run),
                        "properties": drop_run,
                    },
                    "description": "earlier runs of drops, newest first (at most 10)",
                },
            },
            "description": "null, or the latest run of drops (one outage): replay "
            "first_event_id..last_event_id from the event stream",
        },
    }
    dead: dict[str, JSON] = {
        "id": {"type": "string", "description": "<event id>.<subscription>"},
        "subscription": {"type": "string"},
        "event_id": {"type": "string"},
        "type": {"type": "string"},
        "attempts": {"type": "integer", "minimum": 0},
        "created_at": TIMESTAMP,
        "dead_at": TIMESTAMP,
        "last_status": {"type": ["integer", "null"], "description": "null: no HTTP answer"},
        "last_error": {"type": "string"},
        "payload": {"type": ["object", "null"], "description": "the body that was POSTed"},
    }
    return {
        "NewWebhook": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "url", "events"],
            "properties": {
                "id": _ident(),
                "url": _text(MAX_URL, description="an http:// or https:// URL with a host"),
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_EVENTS,
                    "items": {"type": "string", "pattern": EVENT_PATTERN},
                    "description": "'*' for every event, 'sla.*' for a family, or exact types",
                },
            },
        },
        "Webhook": _closed(sub),
        "WebhookCreated": _closed(
            {
                **sub,
                "secret": {
                    "type": "string",
                    "description": "the HMAC-SHA256 signing secret; shown this once only",
                },
            }
        ),
        "WebhookList": _closed({"subscriptions": {"type": "array", "items": _ref("Webhook")}}),
        "WebhookDeleted": _closed(
            {
                "id": {"type": "string"},
                "deleted": {"const": True},
                "dropped": {"type": "integer", "minimum": 0, "description": "deliveries dropped"},
            }
        ),
        "DeadLetter": _closed(dead),
        "DeadLetterPage": _closed(
            {
                "dead_letters": {"type": "array", "items": _ref("DeadLetter")},
                "total": {"type": "integer", "minimum": 0},
                "offset": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
                "next_offset": {"type": ["integer", "null"]},
            }
        ),
        "DeadLetterRetried": _closed({"id": {"type": "string"}, "retried": {"const": True}}),
        "DeadLetterDeleted": _closed({"id": {"type": "string"}, "deleted": {"const": True}}),
    }


def _webhook_paths() -> dict[str, JSON]:
    from .webhooks import DEAD_LETTER_ID, MAX_PAGE

    admin = (Role.ADMIN,)
    sub_id = _path_param("id", "the subscription's id")
    dead_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "the dead letter's id: <event id>.<subscription>",
        "schema": {"type": "string", "pattern": f"^{DEAD_LETTER_ID}$"},
    }

    def query_int(name: str, lo: int, hi: int, description: str) -> JSON:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": {"type": "integer", "minimum": lo, "maximum": hi},
        }

    return {
        "/v1/admin/webhooks": {
            "get": _op(
                "list_webhooks",
                "admin",
                "Outbound webhook subscriptions",
                {"200": _ok("WebhookList")},
                (403,),
                roles=admin,
                description="Config subscriptions and those made through this API.",
            ),
            "post": _op(
                "create_webhook",
                "admin",
                "Subscribe a URL to events",
                {"201": _ok("WebhookCreated", "Subscribed; the secret is returned this once")},
                (403, 409),
                roles=admin,
                body=_body("NewWebhook", required=True),
                description="The server generates the signing secret. 409 if the id is taken "
                "(by the config or the API) or the tenant has the most subscriptions allowed.",
            ),
        },
        "/v1/admin/webhooks/{id}": {
            "delete": _op(
                "delete_webhook",
                "admin",
                "Delete a subscription made through the API",
                {"200": _ok("WebhookDeleted")},
                (403, 404, 409, 422),
                roles=admin,
                params=(sub_id,),
                description="Its waiting deliveries are dropped. Config subscriptions are "
                "read-only: 409.",
            )
        },
        "/v1/admin/webhooks/dead-letters": {
            "get": _op(
                "list_dead_letters",
                "admin",
                "Deliveries that failed every attempt",
                {"200": _ok("DeadLetterPage")},
                (403, 422),
                roles=admin,
                params=(
                    query_int("offset", 0, 10**9, "skip this many (default 0)"),
                    query_int("limit", 1, MAX_PAGE, f"at most this many, 1..{MAX_PAGE}"),
                ),
                description="Newest first. Kept `webhooks.dead_letter_days` days.",
            )
        },
        "/v1/admin/webhooks/dead-letters/{id}": {
            "delete": _op(
                "delete_dead_letter",
                "admin",
                "Delete a dead letter",
                {"200": _ok("DeadLetterDeleted")},
                (403, 404, 422),
                roles=admin,
                params=(dead_id,),
            )
        },
        "/v1/admin/webhooks/dead-letters/{id}/retry": {
            "post": _op(
                "retry_dead_letter",
                "admin",
                "Send a dead letter again",
                {"202": _ok("DeadLetterRetried", "Due now, with max_attempts attempts")},
                (403, 404, 409, 422),
                roles=admin,
                params=(dead_id,),
                body=_body("Empty", required=False),
                description="409 if its subscription no longer exists.",
            )
        },
    }


def _metrics_schemas() -> dict[str, JSON]:
    """Live metrics (router/api/metrics.py, docs/metrics.md). A ratio is null when its
    denominator is zero."""
    ratio: JSON = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    seconds: JSON = {"type": ["number", "null"], "minimum": 0}
    count: JSON = {"type": "integer", "minimum": 0}
    ms: JSON = {"type": "integer", "description": "ms since the epoch, engine clock"}
    level = _closed(
        {
            "threshold_s": {
                "type": ["number", "null"],
                "description": "the queue's T: its first-response time on a first-response "
                "queue, else its answer threshold; null for a pool (each answer is judged "
                "by its own queue's T)",
            },
            "value": {
                **ratio,
                "description": "answered (first-response queues: first responses) within T "
                "/ (offered - abandoned within the grace)",
            },
        }
    )
    survey_figures: JSON = {
        "csat": {
            "type": ["number", "null"],
            "minimum": 1,
            "maximum": 5,
            "description": "mean CSAT (1-5) of the surveys received; null when none",
        },
        "nps": {
            "type": ["number", "null"],
            "minimum": -100,
            "maximum": 100,
            "description": "% promoters (9-10) - % detractors (0-6) of the NPS answers "
            "received, one decimal; null when none",
        },
    }
    queue_figures: JSON = {
        "offered": count,
        "answered": count,
        "abandoned": count,
        "service_level": _ref("ServiceLevel"),
        "asa_s": seconds,
        "aht_s": seconds,
        "abandon_rate": ratio,
        "handled": count,
        "sla_breaches": count,
        "sla_warnings": count,
        **survey_figures,
    }
    pool_figures: JSON = {
        "occupancy": ratio,
        "answered": count,
        "handled": count,
        "asa_s": seconds,
        "aht_s": seconds,
        "service_level": _ref("ServiceLevel"),
        **survey_figures,
    }
    queue_live: JSON = {
        "title": {"type": "string"},
        "channels": {"type": "array", "items": {"type": "string"}},
        "waiting": count,
        "held": count,
        "longest_wait_s": seconds,
        **queue_figures,
        "service_level_target": {"type": "number", "minimum": 0, "maximum": 1},
        "agents_available": count,
    }
    pool_live: JSON = {
        "title": {"type": "string"},
        "kind": {"type": "string", "enum": ["inhouse", "outsourced"]},
        "vendor": {"type": ["string", "null"], "description": "a vendor id"},
        "vendor_name": {"type": ["string", "null"], "description": "the vendor's name"},
        "location": {"type": ["string", "null"]},
        "agents": _closed({"available": count, "away": count, "offline": count}),
        **pool_figures,
    }
    alert: JSON = {
        "type": "object",
        "required": ["type", "contact", "queue", "sla", "at"],
        "properties": {
            "type": {"type": "string", "enum": ["sla.warning", "sla.breached"]},
            "contact": {
                "type": ["string", "null"],
                "description": "null for a pool-scoped token when its pool was not eligible "
                "for the contact's stage when the alert fired",
            },
            "queue": {"type": "string"},
            "sla": {"type": "string", "description": "answer, first_response or resolution"},
            "at": ms,
        },
    }
    interval = _closed(
        {
            "from": ms,
            "to": ms,
            "queues": {"type": "object", "additionalProperties": _ref("QueueFigures")},
            "pools": {"type": "object", "additionalProperties": _ref("PoolFigures")},
        }
    )
    return {
        "ServiceLevel": level,
        "QueueMetrics": _closed(queue_live),
        "PoolMetrics": _closed(pool_live),
        "QueueFigures": _closed(queue_figures),
        "PoolFigures": _closed(pool_figures),
        "MetricsAlert": alert,
        "MetricsSnapshot": _closed(
            {
                "tenant": {"type": "string"},
                "at": ms,
                "window": _closed(
                    {
                        "name": {"type": "string", "enum": ["15m", "1h", "today"]},
                        "from": ms,
                        "to": ms,
                    }
                ),
                "queues": {"type": "object", "additionalProperties": _ref("QueueMetrics")},
                "pools": {"type": "object", "additionalProperties": _ref("PoolMetrics")},
                "alerts": {"type": "array", "maxItems": 50, "items": _ref("MetricsAlert")},
            }
        ),
        "MetricsEvent": {
            "type": "object",
            "description": "One Server-Sent Event of GET /v1/metrics/stream (the first "
            "carries only `retry`, the client's reconnection delay in ms)",
            "properties": {
                "event": {"const": "metrics"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": _ref("MetricsSnapshot"),
                },
                "retry": {"type": "integer", "minimum": 0},
            },
        },
        "MetricsInterval": interval,
        "MetricsHistory": _closed(
            {
                "tenant": {"type": "string"},
                "from": ms,
                "to": ms,
                "interval_s": {"const": 900},
                "history_days": {"type": "integer", "minimum": 1},
                "intervals": {"type": "array", "items": _ref("MetricsInterval")},
            }
        ),
    }


def _metrics_paths() -> dict[str, JSON]:
    from .metrics import FRAME_EVERY_S, HISTORY_MAX_MS, KEEPALIVE_S

    viewers = (Role.SUPERVISOR, Role.ADMIN)
    window = {
        "name": "window",
        "in": "query",
        "required": False,
        "description": "15m and 1h: the last 15 or 60 minutes (whole minutes, the current "
        "one included); today: since midnight in the tenant's time zone. Default 15m.",
        "schema": {"type": "string", "enum": ["15m", "1h", "today"]},
    }

    def time_param(name: str, default: str) -> JSON:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"ms since the epoch, or ISO 8601 (UTC without an offset); "
            f"default: {default}",
            "schema": {"type": "string", "minLength": 1},
        }

    scope = (
        " A supervisor token scoped to a pool sees that pool, and the queues whose "
        "stages include it."
    )
    days = HISTORY_MAX_MS // 86_400_000
    return {
        "/v1/metrics": {
            "get": _op(
                "get_metrics",
                "metrics",
                "Live metrics per queue and per pool",
                {"200": _ok("MetricsSnapshot")},
                (400, 403),
                roles=viewers,
                params=(window,),
                description="Counts over the window, live state at the engine's now, and the "
                "latest SLA alerts. Definitions: docs/metrics.md." + scope,
            )
        },
        "/v1/metrics/history": {
            "get": _op(
                "get_metrics_history",
                "metrics",
                "15-minute intervals of a time range",
                {"200": _ok("MetricsHistory")},
                (400, 403, 404),
                roles=viewers,
                params=(
                    time_param("from", "24 hours before `to`"),
                    time_param("to", "now"),
                    {
                        "name": "queue",
                        "in": "query",
                        "required": False,
                        "description": "one queue only (and no pools)",
                        "schema": {"type": "string", "minLength": 1},
                    },
                ),
                description="Every interval overlapping [from, to), oldest first, with zero "
                f"counts where nothing happened. At most {days} days per request; intervals "
                "are kept `metrics.history_days` days." + scope,
            )
        },
        "/v1/metrics/stream": {
            "get": _op(
                "metrics_stream",
                "metrics",
                "Live metrics, as Server-Sent Events",
                {
                    "200": {
                        "description": "An endless `text/event-stream`: `event: metrics` "
                        "frames whose data is a MetricsSnapshot, one at once, then at most "
                        f"one every {FRAME_EVERY_S:g} s when a figure changed; a "
                        f"`: keepalive` comment every {KEEPALIVE_S:g} s.",
                        "headers": {
                            "Cache-Control": {"schema": {"type": "string", "const": "no-cache"}},
                            "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}},
                        },
                        "content": {EVENT_STREAM: {"schema": _ref("MetricsEvent")}},
                    }
                },
                (400, 403, 406),
                roles=viewers,
                params=(window,),
                description="For dashboards: the token goes in the Authorization header "
                "(read it with fetch and a ReadableStream). Every stream of one process on "
                "the same tenant, scope and window shares one computation per second." + scope,
            )
        },
    }


def _vendor_schemas() -> dict[str, JSON]:
    """Pools and vendor contracts (router/api/pools.py, docs/vendors.md)."""
    count: JSON = {"type": "integer", "minimum": 0}
    cap: JSON = {"type": ["integer", "null"], "minimum": 1, "description": "null: no cap"}
    figure = _closed({"value": count, "cap": cap})
    load = _closed(
        {
            "concurrent": {
                **figure,
                "description": "contacts reserved or assigned now, beside max_concurrent",
            },
            "this_hour": {
                **figure,
                "description": "contacts answered since the hour began (vendor's time "
                "zone), beside max_per_hour",
            },
            "today": {
                **figure,
                "description": "contacts answered since midnight (vendor's time zone), "
                "beside max_per_day",
            },
        }
    )
    locations = ["onshore", "nearshore", "offshore"]
    text_list: JSON = {"type": ["array", "null"], "items": {"type": "string"}}
    shown = ["show", "mask", "tokenize"]
    return {
        "PoolLoad": load,
        "Pool": _closed(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "kind": {"type": "string", "enum": ["inhouse", "outsourced"]},
                "vendor": {"type": ["string", "null"], "description": "a vendor id"},
                "location": {"enum": [*locations, None]},
                "open": {
                    "type": "boolean",
                    "description": "the pool's gate (closed outside its hours too)",
                },
                "hours": _closed(
                    {
                        "calendar": {
                            "type": ["string", "null"],
                            "description": "the pool's own hours, else its vendor's",
                        },
                        "timezone": {"type": "string"},
                    }
                ),
                "open_now": {
                    "type": "boolean",
                    "description": "the gate is open and the pool is within its hours",
                },
                "load": _ref("PoolLoad"),
            }
        ),
        "PoolList": _closed({"pools": {"type": "array", "items": _ref("Pool")}}),
        "Vendor": _closed(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "location": {"enum": locations},
                "timezone": {"type": "string"},
                "hours": {"type": ["string", "null"], "description": "a calendar id"},
                "open_now": {"type": "boolean", "description": "within its hours"},
                "channels": {**text_list, "description": "null: every channel"},
                "queues": {**text_list, "description": "null: every queue"},
                "caps": _closed({"max_concurrent": cap, "max_per_hour": cap, "max_per_day": cap}),
                "commitment": _closed(
                    {
                        "min_per_day": {"type": ["integer", "null"], "minimum": 1},
                        "min_per_month": {"type": ["integer", "null"], "minimum": 1},
                    }
                ),
                "price": {
                    "oneOf": [
                        {"type": "null"},
                        _closed(
                            {
                                "amount": {"type": "number", "minimum": 0},
                                "unit": {"enum": ["contact", "minute"]},
                                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                            }
                        ),
                    ]
                },
                "sla": _closed(
                    {
                        "target": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                        "threshold_s": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    }
                ),
                "region": {"type": ["string", "null"]},
                "visibility": _closed(
                    {
                        "email": {"enum": shown},
                        "phone": {"enum": shown},
                        "hide": {"type": "array", "items": {"type": "string"}},
                    }
                ),
                "pools": {"type": "array", "items": {"type": "string"}},
                "load": {
                    **_ref("PoolLoad"),
                    "description": "over all the vendor's pools: the caps are the vendor's",
                },
            }
        ),
        "VendorList": _closed({"vendors": {"type": "array", "items": _ref("Vendor")}}),
        "VendorGate": _closed(
            {
                "vendor": {"type": "string"},
                "paused": {"type": "boolean", "description": "true after a pause"},
                "pools": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the vendor's pools, whose gates were closed or opened",
                },
                "offers": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "offers made on resuming to contacts that waited",
                },
            }
        ),
        "Scorecard": _scorecard_schema(),
    }


def _scorecard_schema() -> JSON:
    """GET /v1/vendors/{id}/scorecard (router/scorecard.py, docs/vendors.md)."""
    ratio: JSON = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    seconds: JSON = {"type": ["number", "null"], "minimum": 0}
    count: JSON = {"type": "integer", "minimum": 0}
    ms: JSON = {"type": "integer", "description": "ms since the epoch, engine clock"}
    total: JSON = {"type": ["integer", "null"], "minimum": 0}
    return _closed(
        {
            "vendor": {"type": "string"},
            "name": {"type": "string"},
            "from": ms,
            "to": ms,
            "timezone": {"type": "string"},
            "pools": {"type": "array", "items": {"type": "string"}},
            "volume": _closed(
                {
                    "answered": {**count, "description": "what caps and commitments count"},
                    "handled": {**count, "description": "answered contacts completed"},
                    "days": {**count, "description": "local days the period touches"},
                    "cap": {**total, "description": "max_per_day x days; null: no daily cap"},
                    "commitment": {
                        **total,
                        "description": "min_per_day x days, or min_per_month x months",
                    },
                    "commitment_met": {"type": ["boolean", "null"]},
                }
            ),
            "service_level": _ref("ServiceLevel"),
            "service_level_target": {**ratio, "description": "the contract's sla_target"},
            "asa_s": seconds,
            "aht_s": seconds,
            "abandoned": {
                **count,
                "description": "abandons at a stage where the vendor's pools were eligible",
            },
            "abandon_rate": {**ratio, "description": "abandoned / (answered + abandoned)"},
            "csat": {"type": ["number", "null"], "minimum": 1, "maximum": 5},
            "nps": {"type": ["number", "null"], "minimum": -100, "maximum": 100},
            "cost": {
                "oneOf": [
                    {"type": "null"},
                    _closed(
                        {
                            "amount": {"type": "number", "minimum": 0},
                            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        }
                    ),
                ],
                "description": "null: no price in the contract",
            },
            "sla_breaches": {
                **count,
                "description": "breaches at a stage where the vendor's pools were eligible",
            },
        }
    )


def _vendor_paths() -> dict[str, JSON]:
    viewers = (Role.SUPERVISOR, Role.ADMIN)
    return {
        "/v1/pools": {
            "get": _op(
                "list_pools",
                "vendors",
                "Pools: kind, vendor, hours, open now, and live load against the caps",
                {"200": _ok("PoolList")},
                (403,),
                roles=viewers,
                description="A pool's load beside its vendor's caps (null: uncapped; the "
                "caps are the vendor's, shared by its pools). A supervisor token scoped to "
                "a pool sees that pool only. See docs/vendors.md.",
            )
        },
        "/v1/vendors": {
            "get": _op(
                "list_vendors",
                "vendors",
                "Vendors: their contracts, pools and load",
                {"200": _ok("VendorList")},
                (403,),
                roles=viewers,
                description="A supervisor token scoped to a pool sees that pool's vendor "
                "only (none for an in-house pool). See docs/vendors.md.",
            )
        },
        "/v1/vendors/{id}/scorecard": {
            "get": _op(
                "get_vendor_scorecard",
                "vendors",
                "A vendor's scorecard over a period, beside its contract",
                {"200": _ok("Scorecard")},
                (400, 403, 404),
                roles=viewers,
                params=(
                    _path_param("id", "the vendor's id"),
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "description": "ms since the epoch, or ISO 8601 (UTC without an "
                            f"offset); default: {default}",
                            "schema": {"type": "string", "minLength": 1},
                        }
                        for name, default in (
                            ("from", "the start of the month (of `to`, else of now)"),
                            ("to", "now with `from`, else the end of the month"),
                        )
                    ),
                ),
                description="Volume, service level, ASA, AHT, abandonment, CSAT, NPS, cost "
                "and SLA breaches of the vendor's pools over the 15-minute intervals "
                "overlapping [from, to), at most 32 days; without from and to, the current "
                "month in the vendor's time zone. A supervisor token scoped to a pool reads "
                "its own vendor's only. See docs/vendors.md.",
            )
        },
        **{
            f"/v1/vendors/{{id}}/{action}": {
                "post": _op(
                    f"{action}_vendor",
                    "vendors",
                    summary,
                    {"200": _ok("VendorGate")},
                    (403, 404),
                    roles=(Role.ADMIN,),
                    params=(_path_param("id", "the vendor's id"),),
                    description=description,
                )
            }
            for action, summary, description in (
                (
                    "pause",
                    "Stop offers to a vendor: close the gates of all its pools",
                    "Routing skips the vendor's pools from now on; offers already made run "
                    "their course, and contacts wait for, or overflow to, other pools. "
                    "Events pool.gate_changed (reason vendor_paused). Repeating it is "
                    "harmless. See docs/vendors.md.",
                ),
                (
                    "resume",
                    "Restart offers to a vendor: open the gates of all its pools",
                    "Waiting contacts of the vendor's lanes are offered to its ready agents "
                    "at once. Events pool.gate_changed (reason vendor_resumed). See "
                    "docs/vendors.md.",
                ),
            )
        },
    }


def _privacy_schemas() -> dict[str, JSON]:
    """Erasure and the audit stream (router/api/customers.py, docs/privacy.md)."""
    text: JSON = {"type": ["string", "null"]}
    entry = _closed(
        {
            "id": {"type": "string", "description": "stream id"},
            "action": _enum(["read", "erase"]),
            "at": {"type": "integer", "description": "ms since the epoch, engine clock"},
            "who": {"type": "string", "description": "the token's name, or `agent <id>`"},
            "pool": text,
            "vendor": text,
            "agent": text,
            "contact": text,
            "fields": {
                "type": "array",
                "items": {"type": "string"},
                "description": "personal-data fields the read showed (masked or not)",
            },
            "erasure": {"type": "string"},
            "contacts": {"type": "integer", "minimum": 0},
        }
    )
    entry["required"] = ["id", "action", "at", "who", "pool", "vendor", "agent", "contact"]
    return {
        "Erasure": _closed(
            {
                "erasure": {"type": "string", "description": "this erasure's id"},
                "contacts": {"type": "integer", "minimum": 0},
            }
        ),
        "AuditEntry": entry,
        "AuditList": _closed(
            {
                "from": {"type": "integer"},
                "to": {"type": "integer"},
                "entries": {"type": "array", "items": _ref("AuditEntry")},
                "truncated": {"type": "boolean"},
            }
        ),
    }


def _privacy_paths() -> dict[str, JSON]:
    def query(name: str, description: str) -> JSON:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": {"type": "string", "minLength": 1},
        }

    admin = (Role.ADMIN,)
    return {
        "/v1/customers/{id}": {
            "delete": _op(
                "erase_customer",
                "admin",
                "Erase a customer's personal data from every contact (GDPR erasure)",
                {"200": _ok("Erasure")},
                (400, 403),
                roles=admin,
                params=(
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "the customer id a channel or the ingest API gave, "
                        "or the customer's email address or phone number",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 320},
                    },
                ),
                description="Each contact of the customer loses its customer, subject, "
                "preview, attributes, external id, timeline and thread keys, atomically; "
                "routing state and anonymous metrics stay. 200 with the number of contacts "
                "cleared, 0 for an unknown or already erased customer. See docs/privacy.md.",
            )
        },
        "/v1/audit": {
            "get": _op(
                "get_audit",
                "admin",
                "Reads of personal data by outsourced pools, and erasures",
                {"200": _ok("AuditList")},
                (400, 403),
                roles=admin,
                params=(
                    query("from", "ms since the epoch or ISO 8601; default: 24 hours before to"),
                    query("to", "ms since the epoch or ISO 8601; default: now"),
                    query("pool", "entries of this pool only"),
                    query("vendor", "entries of this vendor only"),
                    query("contact", "entries of this contact only"),
                    query("limit", "at most this many entries, 1..1000; default 100"),
                ),
                description="Oldest first; `truncated` when more matched than `limit`. "
                "Entries hold ids and field names, never the data. See docs/privacy.md.",
            )
        },
    }


def build_document() -> JSON:
    """A fresh copy of the whole document."""
    from .app import MAX_BODY_BYTES  # app.py imports this module

    doc: JSON = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Switchboard routing API",
            "version": API_VERSION,
            "description": (
                "Contact-center routing: ingest contacts, route them to agents, and act on "
                "offers and contacts.\n\n"
                "Send `Authorization: Bearer <token>` on every /v1/ request; a token belongs "
                "to one tenant and holds roles (ingest, agent, supervisor, admin). Bodies are "
                f"JSON or msgpack, at most {MAX_BODY_BYTES} bytes unless the server sets another "
                "limit; an empty body reads as {}. Answers are JSON, or msgpack for "
                "`Accept: application/msgpack`. "
                "Every error is `application/problem+json` (RFC 9457). "
                "A request to an unknown path gets a 404 problem, an unknown method a 405 one."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearer": []}],
        "tags": [
            {"name": "contacts"},
            {"name": "agents"},
            {"name": "offers"},
            {"name": "queues"},
            {"name": "admin"},
            {"name": "channels"},
            {"name": "webhooks"},
            {"name": "metrics"},
            {"name": "vendors"},
            {"name": "health"},
        ],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from the tenant's configuration",
                }
            },
            "schemas": _schemas(),
            "responses": _responses(MAX_BODY_BYTES),
        },
    }
    return copy.deepcopy(doc)  # shares nothing with this module's constants


@functools.cache
def document_json() -> str:
    return json.dumps(build_document(), separators=(",", ":"))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=document_json(), content_type="application/json")
