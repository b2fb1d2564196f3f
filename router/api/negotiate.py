"""Response bodies in the format the caller asked for: JSON, or msgpack.

A client that sends `Accept: application/msgpack` gets the same schema packed
with msgpack; everyone else gets JSON. Problems stay `application/problem+json`.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
from aiohttp import web

MSGPACK = "application/msgpack"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def wants_msgpack(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return MSGPACK in accept and _quality(accept, MSGPACK) >= _quality(accept, "application/json")


def _quality(accept: str, media: str) -> float:
    """The q value the Accept header gives `media` (0 when absent, 1 by default)."""
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        if kind.strip() in (media, "*/*", media.split("/")[0] + "/*"):
            for p in params.split(";"):
                name, _, value = p.strip().partition("=")
                if name == "q":
                    try:
                        return float(value)
                    except ValueError:
                        return 0.0
            return 1.0 if kind.strip() == media else 0.5
    return 0.0


def respond(
    request: web.Request, data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    if wants_msgpack(request):
        return web.Response(
            body=msgpack.packb(data, use_bin_type=True),
            status=status,
            content_type=MSGPACK,
            headers=headers,
        )
    return web.Response(
        text=_dumps(data), status=status, content_type="application/json", headers=headers
    )
