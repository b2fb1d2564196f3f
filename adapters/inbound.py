"""What every channel adapter produces: one normalized inbound item per provider message.

Adapters are pure: they parse and verify provider payloads and never touch
Redis. The ingest layer (router side) turns an `Inbound` into a new contact, an
event on an open conversation, or a recorded-but-not-routed item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from router.model import Customer

TEXT_MAX = 64 * 1024  # characters of message text an adapter hands on; the preview is shorter


class Kind(StrEnum):
    MESSAGE = "message"  # the customer wrote or called: a new contact, or a follow-up
    ENDED = "ended"  # the customer left: chat.ended, a hang-up while waiting
    ANSWERED = "answered"  # the provider says the call was answered (voice)
    STATUS = "status"  # a provider status change with no routing effect (ringing, delivered)
    IGNORED = "ignored"  # auto-reply, bounce, bulk mail, unknown event: recorded, never routed


@dataclass(frozen=True)
class Attachment:
    name: str | None
    content_type: str
    size: int  # bytes, decoded


@dataclass(frozen=True)
class Inbound:
    channel: str  # voice, chat, email, social, sms
    kind: Kind
    provider: str  # "smtp", "widget", "twilio", "meta", "pbx"...
    # The provider's id of this message or call (Message-ID, CallSid, mid, wamid).
    # It becomes the contact's external_id and deduplicates provider retries.
    external_id: str | None = None
    # Conversation key within the channel: the chat session id, the customer's
    # handle (SMS number, Messenger PSID, WhatsApp number), or for email None
    # (email threads by `references`).
    thread_key: str | None = None
    references: tuple[str, ...] = ()  # email: In-Reply-To, then References, newest first
    event_id: str | None = None  # provider event id: a repeated one is processed once
    customer: Customer = field(default_factory=Customer)
    subject: str = ""
    text: str = ""
    language: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    ivr: dict[str, str] = field(default_factory=dict)  # IVR selections (voice)
    status: str | None = None  # the provider's own status word (CallStatus, chat event type)
    reason: str = ""  # IGNORED / STATUS: why (auto_reply, bounce, bulk, unknown_event...)
