"""Loading `[webhooks]`: outbound webhook subscriptions and delivery settings.

Kept apart from `loader.py`; it uses the same `_Loader` primitives, so every
error still reads `<file>: <key path>: <problem>`. The URL and event-filter
rules live here once: the admin API (router/api/webhooks.py) checks runtime
subscriptions with the same functions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .model import WebhooksConfig, WebhookSubscription

if TYPE_CHECKING:
    from .loader import _Loader

WEBHOOKS_KEYS = ("max_attempts", "timeout_s", "dead_letter_days", "max_pending", "subscriptions")
SUBSCRIPTION_KEYS = ("id", "url", "events", "secret_env")
MAX_ATTEMPTS = 50
MAX_TIMEOUT_S = 60.0
MAX_PENDING = 10_000_000  # per subscription
MAX_URL = 2000
MAX_EVENTS = 50
# "*" (every event), "<family>.*" (e.g. "sla.*"), or an exact type ("contact.assigned")
EVENT_PATTERN = r"^(\*|[a-z][a-z0-9_]*\.\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$"
_EVENT_RE = re.compile(EVENT_PATTERN)
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks, or None when it can."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, got {url!r}"
    if not parts.hostname:
        return f"has no host: {url!r}"
    if any(c.isspace() for c in url):
        return "must not contain whitespace"
    return None


def event_problem(pattern: str) -> str | None:
    """Why `pattern` is not an event filter, or None when it is."""
    if not _EVENT_RE.match(pattern):
        return (
            f"{pattern!r} is not an event type: use '*', a family such as 'sla.*', "
            "or a type such as 'contact.assigned'"
        )
    return None


def webhooks(ld: _Loader, value: object, path: str) -> WebhooksConfig:
    t = ld.table(value, path)
    ld.keys(t, path, WEBHOOKS_KEYS)
    d = WebhooksConfig()
    attempts = ld.opt_int(t, path, "max_attempts", d.max_attempts, ge=1)
    if attempts > MAX_ATTEMPTS:
        ld.fail(_key(path, "max_attempts"), f"must be <= {MAX_ATTEMPTS}")
    timeout = ld.opt_number(t, path, "timeout_s", d.timeout_s, gt=0)
    if timeout > MAX_TIMEOUT_S:
        ld.fail(_key(path, "timeout_s"), f"must be <= {MAX_TIMEOUT_S:g}")
    days = ld.opt_number(t, path, "dead_letter_days", d.dead_letter_days, gt=0)
    pending = ld.opt_int(t, path, "max_pending", d.max_pending, ge=1)
    if pending > MAX_PENDING:
        ld.fail(_key(path, "max_pending"), f"must be <= {MAX_PENDING}")
    subs: list[WebhookSubscription] = []
    seen: set[str] = set()
    if "subscriptions" in t:
        sp = _key(path, "subscriptions")
        for i, raw in enumerate(ld.array(t["subscriptions"], sp)):
            sub = subscription(ld, raw, f"{sp}[{i}]")
            if sub.id in seen:
                ld.fail(f"{sp}[{i}].id", f"duplicate subscription id {sub.id!r}")
            seen.add(sub.id)
            subs.append(sub)
    return WebhooksConfig(
        subscriptions=tuple(subs),
        max_attempts=attempts,
        timeout_s=timeout,
        dead_letter_days=days,
        max_pending=pending,
    )


def subscription(ld: _Loader, value: object, path: str) -> WebhookSubscription:
    t = ld.table(value, path)
    ld.keys(t, path, SUBSCRIPTION_KEYS)
    for key in ("id", "url", "events", "secret_env"):
        if key not in t:
            ld.fail(_key(path, key), "is required")
    sub_id = ld.ident(t["id"], _key(path, "id"), "subscription")
    url = ld.string(t["url"], _key(path, "url"))
    problem = url_problem(url)
    if problem:
        ld.fail(_key(path, "url"), problem)
    ep = _key(path, "events")
    events = ld.array(t["events"], ep)
    if not events:
        ld.fail(ep, "must list at least one event type ('*' for all)")
    if len(events) > MAX_EVENTS:
        ld.fail(ep, f"at most {MAX_EVENTS} event types")
    types: list[str] = []
    for i, e in enumerate(events):
        text = ld.string(e, f"{ep}[{i}]")
        problem = event_problem(text)
        if problem:
            ld.fail(f"{ep}[{i}]", problem)
        if text not in types:
            types.append(text)
    env = ld.string(t["secret_env"], _key(path, "secret_env"))
    if not _ENV_RE.match(env):
        ld.fail(
            _key(path, "secret_env"),
            f"must name an environment variable (A-Z a-z 0-9 _), got {env!r}; "
            "the secret itself never goes in the file",
        )
    return WebhookSubscription(id=sub_id, url=url, events=tuple(types), secret_env=env)


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
