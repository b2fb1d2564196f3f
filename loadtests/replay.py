"""Replay a trace against the real engine: `python -m loadtests.replay ...`.

virtual mode (this module): a discrete-event simulation on the engine's
VirtualClock, with the real Engine and a real Redis (an embedded Valkey unless
--redis-url). Events, in a heap ordered by (time, kind, sequence): arrivals
(create_contact at `at`), agent shifts (available / offline), completions
(`handle_s` after the simulated agent accepted), patience expiry (abandon when not
answered by `at + patience_s`), and the engine's own timers (run_due_timers whenever
virtual time reaches the earliest due timer, or a boundary of a pool's hours).
Offers are read from the tenant's event stream (`contact.reserved`) and accepted
at once. The engine's script calls are held and sent with the stream read in one
round trip per step
(held_scripts.py); independent stretches of the trace run in parallel processes
(segments.py). Nothing sleeps and nothing is random, so a trace, a roster and a
config give the same report every time.

realtime mode (realtime.py): drives a server over HTTP at the trace's times.
Both write the report of report.py (docs/replay.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.clock import VirtualClock
from router.config import load_config_text
from router.config.model import TenantConfig
from router.engine import Engine
from router.errors import SwitchboardError
from router.keys import TenantKeys
from router.metrics import definitions as d
from router.model import AgentSpec, AgentStatus, Customer, NewContact
from router.store.connection import connect

from .bench import drop_tenant, load_all_scripts, valkey_url
from .derive import DEFAULT_SL_THRESHOLD_S, derive_toml
from .held_scripts import HeldScripts
from .html_report import OneLineParser, render_html
from .report import Counts, Outcome, build_report, merge_shifts
from .segments import merge_results, replay_segments, split_points, splittable
from .trace import FormatError, Roster, TraceContact, read_roster, read_trace

# 2024-01-01T00:00:00Z: trace time 0 on the engine clock (calendars see a real date).
START_MS = 1_704_067_200_000

# Event kinds, in the order they run at one instant: a completion frees its agent
# before a shift ends or a contact arrives at the same ms; a contact whose patience
# runs out at the very ms an agent frees up is answered.
COMPLETE, SHIFT_START, SHIFT_END, ARRIVAL, PATIENCE = range(5)
# After the last event, the engine's timers (wrap-up, overflow, SLA...) run for at
# most this long: a timer that only ever reschedules itself cannot run forever.
TIMER_HORIZON_MS = 7 * 86_400_000


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class VirtualReplay:
    """One virtual-time replay of a trace and roster on one tenant."""

    def __init__(
        self,
        redis: Redis,
        tenant: TenantConfig,
        contacts: Sequence[TraceContact],
        roster: Roster,
        *,
        sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
        seed: int = 0,
        queue_thresholds: dict[str, float] | None = None,
    ) -> None:
        # Simulated agents send no heartbeats: presence timeouts would log them off.
        routing = dataclasses.replace(tenant.routing, presence_timeout_s=0.0)
        self.tenant = dataclasses.replace(tenant, routing=routing)
        self.redis = redis
        self.contacts = contacts
        self.roster = roster
        self.sl_threshold_s = sl_threshold_s
        self.queue_thresholds = queue_thresholds  # each queue's own, with --config
        self.seed = seed  # nothing is drawn at random yet; kept in the report
        self.clock = VirtualClock(START_MS)
        self.scripts = HeldScripts(redis)
        self.engine = Engine(redis, self.tenant, self.clock, self.scripts)
        self.keys = TenantKeys(self.tenant.id)
        self.outcomes: dict[str, Outcome] = {}
        self.rejected: dict[str, int] = {}
        self.queue_counts: dict[str, Counts] = {}
        self.pool_counts: dict[str, Counts] = {}
        self._heap: list[tuple[int, int, int, str, str]] = []
        self._seq = 0
        self._last_id = "0-0"
        self._next_timer: int | None = None
        self._read = 0
        self._offers: list[tuple[str, str]] = []
        self._accepts: list[asyncio.Future[None]] = []
        self.wall_s = 0.0
        self.end_ms = START_MS

    def _push(self, t_ms: int, kind: int, a: str, b: str = "") -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t_ms, kind, self._seq, a, b))

    # -- the engine's side ----------------------------------------------------

    def _commands(self) -> list[tuple[Any, ...]]:
        """The reads that ride along with every flush: new stream events, next timer."""
        cmds: list[tuple[Any, ...]] = [
            ("XREAD", "STREAMS", self.keys.events, self._last_id),
            ("ZRANGE", self.keys.timers, 0, 0, "WITHSCORES"),
        ]
        if self._read >= 20_000:  # nobody else reads this tenant's stream
            cmds.append(("XTRIM", self.keys.events, "MINID", self._last_id))
            self._read = 0
        return cmds

    def _consume(self, replies: list[Any]) -> None:
        streams, head = replies[0], replies[1]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        # raw replies: RESP2 (lists) or RESP3 (a map of streams, [member, score] pairs)
        if isinstance(streams, dict):
            streams = list(streams.items())
        for _, entries in streams or []:
            for eid, flat in entries:
                self._last_id = _str(eid)
                self._read += 1
                f = dict(zip(flat[::2], flat[1::2], strict=True))
                typ = f.get(b"type")
                if typ == b"contact.reserved":
                    self._offers.append((_str(f[b"contact"]), _str(f[b"agent"])))
                elif typ == b"contact.completed":
                    handle_ms = int(f[b"handle_ms"])
                    q = self.queue_counts.setdefault(_str(f[b"queue"]), Counts())
                    p = self.pool_counts.setdefault(_str(f[b"pool"]), Counts())
                    for c in (q, p):
                        c.add(d.HANDLED)
                        c.add(d.HANDLE_MS, handle_ms)
        if head and isinstance(head[0], list):
            head = head[0]
        self._next_timer = int(float(head[1])) if head else None

    async def _step(self, *calls: Awaitable[Any]) -> list[Any]:
        """Run engine calls at the clock's time, behind the accepts still held, then
        accept every offer made, as a simulated agent does at once. The accepts are
        queued now (with this time) and sent with the next step's calls."""
        results = await self.scripts.drive([*self._accepts, *calls], self._commands, self._consume)
        for r in results[: len(self._accepts)]:
            if isinstance(r, BaseException):
                raise r
        self._accepts = []
        results = results[len(results) - len(calls) :] if calls else []
        now = self.clock.now_ms()
        for cid, agent in self._offers:
            self._accepts.append(asyncio.ensure_future(self.engine.accept(cid, agent)))
            o = self.outcomes[cid]
            o.answered_ms = now
            o.agent = agent
            self._push(now + o.handle_ms, COMPLETE, cid, agent)
        self._offers = []
        if self._accepts:
            await asyncio.sleep(0)  # each accept queues its script with this time
        return results

    async def _fire_timers(self, due: int) -> None:
        """Run the engine's timers due at `due`: the earliest timer's time, or the
        next boundary of a pool's hours (run_due_timers moves its gate)."""
        self.clock.set_ms(max(self.clock.now_ms(), due))
        await self._check(self.engine.run_due_timers())
        if self._next_timer is not None and self._next_timer <= self.clock.now_ms():
            raise RuntimeError(f"timer due at {self._next_timer} did not fire")

    # -- the simulation -------------------------------------------------------

    async def _start_agents(self) -> None:
        calls = []
        for a in self.roster.agents:
            spec = AgentSpec(a.id, a.pool, a.id, dict(a.skills), dict(a.capacity))
            shifts = None if a.shifts is None else merge_shifts(a.shifts)
            always = shifts is None
            status = AgentStatus.AVAILABLE if always else AgentStatus.OFFLINE
            calls.append(self.engine.upsert_agent(spec, status))
            for s, e in shifts or []:
                self._push(START_MS + s, SHIFT_START, a.id)
                self._push(START_MS + e, SHIFT_END, a.id)
        # one at a time: the order agents come in decides routing ties
        for call in calls:
            await self._check(call)

    async def _check(self, call: Awaitable[Any]) -> Any:
        (result,) = await self._step(call)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _arrive(self, c: TraceContact, now: int) -> None:
        new = NewContact(
            channel=c.channel,
            queue=c.queue,
            customer=Customer(id=str((c.customer or {}).get("id") or "") or None),
            language=c.language,
            skills=dict(c.skills),
            priority=c.priority,
            id=c.id,
        )
        # known before the call: the step accepts the offer it makes at once
        self.outcomes[c.id] = Outcome(c.queue, c.channel, now, round(c.handle_s * 1000))
        (result,) = await self._step(self.engine.create_contact(new))
        if isinstance(result, SwitchboardError):  # unknown queue, queue full or closed...
            del self.outcomes[c.id]
            kind = type(result).__name__
            self.rejected[kind] = self.rejected.get(kind, 0) + 1
            return
        if isinstance(result, BaseException):
            raise result
        if c.patience_s is not None:
            self._push(now + round(c.patience_s * 1000), PATIENCE, c.id)

    async def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        await load_all_scripts(self.redis)  # a NOSCRIPT retry would reorder a batch
        await self._check(self.engine.apply_config())
        await self._start_agents()
        arrivals = self.contacts
        i = 0
        heap = self._heap
        engine = self.engine
        horizon: int | None = None  # when only timers are left: how far to run them
        while True:
            # the next event: the heap's top or the next arrival, whichever is first
            t_arr = START_MS + round(arrivals[i].at * 1000) if i < len(arrivals) else None
            from_heap = bool(heap) and (
                t_arr is None or (heap[0][0], heap[0][1]) < (t_arr, ARRIVAL)
            )
            t_next = heap[0][0] if from_heap else t_arr
            if t_next is None and horizon is None:
                horizon = self.clock.now_ms() + TIMER_HORIZON_MS
            # The engine's timers are the third source of events: those due by the
            # next event run first, at their own time; the offers they make can add
            # completions before it, so look again after them.
            limit = t_next if t_next is not None else horizon
            due = self._next_timer
            # pool hours boundaries count while the trace goes on (they recur for ever)
            hours = engine.pool_hours.next_boundary() if t_next is not None else None
            if hours is not None and (due is None or hours < due):
                due = hours
            if due is not None and limit is not None and due <= limit:
                if self._accepts:  # held accepts may cancel that timer: send them first
                    await self._step()
                    continue
                await self._fire_timers(due)
                continue
            if t_next is None:
                break
            horizon = None
            if from_heap:
                t, kind, _, a, b = heapq.heappop(heap)
            else:
                t, kind, a, b = t_next, ARRIVAL, "", ""
            self.clock.set_ms(max(self.clock.now_ms(), t))
            if kind == ARRIVAL:
                await self._arrive(arrivals[i], t)
                i += 1
            elif kind == COMPLETE:
                q = self.tenant.queues.get(self.outcomes[a].queue)
                wrap = q is not None and self.tenant.wrap_up_ms(q, self.outcomes[a].channel) > 0
                await self._check(engine.complete(a, b, skip_wrap_up=not wrap))
            elif kind == PATIENCE:
                o = self.outcomes[a]
                if o.answered_ms is None and o.abandoned_ms is None:
                    o.abandoned_ms = t
                    await self._check(engine.abandon(a, "customer_left"))
            elif kind == SHIFT_START:
                await self._check(engine.set_agent_status(a, AgentStatus.AVAILABLE))
            elif kind == SHIFT_END:
                await self._check(engine.set_agent_status(a, AgentStatus.OFFLINE, "shift_end"))
        await self._step()  # the last held accepts
        self.end_ms = self.clock.now_ms()
        self.wall_s = time.perf_counter() - t0
        return self.report()

    # -- the report -----------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Figures from router/metrics/definitions.py (loadtests/report.py): offers,
        answers, waits and abandons from the simulation's own calls (the same values
        as the stream's contact.assigned / contact.abandoned wait_ms), handle times
        from the stream's contact.completed events."""
        rep = build_report(
            mode="virtual",
            tenant=self.tenant.id,
            seed=self.seed,
            outcomes=self.outcomes,
            queue_counts=self.queue_counts,
            pool_counts=self.pool_counts,
            agents=self.roster.agents,
            rejected=self.rejected,
            sl_threshold_s=self.sl_threshold_s,
            queue_thresholds=self.queue_thresholds,
            grace_ms=round(self.tenant.metrics.abandon_grace_s * 1000),
            start_ms=START_MS,
            end_ms=self.end_ms,
            wall_s=self.wall_s,
        )
        rep["sim_contacts_per_s"] = rep["throughput_per_s"]
        return rep


