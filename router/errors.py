"""One error hierarchy for the whole engine.

Lua scripts fail with `error({err = "SB<CODE> message"})`; `from_script_error`
maps that code to the typed exception here, so callers never parse strings.
HTTP maps each class to a status via `http_status`.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(SwitchboardError):
    """A configuration file is invalid; the message names file and key path."""

    code = "config_invalid"
    http_status = 400


class ValidationError(SwitchboardError):
    """Input (an id, a field) is malformed. Nothing was changed."""

    code = "invalid"
    http_status = 422


class NotFound(SwitchboardError):
    code = "not_found"
    http_status = 404


class ContactNotFound(NotFound):
    code = "contact_not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class QueueNotFound(NotFound):
    code = "queue_not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"


class Conflict(SwitchboardError):
    """The transition is not allowed from the current state. Nothing was changed."""

    code = "conflict"
    http_status = 409


class InvalidState(Conflict):
    code = "invalid_state"


class WrongAgent(Conflict):
    code = "wrong_agent"


class NoCapacity(Conflict):
    code = "no_capacity"


class AgentUnavailable(Conflict):
    code = "agent_unavailable"


class NotEligible(Conflict):
    code = "not_eligible"


class OfferExpired(Conflict):
    code = "offer_expired"


class DuplicateContact(Conflict):
    code = "duplicate"


class QueueClosed(Conflict):
    """The queue is outside its hours and refuses new contacts (when_closed = "refuse").
    Nothing was written; `opens_at` says when it opens, for the platform's closed message."""

    code = "queue_closed"


class PayloadError(SwitchboardError):
    """A provider payload (MIME, webhook form, JSON event) that cannot be parsed."""

    code = "malformed_payload"
    http_status = 400


class PayloadTooLarge(PayloadError):
    """A provider payload over the adapter's size limit: refused before any parsing."""

    code = "payload_too_large"
    http_status = 413


class SignatureError(SwitchboardError):
    """A webhook whose provider signature is missing or wrong. Nothing is stored."""

    code = "bad_signature"
    http_status = 401


class VerifyTokenError(SignatureError):
    """A webhook subscription handshake (Meta's `hub.verify_token`) with a wrong token or mode.

    403 because Meta's handshake expects a refusal, not a credentials challenge. It is a
    SignatureError so that whatever refuses unauthenticated webhook calls refuses it too.
    """

    code = "bad_verify_token"
    http_status = 403


class QueueFull(SwitchboardError):
    code = "queue_full"
    http_status = 503


class ServerError(SwitchboardError):
    """The Redis server is unusable for Switchboard (version, eviction policy...)."""

    code = "server_unsuitable"
    http_status = 503


_SCRIPT_CODES: dict[str, type[SwitchboardError]] = {
    "SBNOCONTACT": ContactNotFound,
    "SBNOAGENT": AgentNotFound,
    "SBNOQUEUE": QueueNotFound,
    "SBNOPOOL": PoolNotFound,
    "SBSTATE": InvalidState,
    "SBWRONGAGENT": WrongAgent,
    "SBNOCAPACITY": NoCapacity,
    "SBUNAVAILABLE": AgentUnavailable,
    "SBNOTELIGIBLE": NotEligible,
    "SBDUPLICATE": DuplicateContact,
    "SBEXPIRED": OfferExpired,
    "SBQUEUEFULL": QueueFull,
    "SBCLOSED": QueueClosed,
    "SBINVALID": ValidationError,
}


def from_script_error(text: str) -> SwitchboardError | None:
    """Map a script's `SB<CODE> message` error reply to its typed exception."""
    code, _, message = text.strip().partition(" ")
    cls = _SCRIPT_CODES.get(code)
    if cls is None:
        return None
    return cls(message or code)
