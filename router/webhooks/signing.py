"""The webhook payload, its signature, and the retry schedule.

A receiver verifies `Switchboard-Signature: t=<unix seconds>,v1=<hex>` where
hex = HMAC-SHA256(secret, "<t>.<body>"): the timestamp is signed with the body,
so a captured request cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Mapping

RETRY_BASE_S = 30.0  # the first retry waits about this long
RETRY_FACTOR = 2.0  # each further retry waits this many times longer
RETRY_CAP_S = 6 * 3600.0  # no wait is longer than this
RETRY_JITTER = 0.2  # each wait is scaled by a uniform factor in [1 - j, 1 + j]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def payload(tenant: str, event_id: str, fields: Mapping[str, str]) -> str:
    """The JSON body POSTed for one event: the same bytes on every attempt."""
    try:
        at: int | str = int(fields.get("at", ""))
    except ValueError:
        at = fields.get("at", "")
    return _dumps(
        {
            "id": event_id,
            "type": fields.get("type", ""),
            "at": at,
            "tenant": tenant,
            "data": dict(fields),
        }
    )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Switchboard-Signature` header value."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: the signature matches and its timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, ts, body))


def retry_delay_s(attempt: int, rng: random.Random | None = None) -> float:
    """How long to wait after failed attempt number `attempt` (1 = the first):
    30 s, 60 s, 2 min, 4 min, 8 min, 16 min, 32 min, ... up to 6 h, each +-20 %."""
    base = min(RETRY_BASE_S * RETRY_FACTOR ** max(attempt - 1, 0), RETRY_CAP_S)
    r = (rng or random).uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    return base * r
