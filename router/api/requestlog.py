"""Request ids, access lines and the log formats: tie every log line to its request.

A client's `X-Request-Id` is kept when it is sane, so one id can follow a call
across services; otherwise the server makes one. The id is echoed on every
response, set in a contextvar so any log record written while handling the
request carries it, and written in the access line logged after the response.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import sys
import time
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


_ID_PREFIX = secrets.token_hex(8)  # per process: ids stay unique across workers
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """32 hex digits: a random per-process prefix and a counter (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


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


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to stderr, but flushes (one syscall) at most every FLUSH_S, or at once
    for warnings and errors: an access line per request would otherwise cost a
    write per request. `flush_now` (called periodically by the server) and exit
    flush the rest."""

    FLUSH_S = 0.25

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._last = 0.0
        self._pending = False
        self._urgent = True

    def emit(self, record: logging.LogRecord) -> None:
        self._urgent = record.levelno >= logging.WARNING
        super().emit(record)

    def flush(self) -> None:
        now = time.monotonic()
        if self._urgent or now - self._last >= self.FLUSH_S:
            self.flush_now()
        else:
            self._pending = True

    def flush_now(self) -> None:
        self._last, self._pending, self._urgent = time.monotonic(), False, True
        super().flush()

    def close(self) -> None:
        self.flush_now()
        super().close()


def flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BufferedStderrHandler) and handler._pending:
            handler.flush_now()


def configure_logging(fmt: LogFormat, level: str) -> None:
    """Root logging for a server process: one handler on stderr in the chosen format."""
    handler = BufferedStderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
