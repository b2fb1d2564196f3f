"""What every handler needs: the caller's engine, and the service behind it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..engine import Engine
from ..model import Contact
from ..service import Service
from ..sla import sla_of
from .auth import Principal
from .render import contact_json

SERVICE = web.AppKey("service", Service)


def engine_for(request: web.Request, who: Principal) -> Engine:
    return request.app[SERVICE].engines[who.tenant]


def contact_view(engine: Engine, c: Contact) -> dict[str, Any]:
    """The contact as the API shows it, with its SLA status at the engine's now."""
    q = engine.tenant.queues.get(c.queue)
    return contact_json(c, None if q is None else sla_of(c, q, engine.clock.now_ms()))