# -- running it ------------------------------------------------------------------

WALL_FIELDS = ("wall_s", "throughput_per_s", "sim_contacts_per_s")


@contextlib.asynccontextmanager
async def redis_for(url: str | None) -> AsyncIterator[Redis]:
    """A client on the given URL, or on a private embedded Valkey for the block."""
    async with valkey_url(url, "replay") as server_url:
        r = await connect(server_url)
        try:
            yield r
        finally:
            await r.aclose()


def load_tenant(
    config: str | None,
    contacts: Sequence[TraceContact],
    roster: Roster,
    *,
    tenant: str = "replay",
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
) -> TenantConfig:
    """--config's only (or first) tenant, or the configuration derived from the data."""
    text, source = tenant_text(
        config, contacts, roster, tenant=tenant, sl_threshold_s=sl_threshold_s
    )
    return next(iter(load_config_text(text, source=source).tenants.values()))


def tenant_text(
    config: str | None,
    contacts: Sequence[TraceContact],
    roster: Roster,
    *,
    tenant: str = "replay",
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
) -> tuple[str, str]:
    """The TOML text of --config, or of the configuration derived from the data, and
    its name for error messages."""
    if config is None:
        text = derive_toml(contacts, roster, tenant=tenant, sl_threshold_s=sl_threshold_s)
        return text, "<derived>"
    return Path(config).read_text(encoding="utf-8"), config


