"""Request ids, access lines and the log formats: tie every log line to its request.

A client's `X-Request-Id` is kept when it is sane, so one id can follow a call
across services; otherwise the server makes one. The id is echoed on every
response, set in a contextvar so any log record written while handling the
request carries it, and written in the access line logged after the response.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from .auth import PRINCIPAL
from .problems import Handler

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
ACCESS_LOGGER = "switchboard.access"
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Plain ASCII only: the id goes into log lines and a response header verbatim.
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("switchboard_request_id", default=None)


def sane_request_id(value: str | None) -> str | None:
    """The client's id if it is safe to log and echo, else None."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: every response, problems and 404s included, names its id."""
    rid = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # only what the problems middleware lets through
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        request_id_var.reset(token)
    if not response.prepared:  # a streamed response sent its headers already
        response.headers[REQUEST_ID_HEADER] = rid
    return response


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: a streamed response (SSE) is prepared inside its
    handler, before the middleware sees it; this names its id all the same."""
    rid = request.get(REQUEST_ID)
    if rid is not None and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = rid


class AccessLogger(AbstractAccessLogger):
    """One line per request, written after the response went out (so it has the status)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        rid = request.get(REQUEST_ID) or sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        principal = request.get(PRINCIPAL)
        duration_ms = round(time * 1000, 1)
        extra: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": duration_ms,
        }
        if rid:
            extra["request_id"] = rid
        if principal is not None:
            extra["tenant"] = principal.tenant
        self.logger.info(
            "%s %s %d %.1fms",
            request.method,
            request.path,
            response.status,
            duration_ms,
            extra=extra,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


# Attributes every LogRecord has; anything else was passed as `extra=`.
_RECORD_ATTRS = frozenset(
    {*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName"}
)
_TEXT_CONTEXT = ("tenant", "request_id")


def _request_id(record: logging.LogRecord) -> str | None:
    rid = getattr(record, "request_id", None)
    return rid if isinstance(rid, str) else request_id_var.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: no parsing of free text needed."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        rid = _request_id(record)
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in out:
                plain = isinstance(value, str | int | float | bool | None)
                out[key] = value if plain else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For people at a terminal: today's format, plus the tenant and request id if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = {k: getattr(record, k, None) for k in _TEXT_CONTEXT}
        context["request_id"] = _request_id(record)
        return line + "".join(f" {k}={v}" for k, v in context.items() if v)


def configure_logging(fmt: LogFormat, level: str) -> None:
    """Root logging for a server process: one handler on stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
