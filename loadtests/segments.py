"""Parallel virtual replay: independent stretches of a trace on several cores.

A month of contact-center traffic is a string of days that do not touch: at
night nobody is on shift and no contact is in the system. The state of the
engine at such a moment is the same as a fresh tenant's with every agent
offline (an agent's place in the longest-idle order is reset when it becomes
available), so the stretch after it replays the same on its own tenant, in
another process, as in one long run.

- `split_points` proposes boundaries: the end of every stretch of at least
  `MIN_GAP_S` in which no agent is on shift. A roster with an agent that has no
  shifts (always on) gives none.
- Each segment runs in a worker process on its own tenant (`<tenant>-s<k>`), with
  the contacts that arrive in it and the shifts that fall in it, on the given
  Redis or on the worker's own embedded Valkey.
- Every boundary is then checked: the segment before it must have finished
  everything (no contact still waiting, its last event no later than the
  boundary). When one has not, the two segments are merged and run again, so
  the result is always that of the sequential replay.

One caveat, documented in docs/replay.md: the engine remembers each customer's
last agent (routing.preferred_agent_s, default 20 s) across days; segments do not
share that memory, so with that setting on and customers calling on several
days, which agent takes a contact can differ from a sequential run.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import itertools
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.config import load_config_text
from router.config.model import TenantConfig
from router.server.embedded import EmbeddedValkey
from router.store.connection import connect

from .bench import drop_tenant
from .report import Counts, Outcome, merge_shifts
from .trace import Roster, TraceContact

MIN_GAP_S = 1800.0  # a shorter all-off stretch (a break) is not worth a segment


def splittable(tenant: TenantConfig) -> bool:
    """Whether segments can run apart and still equal the sequential replay: not
    with vendor contracts, whose hour and day counts, commitments and runs of
    timeouts carry across a quiet stretch (a vendor's day need not end there)."""
    return not tenant.vendors


def split_points(contacts: Sequence[TraceContact], roster: Roster) -> list[float]:
    """Candidate boundaries (trace seconds), ascending: the ends of the stretches of
    at least MIN_GAP_S when nobody is on shift, strictly inside the trace."""
    if not contacts or any(a.shifts is None for a in roster.agents):
        return []
    spans = merge_shifts(s for a in roster.agents for s in a.shifts or ())
    first, last = contacts[0].at, contacts[-1].at
    points = []
    for (_, e0), (s1, _) in itertools.pairwise(spans):
        if (s1 - e0) / 1000 >= MIN_GAP_S and first < s1 / 1000 <= last:
            points.append(s1 / 1000)
    return points


def segment_roster(roster: Roster, lo_s: float, hi_s: float | None) -> Roster:
    """The roster's shifts clipped to [lo_s, hi_s); every agent is kept (offline
    when it has no shift in the segment) so pools and agents are the same."""
    agents = []
    for a in roster.agents:
        shifts = tuple(
            (max(s, lo_s), e if hi_s is None else min(e, hi_s))
            for s, e in a.shifts or ()
            if e > lo_s and (hi_s is None or s < hi_s)
        )
        agents.append(dataclasses.replace(a, shifts=shifts))
    return Roster(tuple(agents))


@dataclass
class Job:
    """One segment, as sent to a worker process (plain, picklable data)."""

    index: int
    lo_s: float
    hi_s: float | None  # the next boundary; None for the last segment
    contacts: list[TraceContact]
    roster: Roster
    redis_url: str  # "": the worker's own embedded Valkey
    config_text: str  # the tenant's TOML (--config's, or derived from the whole trace)
    config_source: str
    sl_threshold_s: float
    seed: int


@dataclass
class Result:
    """What a segment's replay saw, for the merged report."""

    job: Job
    outcomes: dict[str, Outcome]
    queue_counts: dict[str, Counts]
    pool_counts: dict[str, Counts]
    rejected: dict[str, int]
    end_ms: int
    wall_s: float

    @property
    def still_waiting(self) -> bool:
        return any(o.wait_ms is None for o in self.outcomes.values())

    def finished_by(self, start_ms: int) -> bool:
        """Did everything of this segment end before its next boundary? (Strictly:
        at the boundary's very ms the next segment's shift starts run before
        patience and arrivals, which this segment did not see.)"""
        hi = self.job.hi_s
        if hi is None:
            return True
        return not self.still_waiting and self.end_ms < start_ms + round(hi * 1000)


async def _run_job(job: Job) -> Result:
    from .replay import VirtualReplay  # here: replay imports this module

    cfg = load_config_text(job.config_text, source=job.config_source)
    tenant = next(iter(cfg.tenants.values()))
    tenant = dataclasses.replace(tenant, id=f"{tenant.id}-s{job.index}")
    r = await connect(job.redis_url or _own_server_url())
    try:
        await drop_tenant(r, tenant.id)
        sim = VirtualReplay(
            r, tenant, job.contacts, job.roster, sl_threshold_s=job.sl_threshold_s, seed=job.seed
        )
        try:
            await sim.run()
        finally:
            await sim.scripts.close()
            await drop_tenant(r, tenant.id)
    finally:
        await r.aclose()
    return Result(
        job, sim.outcomes, sim.queue_counts, sim.pool_counts, sim.rejected, sim.end_ms, sim.wall_s
    )


_OWN_SERVER: EmbeddedValkey | None = None


def _own_server_url() -> str:
    """This worker's private Valkey, started on first use and stopped at exit: with
    one server per worker, a replay scales with cores instead of stopping at what
    one single-threaded server can do."""
    global _OWN_SERVER
    if _OWN_SERVER is None:
        tmp = tempfile.mkdtemp(prefix="sb-replay-")
        atexit.register(shutil.rmtree, tmp, True)  # runs after the server's own stop
        server = EmbeddedValkey(Path(tmp))
        server.start()
        _OWN_SERVER = server
    return _OWN_SERVER.url


def _work(job: Job) -> Result:
    return asyncio.run(_run_job(job))


def _jobs(
    contacts: Sequence[TraceContact],
    roster: Roster,
    bounds: Sequence[float],
    common: dict[str, Any],
    first_index: int = 0,
) -> list[Job]:
    """Jobs for the segments between consecutive bounds (each [lo, hi))."""
    jobs = []
    edges = [None, *bounds, None]
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        part = [c for c in contacts if (lo is None or c.at >= lo) and (hi is None or c.at < hi)]
        if not part:
            continue
        jobs.append(
            Job(
                first_index + len(jobs),
                0.0 if lo is None else lo,
                hi,
                part,
                segment_roster(roster, 0.0 if lo is None else lo, hi),
                **common,
            )
        )
    return jobs


def replay_segments(
    contacts: Sequence[TraceContact],
    roster: Roster,
    *,
    redis_url: str,
    config_text: str,
    config_source: str,
    sl_threshold_s: float,
    seed: int,
    workers: int,
) -> tuple[list[Result], float, int]:
    """Replay the trace in segments on `workers` processes. Returns the results (in
    trace order), the wall time and how many segments had to be merged and rerun."""
    t0 = time.perf_counter()
    common: dict[str, Any] = {
        "redis_url": redis_url,
        "config_text": config_text,
        "config_source": config_source,
        "sl_threshold_s": sl_threshold_s,
        "seed": seed,
    }
    bounds = split_points(contacts, roster)
    jobs = _jobs(contacts, roster, bounds, common)
    ctx = multiprocessing.get_context("spawn")  # no fork of a running event loop
    from .replay import START_MS

    merged = 0
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        results = list(pool.map(_work, jobs))
        k = 0
        next_index = len(jobs)
        while k < len(results) - 1:
            if results[k].finished_by(START_MS):
                k += 1
                continue
            # The segment ran past its boundary: merge it with the next and run
            # again. A contact still waiting at the end (nobody can take it) would
            # fail every later boundary too: merge all the rest at once.
            upto = len(results) if results[k].still_waiting else k + 2
            first, last = results[k].job, results[upto - 1].job
            part = [c for r in results[k:upto] for c in r.job.contacts]
            roster_m = segment_roster(roster, first.lo_s, last.hi_s)
            job = Job(next_index, first.lo_s, last.hi_s, part, roster_m, **common)
            next_index += 1
            merged += upto - k - 1
            results[k:upto] = [pool.submit(_work, job).result()]
    return results, time.perf_counter() - t0, merged


def merge_results(results: Sequence[Result]) -> dict[str, Any]:
    """The segments' observations as one replay's (for report.build_report)."""
    outcomes: dict[str, Outcome] = {}
    queue_counts: dict[str, Counts] = {}
    pool_counts: dict[str, Counts] = {}
    rejected: dict[str, int] = {}
    for r in results:
        outcomes.update(r.outcomes)
        for src, dst in ((r.queue_counts, queue_counts), (r.pool_counts, pool_counts)):
            for name, c in src.items():
                into = dst.setdefault(name, Counts())
                for k, v in c.c.items():
                    into.add(k, v)
        for k, v in r.rejected.items():
            rejected[k] = rejected.get(k, 0) + v
    return {
        "outcomes": outcomes,
        "queue_counts": queue_counts,
        "pool_counts": pool_counts,
        "rejected": rejected,
        "end_ms": max((r.end_ms for r in results), default=0),
    }
