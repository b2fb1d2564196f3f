"""Loading the channel sections of a tenant: routing rules, conversations, providers.

Kept apart from `loader.py` (pools, queues, tokens); it uses the same `_Loader`
primitives, so every error still reads `<file>: <key path>: <problem>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .model import (
    ConversationConfig,
    MetaConfig,
    QueueConfig,
    RoutingRule,
    RuleMatch,
    TwilioConfig,
)

if TYPE_CHECKING:
    from .loader import _Loader

RULE_KEYS = ("name", "when", "queue", "skills", "priority")
WHEN_KEYS = ("channel", "language", "keywords", "attributes", "ivr")
CONVERSATION_KEYS = ("reopen_s",)
TWILIO_KEYS = ("auth_token_env", "public_base_url", "wait_url", "hold_message", "closed_message")
META_KEYS = ("app_secret_env", "verify_token_env")
PROVIDER_KEYS = ("twilio", "meta")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,127}\Z")
_URL = re.compile(r"https?://[^\s/]+[^\s]*\Z")


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _strings(ld: _Loader, value: object, path: str, *, lower: bool = False) -> tuple[str, ...]:
    """A string, or a non-empty array of strings."""
    items = [value] if isinstance(value, str) else ld.array(value, path)
    if not items:
        ld.fail(path, "must list at least one value")
    out = []
    for i, item in enumerate(items):
        text = ld.string(item, path if isinstance(value, str) else f"{path}[{i}]")
        if not text.strip() or len(text) > 200:
            ld.fail(path, "values must be 1-200 characters")
        out.append(text.lower() if lower else text)
    return tuple(out)


def _string_map(ld: _Loader, value: object, path: str) -> dict[str, tuple[str, ...]]:
    return {k: _strings(ld, v, _key(path, k)) for k, v in ld.table(value, path).items()}


def rules(
    ld: _Loader,
    value: object,
    path: str,
    channels: tuple[str, ...],
    queues: Mapping[str, QueueConfig],
) -> tuple[RoutingRule, ...]:
    items = ld.array(value, path)
    return tuple(rule(ld, item, f"{path}[{i}]", channels, queues) for i, item in enumerate(items))


def rule(
    ld: _Loader,
    value: object,
    path: str,
    channels: tuple[str, ...],
    queues: Mapping[str, QueueConfig],
) -> RoutingRule:
    t = ld.table(value, path)
    ld.keys(t, path, RULE_KEYS)
    wpath = _key(path, "when")
    when: dict[str, Any] = ld.table(t.get("when", {}), wpath)
    ld.keys(when, wpath, WHEN_KEYS)
    match = RuleMatch(
        channels=tuple(
            ld.channel(c, _key(wpath, "channel"), channels)
            for c in (
                _strings(ld, when["channel"], _key(wpath, "channel")) if "channel" in when else ()
            )
        ),
        languages=_strings(ld, when["language"], _key(wpath, "language"), lower=True)
        if "language" in when
        else (),
        keywords=_strings(ld, when["keywords"], _key(wpath, "keywords"), lower=True)
        if "keywords" in when
        else (),
        attributes=_string_map(ld, when["attributes"], _key(wpath, "attributes"))
        if "attributes" in when
        else {},
        ivr=_string_map(ld, when["ivr"], _key(wpath, "ivr")) if "ivr" in when else {},
    )
    queue = None
    if "queue" in t:
        queue = ld.string(t["queue"], _key(path, "queue"))
        if queue not in queues:
            ld.fail(
                _key(path, "queue"), f"unknown queue {queue!r}; defined queues: {', '.join(queues)}"
            )
        for ch in match.channels:
            if ch not in queues[queue].channels:
                ld.fail(_key(path, "queue"), f"queue {queue!r} does not serve channel {ch!r}")
    skills: dict[str, int] = {}
    if "skills" in t:
        spath = _key(path, "skills")
        for name, level in ld.table(t["skills"], spath).items():
            skills[ld.ident(name, _key(spath, name), "skill")] = ld.level(level, _key(spath, name))
    priority = None
    if "priority" in t:
        priority = ld.integer(t["priority"], _key(path, "priority"))
        if not -1000 <= priority <= 1000:
            ld.fail(_key(path, "priority"), "must be between -1000 and 1000")
    name = ld.opt_string(t, path, "name") or path
    return RoutingRule(name=name, match=match, queue=queue, skills=skills, priority=priority)


def conversations(ld: _Loader, value: object, path: str) -> ConversationConfig:
    t = ld.table(value, path)
    ld.keys(t, path, CONVERSATION_KEYS)
    return ConversationConfig(
        reopen_s=ld.opt_nonneg(t, path, "reopen_s", ConversationConfig.reopen_s)
    )


def _env(ld: _Loader, t: Mapping[str, object], path: str, key: str) -> str:
    p = _key(path, key)
    if key not in t:
        ld.fail(p, "required: the name of the environment variable holding the secret")
    name = ld.string(t[key], p)
    if not _ENV.match(name):
        ld.fail(
            p,
            "must name an environment variable (A-Z 0-9 _); the secret itself never goes "
            "in the file",
        )
    return name


def _url(ld: _Loader, t: Mapping[str, object], path: str, key: str) -> str | None:
    if key not in t:
        return None
    url = ld.string(t[key], _key(path, key))
    if not _URL.match(url):
        ld.fail(_key(path, key), "must be an http:// or https:// URL")
    return url.rstrip("/") if key == "public_base_url" else url


def providers(
    ld: _Loader, value: object, path: str
) -> tuple[TwilioConfig | None, MetaConfig | None]:
    t = ld.table(value, path)
    ld.keys(t, path, PROVIDER_KEYS)
    twilio = meta = None
    if "twilio" in t:
        p = _key(path, "twilio")
        tw = ld.table(t["twilio"], p)
        ld.keys(tw, p, TWILIO_KEYS)
        hold = ld.opt_string(tw, p, "hold_message") or None
        if hold is not None and len(hold) > 1000:
            ld.fail(_key(p, "hold_message"), "must be at most 1000 characters")
        closed = TwilioConfig.closed_message
        if "closed_message" in tw:
            closed = ld.string(tw["closed_message"], _key(p, "closed_message")).strip()
            if not closed or len(closed) > 1000:
                ld.fail(_key(p, "closed_message"), "must be 1-1000 characters")
        twilio = TwilioConfig(
            auth_token_env=_env(ld, tw, p, "auth_token_env"),
            public_base_url=_url(ld, tw, p, "public_base_url"),
            wait_url=_url(ld, tw, p, "wait_url"),
            hold_message=hold,
            closed_message=closed,
        )
    if "meta" in t:
        p = _key(path, "meta")
        m = ld.table(t["meta"], p)
        ld.keys(m, p, META_KEYS)
        meta = MetaConfig(
            app_secret_env=_env(ld, m, p, "app_secret_env"),
            verify_token_env=_env(ld, m, p, "verify_token_env"),
        )
    return twilio, meta
