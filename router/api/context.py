"""What every handler needs: the caller's engine, and the service behind it."""

from __future__ import annotations

from aiohttp import web

from ..engine import Engine
from ..service import Service
from .auth import Principal

SERVICE = web.AppKey("service", Service)


def engine_for(request: web.Request, who: Principal) -> Engine:
    return request.app[SERVICE].engines[who.tenant]
