"""RFC 9457 problem details for every error the API returns.

The middleware here is the only place that turns exceptions into responses:
typed engine errors keep their status, aiohttp's own HTTP errors become
problems, Redis outages become 503 with Retry-After, and anything unexpected
is logged and answered with a problem, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import SwitchboardError
from ..store.outage import unavailable

log = logging.getLogger("switchboard.api")

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **ext: Any
) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **ext}
    return web.json_response(body, status=status, content_type=PROBLEM_JSON, headers=headers)


class ApiError(SwitchboardError):
    """An error raised by the HTTP layer itself (auth, body, route)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **details: object,
    ) -> None:
        super().__init__(detail, **details)
        self.http_status = status
        self.title = title
        self.headers = headers or {}


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        headers = dict(exc.headers)
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return problem(exc.http_status, exc.title, exc.message, headers=headers, **exc.details)
    except SwitchboardError as exc:
        title = exc.code.replace("_", " ")
        return problem(exc.http_status, title, exc.message, code=exc.code, **_jsonable(exc.details))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # 405
        return problem(exc.status, exc.reason, exc.text or exc.reason, headers=allow)
    except ConnectionResetError:
        # the client went away mid-request: not a data-store outage, nothing to log;
        # the answer goes nowhere, and the access log shows a 400
        return problem(400, "connection lost", "the client closed the connection")
    except Exception as exc:
        reason = unavailable(exc)
        if reason is not None:
            return data_store_unavailable(request, exc, reason)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error", "an unexpected error occurred; it was logged")


def data_store_unavailable(request: web.Request, exc: BaseException, reason: str) -> web.Response:
    """503 for a Redis outage (down, restarting, loading, stalled, failing over). The
    request may or may not have been applied if it timed out: retry idempotently."""
    log.warning("%s %s: %s: %s", request.method, request.path, reason, exc)
    return problem(
        503,
        "data store unavailable",
        f"{reason}; retry after the Retry-After delay (a request that timed out may "
        "have been applied: retry with the same Idempotency-Key, or read the state first)",
        headers={"Retry-After": "5" if "out of memory" in reason else "1"},
        code="data_store_unavailable",
    )


def _jsonable(details: dict[str, object]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if isinstance(v, str | int | float | bool)}
