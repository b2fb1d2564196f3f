"""Request bodies: JSON or msgpack, bounded, and read field by field.

Every problem names the field at fault; unknown fields are rejected, so a
typo never passes silently. Nothing is written before a body is fully valid.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import msgpack
from aiohttp import web

from ..ids import is_valid_id
from .problems import ApiError

MAX_DEPTH = 8
MAX_STRING = 64 * 1024
MIN_NUMBER, MAX_NUMBER = -(2**63), 2**64  # what msgpack can store
# A client that sends its body slowly holds a connection and a handler: cap the wait.
# The server sets it from --body-timeout; tests set it small.
BODY_TIMEOUT = web.AppKey("body_timeout", float)
DEFAULT_BODY_TIMEOUT_S = 30.0


def invalid(field: str, detail: str) -> ApiError:
    return ApiError(422, "invalid request", f"{field}: {detail}", field=field)


async def read_body(request: web.Request, allowed: Iterable[str]) -> Body:
    if request.content.is_eof():
        # The whole body is in already (a small body comes with the headers): there
        # is nothing to wait for, so no timer is armed (measurable on the ingest path).
        raw = await request.read()
    else:
        limit = request.config_dict.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT_S)
        try:
            async with asyncio.timeout(limit):
                raw = await request.read()
        except TimeoutError:
            raise ApiError(
                408, "request timeout", f"body: not received within {limit:g} s", field="body"
            ) from None
    ctype = request.content_type
    try:
        if ctype == "application/msgpack":
            data = msgpack.unpackb(raw, raw=False, max_bin_len=0, max_ext_len=0)
        elif ctype in ("application/json", "application/octet-stream", "") or ctype.endswith(
            "+json"
        ):
            data = json.loads(raw) if raw.strip() else {}
        else:
            raise ApiError(
                415, "unsupported media type", "send application/json or application/msgpack"
            )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ApiError(400, "malformed body", f"body: not valid {ctype or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("body", "must be an object")
    _check_bounds(data, "body", 0)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise invalid(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed)) or 'none'}")
    return Body(data)


def _check_bounds(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise invalid(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise invalid(path, f"longer than {MAX_STRING} characters")
    if isinstance(value, int | float) and not MIN_NUMBER <= value < MAX_NUMBER:  # NaN too
        raise invalid(path, "must be a finite number in the 64-bit integer range")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise invalid(path, "object keys must be strings")
            _check_bounds(v, f"{path}.{k}" if path != "body" else k, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_bounds(v, f"{path}[{i}]", depth + 1)


class Body:
    """Typed access to a validated request object."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def text(self, name: str, *, required: bool = False, max_len: int = 1000) -> str | None:
        v = self.data.get(name)
        if v is None:
            if required:
                raise invalid(name, "is required")
            return None
        if not isinstance(v, str):
            raise invalid(name, f"must be a string, got {type(v).__name__}")
        if len(v) > max_len:
            raise invalid(name, f"must be at most {max_len} characters")
        return v

    def ident(self, name: str, *, required: bool = False) -> str | None:
        v = self.text(name, required=required, max_len=64)
        if v is not None and not is_valid_id(v):
            raise invalid(
                name, "must be 1-64 characters of A-Z a-z 0-9 _ . -, starting alphanumeric"
            )
        return v

    def integer(self, name: str, lo: int, hi: int, default: int) -> int:
        v = self.data.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise invalid(name, f"must be an integer, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise invalid(name, f"must be between {lo} and {hi}")
        return v

    def levels(self, name: str, lo: int, hi: int) -> dict[str, int]:
        v = self.data.get(name)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise invalid(name, "must be an object of name: integer")
        out: dict[str, int] = {}
        for k, n in v.items():
            if not is_valid_id(k):
                raise invalid(f"{name}.{k}", "is not a valid name")
            if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
                raise invalid(f"{name}.{k}", f"must be an integer {lo}..{hi}")
            out[k] = n
        return out

    def obj(self, name: str) -> dict[str, Any]:
        v = self.data.get(name)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise invalid(name, "must be an object")
        return v
