"""Contacts as each caller may see them: the viewer's pool decides (docs/privacy.md).

An agent of an outsourced pool, and a supervisor scoped to one, see what its
vendor's visibility policy allows, and each such read of personal data goes to
the audit stream. Admins, ingest, tenant-wide supervisors and in-house staff see
everything. Every handler that returns a contact to an agent or supervisor goes
through `view_for`.
"""

from __future__ import annotations

import secrets
import weakref
from typing import Any

from .. import audit, privacy
from ..config.model import Role
from ..engine import Engine
from ..errors import AgentNotFound
from ..model import Contact
from .auth import Principal
from .context import contact_view

_SECRETS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


async def pseudonym_secret(engine: Engine) -> bytes:
    """The tenant's pseudonym secret: made once (SET NX) and kept in Redis, so every
    process names a customer alike and a restart changes nothing."""
    cached = _SECRETS.get(engine)
    if cached is not None:
        return cached
    key = engine.keys.privacy_secret
    await engine.redis.set(key, secrets.token_hex(32), nx=True)
    raw = await engine.redis.get(key)
    value = raw if isinstance(raw, bytes) else str(raw).encode()
    _SECRETS[engine] = value
    return value


async def viewer_pool(engine: Engine, who: Principal, acting_agent: str | None) -> str | None:
    """The pool whose policy applies to this caller, or None (sees everything).
    `acting_agent`: the agent a platform-wide agent token acts for here."""
    if Role.ADMIN in who.roles:
        return None
    if Role.SUPERVISOR in who.roles:
        return who.pool
    if Role.AGENT in who.roles:
        aid = who.agent or acting_agent
        if aid is None:
            return None
        try:
            return (await engine.get_agent(aid)).pool
        except AgentNotFound:
            return None
    return None


async def view_for(
    engine: Engine,
    who: Principal,
    c: Contact,
    acting_agent: str | None = None,
    timeline: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The contact (with `timeline` when given) as this caller may see it; a read by
    an outsourced pool is audited."""
    view = contact_view(engine, c)
    pool = await viewer_pool(engine, who, acting_agent if acting_agent else c.agent)
    policy = privacy.policy_for(engine.tenant, pool)
    if policy is None:
        return view if timeline is None else {**view, "timeline": timeline}
    shown_view, shown_timeline, fields = privacy.render(
        view, policy, await pseudonym_secret(engine), timeline
    )
    if fields:
        await audit.append(
            engine.redis,
            engine.keys,
            audit.AuditEntry(
                action="read",
                who=who.name or (f"agent {who.agent}" if who.agent else "agent"),
                at=engine.clock.now_ms(),
                pool=policy.pool,
                vendor=policy.vendor,
                agent=(who.agent or acting_agent or "") if Role.AGENT in who.roles else "",
                contact=c.id,
                fields=tuple(fields),
            ),
        )
    if shown_timeline is None:
        return shown_view
    return {**shown_view, "timeline": shown_timeline}