async def run_virtual(
    args: argparse.Namespace,
    tenant: TenantConfig,
    contacts: Sequence[TraceContact],
    roster: Roster,
    sl_threshold_s: float,
    queue_thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The virtual replay of the CLI: in segments on --jobs processes when the roster
    has quiet stretches to split at (loadtests/segments.py), else in one run."""
    jobs = args.jobs if args.jobs > 0 else os.cpu_count() or 1
    if jobs < 2 or not splittable(tenant) or not split_points(contacts, roster):
        async with redis_for(args.redis_url) as r:
            sim = await replay_virtual(
                r,
                tenant,
                contacts,
                roster,
                sl_threshold_s=sl_threshold_s,
                seed=args.seed,
                queue_thresholds=queue_thresholds,
            )
        rep = sim.report()
        rep["segments"] = 1
        return rep
    text, source = tenant_text(
        args.config, contacts, roster, tenant=args.tenant, sl_threshold_s=sl_threshold_s
    )
    results, wall_s, merged = await asyncio.to_thread(
        replay_segments,
        contacts,
        roster,
        redis_url=args.redis_url or "",  # "": each worker starts its own Valkey
        config_text=text,
        config_source=source,
        sl_threshold_s=sl_threshold_s,
        seed=args.seed,
        workers=jobs,
    )
    m = merge_results(results)
    rep = build_report(
        mode="virtual",
        tenant=tenant.id,
        seed=args.seed,
        outcomes=m["outcomes"],
        queue_counts=m["queue_counts"],
        pool_counts=m["pool_counts"],
        agents=roster.agents,
        rejected=m["rejected"],
        sl_threshold_s=sl_threshold_s,
        grace_ms=round(tenant.metrics.abandon_grace_s * 1000),
        start_ms=START_MS,
        end_ms=m["end_ms"] or START_MS,
        wall_s=wall_s,
        queue_thresholds=queue_thresholds,
    )
    rep["sim_contacts_per_s"] = rep["throughput_per_s"]
    rep["segments"] = len(results)
    rep["segments_rerun"] = merged
    rep["jobs"] = jobs
    return rep


async def replay_virtual(
    redis: Redis,
    tenant: TenantConfig,
    contacts: Sequence[TraceContact],
    roster: Roster,
    *,
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
    seed: int = 0,
    keep: bool = False,
    queue_thresholds: dict[str, float] | None = None,
) -> VirtualReplay:
    """Run a replay on a fresh copy of the tenant (its keys dropped before and after)."""
    await drop_tenant(redis, tenant.id)
    sim = VirtualReplay(
        redis,
        tenant,
        contacts,
        roster,
        sl_threshold_s=sl_threshold_s,
        seed=seed,
        queue_thresholds=queue_thresholds,
    )
    try:
        await sim.run()
    finally:
        await sim.scripts.close()
        if not keep:
            await drop_tenant(redis, tenant.id)
    return sim


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m loadtests.replay",
        description="Replay a trace with a roster against the real engine and write a "
        "JSON report (docs/replay.md).",
    )
    p.add_argument("--trace", required=True, help="JSONL trace of contacts")
    p.add_argument("--roster", required=True, help="JSON roster of agents")
    p.add_argument("--config", help="tenant config TOML (default: derived from the data)")
    p.add_argument(
        "--mode",
        choices=("virtual", "realtime"),
        default="virtual",
        help="virtual: simulated time, as fast as the CPU allows; realtime: drive a server "
        "over HTTP at the trace's times / --speed",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (the report records it)")
    p.add_argument(
        "--sl-threshold",
        type=float,
        default=None,
        metavar="S",
        help="service level threshold, seconds (default 20, or the config's queue "
        "threshold with --config)",
    )
    p.add_argument("--redis-url", help="use this Redis (default: a private embedded Valkey)")
    p.add_argument("--tenant", default="replay", help="tenant id of the derived config")
    p.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="virtual mode: worker processes for independent stretches of the trace "
        "(default: one per CPU; 1: one sequential run)",
    )
    p.add_argument("--report", required=True, help="where to write the JSON report")
    p.add_argument("--html", metavar="OUT", help="also write the report as an HTML page with plots")
    rt = p.add_argument_group("realtime mode")
    rt.add_argument(
        "--target", metavar="URL", help="drive this deployment (default: start our own server)"
    )
    rt.add_argument("--token", help="with --target: a token with the admin and ingest roles")
    rt.add_argument(
        "--speed", type=float, default=1.0, help="trace seconds per wall second (default 1)"
    )
    rt.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    return p


def _fail(msg: str) -> int:
    print(f"replay: error: {msg}", file=sys.stderr)
    return 2


def _output_problem(args: argparse.Namespace) -> str | None:
    """Why --report or --html could not be written, checked before a long run."""
    for opt, value in (("--report", args.report), ("--html", args.html)):
        if not value:
            continue
        path = Path(value)
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            return f"{opt}: {value} is a directory"
        if not parent.is_dir():
            return f"{opt}: {parent} does not exist"
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return f"{opt}: {value} is not writable"
    return None


def read_inputs(args: argparse.Namespace) -> tuple[list[TraceContact], Roster, float] | str:
    """The trace, the roster and the service-level threshold of the command line (both
    modes), or the one-line problem with them."""
    if args.sl_threshold is not None and not args.sl_threshold > 0:
        return f"--sl-threshold: must be > 0, got {args.sl_threshold:g}"
    try:
        contacts = list(read_trace(args.trace))
        roster = read_roster(args.roster)
    except FormatError as exc:
        return str(exc)
    except OSError as exc:
        return f"{exc.filename}: {exc.strerror}"
    sl = DEFAULT_SL_THRESHOLD_S if args.sl_threshold is None else args.sl_threshold
    return contacts, roster, sl


async def _main(args: argparse.Namespace) -> int:
    problem = _output_problem(args)
    if problem:
        return _fail(problem)
    if args.mode == "realtime":
        from .realtime import main_realtime

        return await main_realtime(args)
    if args.target is not None or args.token is not None:
        return _fail("--target and --token are for --mode realtime")
    inputs = read_inputs(args)
    if isinstance(inputs, str):
        return _fail(inputs)
    contacts, roster, sl = inputs
    try:
        tenant = load_tenant(args.config, contacts, roster, tenant=args.tenant, sl_threshold_s=sl)
    except OSError as exc:
        return _fail(f"{exc.filename}: {exc.strerror}")
    except SwitchboardError as exc:  # ConfigError: "<file>: <key path>: <problem>"
        return _fail(str(exc).splitlines()[0])
    queue_thresholds = None
    if args.config and args.sl_threshold is None:
        # each queue's own threshold (the overall figure's threshold_s is null when
        # they differ); --sl-threshold puts every queue on one
        queue_thresholds = {q.id: d.service_clock(q)[1] for q in tenant.queues.values()}
        thresholds = set(queue_thresholds.values())
        sl = thresholds.pop() if len(thresholds) == 1 else DEFAULT_SL_THRESHOLD_S
    try:
        rep = await run_virtual(args, tenant, contacts, roster, sl, queue_thresholds)
    except SwitchboardError as exc:  # a roster pool the config lacks, a bad capacity...
        return _fail(str(exc).splitlines()[0])
    except (RedisError, OSError) as exc:  # --redis-url unreachable, the server went away
        return _fail(f"redis: {exc}")
    await write_reports(rep, args)
    print(
        f"replay: {rep['offered']} contacts in {rep['wall_s']} s wall "
        f"({rep['sim_contacts_per_s']} contacts/s); report: {args.report}",
        file=sys.stderr,
    )
    return 0


async def write_reports(rep: dict[str, Any], args: argparse.Namespace) -> None:
    """The JSON report (--report) and, with --html, its HTML page (both modes)."""
    text = json.dumps(rep, indent=1) + "\n"
    await asyncio.to_thread(Path(args.report).write_text, text, encoding="utf-8")
    if args.html:
        page = render_html(rep)
        await asyncio.to_thread(Path(args.html).write_text, page, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
