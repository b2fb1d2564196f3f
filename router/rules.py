"""Routing rules: from what an adapter extracted to a queue, skills and priority.

The rules are tried in the config's order and the first that matches wins; no
match means the channel's default queue. Pure functions, so a planner can test
a rule set without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config.model import RoutingRule, RuleMatch, TenantConfig


@dataclass(frozen=True)
class Routed:
    queue: str | None  # None: the tenant has no queue for this channel
    skills: dict[str, int] = field(default_factory=dict)
    priority: int = 0
    rule: str | None = None  # the rule that matched, for the routing reason


def _any(wanted: tuple[str, ...], value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_any(wanted, v) for v in value)
    return value is not None and str(value).lower() in {w.lower() for w in wanted}


def matches(
    m: RuleMatch,
    channel: str,
    language: str | None,
    text: str,
    attributes: Mapping[str, Any],
    ivr: Mapping[str, str],
) -> bool:
    if m.channels and channel not in m.channels:
        return False
    if m.languages:
        lang = (language or "").lower()
        if not any(lang == w or lang.startswith(w + "-") for w in m.languages):
            return False
    if m.keywords and not any(k in text for k in m.keywords):
        return False
    if any(not _any(v, attributes.get(k)) for k, v in m.attributes.items()):
        return False
    return all(_any(v, ivr.get(k)) for k, v in m.ivr.items())


def route(
    tenant: TenantConfig,
    channel: str,
    *,
    language: str | None = None,
    subject: str = "",
    text: str = "",
    attributes: Mapping[str, Any] | None = None,
    ivr: Mapping[str, str] | None = None,
    priority: int = 0,
) -> Routed:
    haystack = f"{subject}\n{text}".lower()
    rule: RoutingRule | None = next(
        (
            r
            for r in tenant.rules
            if matches(r.match, channel, language, haystack, attributes or {}, ivr or {})
        ),
        None,
    )
    default = tenant.default_queues.get(channel)
    if rule is None:
        return Routed(default, {}, priority)
    return Routed(
        rule.queue or default,
        dict(rule.skills),
        priority if rule.priority is None else rule.priority,
        rule.name,
    )
