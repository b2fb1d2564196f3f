"""What "Redis is unavailable" means, in one place: errors, timeouts and retries.

Switchboard keeps no state outside Redis, so while Redis is down, restarting,
loading its AOF, stalled or failing over, the only correct answers are "not now":
the API says 503 with Retry-After, the background loops back off and try again.
Everything that has to recognise such an error asks `unavailable(exc)`, so the
API, the loops and the stream consumers agree on the list.

Retries (see docs/resilience.md): a command is re-sent only when it provably did
not run, that is when the connection could not be opened, or the server answered
LOADING. A command that was sent and then timed out, or whose connection dropped
before the reply, may have been applied: it is never re-sent here. Transition
scripts go out on their own path (router/store/scripts.py) and are never retried
at all, except on NOSCRIPT, which says the script did not run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterDownError,
    CrossSlotTransactionError,
    InvalidPipelineStack,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_SOCKET_TIMEOUT_S",
    "UNAVAILABLE",
    "ReconnectRetry",
    "unavailable",
]

T = TypeVar("T")

# A command that gets no reply in this time fails (TimeoutError -> 503 in the API):
# a stalled server must not hang requests. Long enough for any single script.
DEFAULT_SOCKET_TIMEOUT_S = 2.0
DEFAULT_CONNECT_TIMEOUT_S = 1.0
# connecting again: 3 more tries, 0.1 s, 0.2 s, 0.4 s apart (0.7 s in all)
RECONNECT_RETRIES = 3
RECONNECT_BACKOFF = (0.05, 0.5)  # base, cap

# Errors that say the server cannot serve now, not that the request is wrong.
# BusyLoadingError and MaxConnectionsError are ConnectionErrors; ClusterDownError
# covers MasterDownError. RedisClusterException ("Redis Cluster cannot be
# connected") is not even a RedisError.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
)
# cluster-client errors that are bugs in the caller, not outages
_NOT_OUTAGES: tuple[type[BaseException], ...] = (
    CrossSlotTransactionError,
    InvalidPipelineStack,
)


def unavailable(exc: BaseException) -> str | None:
    """Why the data store cannot serve now (a short reason), or None if `exc`
    is not an availability problem (a bug, a bad request, a script's refusal)."""
    if isinstance(exc, _NOT_OUTAGES) or not isinstance(exc, (*UNAVAILABLE, OutOfMemoryError)):
        return None
    if isinstance(exc, OutOfMemoryError):
        return "the data store is out of memory and refuses writes"
    if isinstance(exc, BusyLoadingError):
        return "the data store is loading its data after a restart"
    if isinstance(exc, RedisTimeoutError):
        return "the data store did not answer in time"
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return "the data store refused this server's credentials"
    if isinstance(exc, RedisConnectionError):
        return "the data store is unreachable"
    if isinstance(exc, ReadOnlyError):
        return "the data store is failing over (read-only replica)"
    return "the data store cluster is unavailable or failing over"


def not_yet_run(exc: BaseException) -> bool:
    """Whether a failed command provably did not run, so sending it again is safe:
    the connection could not be opened (refused, unreachable, connect timeout) or
    the server is loading. Not for a lost reply: the command may have run."""
    if isinstance(exc, BusyLoadingError):
        return True
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return False  # will not get better by retrying
    text = str(exc)
    if isinstance(exc, RedisTimeoutError):
        return text == "Timeout connecting to server"
    return isinstance(exc, RedisConnectionError) and " connecting to " in text


class ReconnectRetry(Retry):
    """redis-py's Retry, limited to failures that provably ran nothing.

    redis-py uses one Retry per connection both for opening it and for every
    command (and pipeline). Its default would re-send a command after a timeout
    or a dropped connection, which could apply a non-idempotent write twice; this
    one retries (with exponential backoff) only what `not_yet_run` allows.
    """

    def __init__(
        self,
        retries: int = RECONNECT_RETRIES,
        base_s: float = RECONNECT_BACKOFF[0],
        cap_s: float = RECONNECT_BACKOFF[1],
    ) -> None:
        super().__init__(ExponentialBackoff(cap=cap_s, base=base_s), retries)

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def safe(exc: Exception) -> bool:
            return not_yet_run(exc) and (is_retryable is None or is_retryable(exc))

        return await super().call_with_retry(
            do, fail, is_retryable=safe, with_failure_count=with_failure_count
        )
