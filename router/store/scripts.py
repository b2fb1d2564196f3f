"""Lua scripts: read from files once, registered once, called by SHA.

Each `scripts/<name>.lua` is one transition. `--!include lib/x.lua` lines are
replaced by that file's text, so the routing core lives in one place. redis-py's
`Script` object runs EVALSHA and reloads the script on NOSCRIPT (after a
server restart or SCRIPT FLUSH).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from ..errors import SwitchboardError, from_script_error

_INCLUDE = re.compile(r"^--!include (\S+)\s*$", re.MULTILINE)
_SUFFIX = re.compile(r"\s*script: \w+, on @user_script:\d+\.?\s*$")

SCRIPT_NAMES = (
    "create_contact",
    "accept",
    "reject",
    "complete",
    "abandon",
    "transfer",
    "offer",
    "agent_upsert",
    "agent_status",
    "heartbeat",
    "timers",
    "pool_gate",
    "dispatch",
    "lanes_add",
)


def script_source(name: str) -> str:
    """The script's full text, includes resolved (each included once)."""
    base = resources.files(__package__).joinpath("scripts")
    seen: set[str] = set()

    def expand(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            inc = m.group(1)
            if inc in seen:
                return ""
            seen.add(inc)
            return expand(base.joinpath(inc).read_text(encoding="utf-8"))

        return _INCLUDE.sub(sub, text)

    return expand(base.joinpath(f"{name}.lua").read_text(encoding="utf-8"))


def script_error(exc: ResponseError) -> SwitchboardError | None:
    """The typed error for a script's `SB<CODE> message` reply, if it is one."""
    text = _SUFFIX.sub("", str(exc))
    return from_script_error(text)


class Scripts:
    """All transition scripts, registered on one client."""

    def __init__(self, redis: Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES
        }

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except ResponseError as exc:
            typed = script_error(exc)
            if typed is not None:
                raise typed from None
            raise

    def sha(self, name: str) -> str:
        return str(self._scripts[name].sha)

    def script(self, name: str) -> AsyncScript:
        return self._scripts[name]
