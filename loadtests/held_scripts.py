"""Scripts that wait to be flushed: the virtual replay's round-trip saver.

A discrete-event simulation is sequential: each step's transition must see the
previous step's. Run as usual, each step costs several round trips (the
transition, reading its events, the agents' accepts). `HeldScripts` keeps every
script call of the engine until the simulation flushes them, in call order, in
one write together with the simulation's own reads (the event stream, the next
timer). Each call is still its own atomic EVALSHA of the same script with the
same arguments, and Redis runs the batch in order, so the engine's behaviour is
that of the calls made one by one; only the round trips are shared. The scripts
must be loaded before the first flush (a NOSCRIPT retry would reorder the batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from router.store.scripts import Scripts, _Call, _pack, exchange


class HeldScripts(Scripts):
    """Script calls queue up until `flush`; see the module docstring."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.queued = asyncio.Event()  # set when a call is queued
        self.round_trips = 0
        self.calls = 0
        self._conn: Any = None

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        packed = _pack(("EVALSHA", self.sha(name), len(keys), *keys, *args))
        call = _Call(name, packed, asyncio.get_running_loop().create_future())
        self._pending.append(call)
        self.queued.set()
        return await call.future

    async def flush(self, *commands: Sequence[Any]) -> list[Any]:
        """Send the held calls, then `commands` (raw, e.g. ("XREAD", ...)), in one
        write; resolves the calls' futures and returns the commands' raw replies
        (an exception in place of an error reply)."""
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        extra = [_Call("", _pack(c), loop.create_future()) for c in commands]
        self.round_trips += 1
        self.calls += len(batch)
        await self._send(batch + extra)
        return [c.future.exception() or c.future.result() for c in extra]

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        """Scripts._execute on a connection of our own, kept between flushes: a
        simulation flushes thousands of times a second, one flush at a time."""
        conn = self._conn
        if conn is None:
            conn = self._conn = await self._redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            replies = await exchange(conn, batch)
        except BaseException:
            self._conn = None
            await conn.disconnect()
            await self._redis.connection_pool.release(conn)
            raise
        if any(isinstance(r, NoScriptError) for r in replies):
            # Retrying the calls that missed would run them after the rest of the
            # batch, out of order: the caller loads every script before it starts.
            raise NoScriptError("the server lost the scripts (restart or SCRIPT FLUSH)")
        return replies

    async def close(self) -> None:
        """Give the connection back to the client's pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._redis.connection_pool.release(conn)

    async def drive(
        self,
        calls: Sequence[Awaitable[Any]],
        commands: Callable[[], Sequence[Sequence[Any]]],
        consume: Callable[[list[Any]], None],
    ) -> list[Any]:
        """Run the engine calls (started in order) to the end, flushing whenever all
        of them wait on held scripts. Each flush also sends `commands()` after the
        calls and hands their replies to `consume` (at least one flush happens).
        Returns the calls' results, an exception in place of a call that raised."""
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0)  # each new call runs to its first script (or other await)
        flushed = False
        while True:
            # Calls resolved by a flush may run (and queue more) during any await,
            # including the flush's own: always look at what is queued first.
            if self._pending:
                consume(await self.flush(*commands()))
                flushed = True
                await asyncio.sleep(0)  # the resolved calls run on: finish or queue more
                continue
            running = [t for t in tasks if not t.done()]
            if not running:
                if not flushed:
                    consume(await self.flush(*commands()))
                return [t.exception() or t.result() for t in tasks]
            # nothing queued: some call awaits something else; wait for it to
            # queue a script or to finish
            self.queued.clear()
            waiter = asyncio.ensure_future(self.queued.wait())
            await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            await asyncio.sleep(0)  # the others woken in the same tick queue theirs
