"""The default configuration a replay derives from a trace and a roster.

A planner can replay a trace without writing a configuration: every queue named
in the trace becomes a queue with default routing (longest idle, no overflow),
serving the channels its contacts use and open to every roster pool; every pool
of the roster becomes an in-house pool. docs/replay.md explains each choice.

Skills: the queue itself requires nothing. Each contact's own `skills` go with it
(NewContact.skills), and the engine routes such a contact through a sub-queue that
requires exactly those levels, so every contact gets the agents its own skill
levels allow. A queue-wide requirement (the minimum level over its contacts, say)
would either refuse agents some contacts could use or offer contacts to agents
below their level.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.config import load_config_text
from router.config.model import TenantConfig

from .trace import Roster, TraceContact

DEFAULT_SL_THRESHOLD_S = 20.0
# Long enough that a simulated agent (who accepts at once) never misses an offer.
OFFER_TIMEOUT_S = 86_400


def _q(s: str) -> str:
    """A TOML basic string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(s: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise (the loader names bad ids)."""
    if s and all(ch.isalnum() or ch in "_-" for ch in s) and s.isascii():
        return s
    return _q(s)


def derive_toml(
    contacts: Iterable[TraceContact],
    roster: Roster,
    *,
    tenant: str = "replay",
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
) -> str:
    """The TOML text of one tenant for this trace and roster."""
    queue_channels: dict[str, list[str]] = {}
    channels: list[str] = []
    for c in contacts:
        chans = queue_channels.setdefault(c.queue, [])
        if c.channel not in chans:
            chans.append(c.channel)
        if c.channel not in channels:
            channels.append(c.channel)
    pools: list[str] = []
    for a in roster.agents:
        if a.pool not in pools:
            pools.append(a.pool)
        for ch in a.capacity:
            if ch not in channels:
                channels.append(ch)
    if not channels:
        channels.append("voice")
    exclusive = [ch for ch in ("voice",) if ch in channels]
    lines = [
        "# Derived by loadtests.replay from a trace and a roster (docs/replay.md).",
        "[tenant]",
        f"id = {_q(tenant)}",
        f"channels = [{', '.join(_q(ch) for ch in channels)}]",
        "",
        "[routing]",
        "max_missed_offers = 0",
        "presence_timeout_s = 0",
        f"exclusive_channels = [{', '.join(_q(ch) for ch in exclusive)}]",
        "",
    ]
    for p in pools:
        lines += [f"[pools.{_key(p)}]", 'kind = "inhouse"', ""]
    pool_list = ", ".join(_q(p) for p in pools)
    for q in sorted(queue_channels):
        chan_list = ", ".join(_q(ch) for ch in queue_channels[q])
        lines += [
            f"[queues.{_key(q)}]",
            f"channels = [{chan_list}]",
            f"pools = [{pool_list}]",
            f"offer_timeout_s = {OFFER_TIMEOUT_S}",
            "wrap_up_s = 0",
            f"# service level threshold of the replay report: {sl_threshold_s:g} s",
            "",
        ]
    return "\n".join(lines)


def derive_config(
    contacts: Iterable[TraceContact],
    roster: Roster,
    *,
    tenant: str = "replay",
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
) -> TenantConfig:
    """The derived configuration, loaded and validated like any config file."""
    text = derive_toml(contacts, roster, tenant=tenant, sl_threshold_s=sl_threshold_s)
    return load_config_text(text, source="<derived>").tenants[tenant]
