"""The replay report: what both replay modes observed, turned into figures.

Both modes (virtual and realtime) record one `Outcome` per offered contact and the
handle times of completed ones; `build_report` turns them into the JSON report of
docs/replay.md. The figures come from router/metrics/definitions.py, so they mean
what docs/metrics.md defines; the `plots` section holds the series that the HTML
report draws (loadtests/html_report.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.metrics import definitions as d

from .trace import RosterAgent

# Upper edges (s) of the wait histogram's buckets; one more bucket holds longer waits.
WAIT_EDGES_S = (0, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
# At most this many points in the "waiting contacts over time" series.
MAX_POINTS = 1500
# Its step: the smallest of these (s) that keeps within MAX_POINTS.
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 86_400)


@dataclass
class Outcome:
    """What the replay saw of one contact (times in ms on the run's clock)."""

    queue: str
    channel: str
    arrived_ms: int
    handle_ms: int
    answered_ms: int | None = None
    abandoned_ms: int | None = None
    agent: str = ""

    @property
    def wait_ms(self) -> int | None:
        end = self.answered_ms if self.answered_ms is not None else self.abandoned_ms
        return None if end is None else end - self.arrived_ms


@dataclass
class Counts:
    """Counters named as in router/metrics/definitions.py, per queue or pool."""

    c: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int = 1) -> None:
        self.c[name] = self.c.get(name, 0) + n

    def copy(self) -> Counts:
        return Counts(dict(self.c))


def merge_shifts(shifts: Iterable[tuple[float, float]]) -> list[tuple[int, int]]:
    """Shifts in seconds -> sorted, non-overlapping [start_ms, end_ms) spans."""
    out: list[tuple[int, int]] = []
    for s, e in sorted((round(a * 1000), round(b * 1000)) for a, b in shifts):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def available_ms(agent: RosterAgent, end_ms: int) -> int:
    """Time the agent was on shift in [0, end_ms) of trace time."""
    if agent.shifts is None:
        return end_ms
    return sum(max(0, min(e, end_ms) - s) for s, e in merge_shifts(agent.shifts))


def _sum(counts: Iterable[Counts]) -> Counts:
    total = Counts()
    for c in counts:
        for k, v in c.c.items():
            total.add(k, v)
    return total


def _interval_s(span_s: float) -> int:
    """15-minute intervals for up to two days, hours up to two weeks, then days."""
    if span_s <= 2 * 86_400:
        return 900
    return 3600 if span_s <= 14 * 86_400 else 86_400


def plots(
    outcomes: Iterable[Outcome],
    start_ms: int,
    end_ms: int,
    sl_threshold_s: float | None,
    grace_ms: int,
    threshold_ms: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """The series of the HTML report, in seconds from the start of the run.

    - `wait_histogram`: answered and abandoned contacts per wait bucket
      (`edges_s` are the buckets' upper edges; the last bucket is open);
    - `waiting`: the most contacts waiting at once in each step of `step_s`;
    - `intervals`: per interval of arrival, offered, answered, abandoned and the
      service level (definitions.service_level) of the contacts that arrived in it.
    """
    outs = list(outcomes)
    span_ms = max(1, end_ms - start_ms)
    # wait histogram
    answered = [0] * (len(WAIT_EDGES_S) + 1)
    abandoned = [0] * (len(WAIT_EDGES_S) + 1)
    for o in outs:
        w = o.wait_ms
        if w is None:
            continue
        i = next((k for k, e in enumerate(WAIT_EDGES_S) if w <= e * 1000), len(WAIT_EDGES_S))
        (answered if o.answered_ms is not None else abandoned)[i] += 1
    # waiting contacts over time: a sweep over arrivals (+1) and ends (-1)
    step_ms = 1000 * next(
        (s for s in NICE_STEPS_S if s * 1000 * MAX_POINTS >= span_ms),
        math.ceil(span_ms / MAX_POINTS / 86_400_000) * 86_400,
    )
    n_steps = max(1, math.ceil(span_ms / step_ms))
    changes: list[tuple[int, int]] = []
    for o in outs:
        end = o.answered_ms if o.answered_ms is not None else o.abandoned_ms
        if end is None:
            end = end_ms
        if end > o.arrived_ms:
            changes += [(o.arrived_ms - start_ms, 1), (end - start_ms, -1)]
    changes.sort()  # at one instant, ends (-1) before arrivals (+1)
    peak = [0] * n_steps
    n = 0
    for t, delta in changes:
        n += delta
        k = min(n_steps - 1, max(0, t // step_ms))
        peak[k] = max(peak[k], n)
    # carry the level into steps where nothing changed
    level = 0
    j = 0
    for k in range(n_steps):
        while j < len(changes) and changes[j][0] <= k * step_ms:
            level += changes[j][1]
            j += 1
        peak[k] = max(peak[k], level)
    # intervals by arrival
    iv_s = _interval_s(span_ms / 1000)
    iv_ms = iv_s * 1000
    n_iv = max(1, math.ceil(span_ms / iv_ms))
    per = [Counts() for _ in range(n_iv)]
    limit = threshold_ms or (lambda _q: round((sl_threshold_s or 0) * 1000))
    for o in outs:
        c = per[min(n_iv - 1, max(0, (o.arrived_ms - start_ms) // iv_ms))]
        c.add(d.OFFERED)
        w = o.wait_ms
        if o.answered_ms is not None and w is not None:
            c.add(d.ANSWERED)
            c.add(d.ANSWERED_WITHIN, int(w <= limit(o.queue)))
        elif w is not None:
            c.add(d.ABANDONED)
            c.add(d.ABANDONED_IN_GRACE, int(w <= grace_ms))
    return {
        "wait_histogram": {
            "edges_s": list(WAIT_EDGES_S),
            "answered": answered,
            "abandoned": abandoned,
        },
        "waiting": {"step_s": step_ms // 1000, "max": peak},
        "intervals": {
            "interval_s": iv_s,
            "offered": [c.c.get(d.OFFERED, 0) for c in per],
            "answered": [c.c.get(d.ANSWERED, 0) for c in per],
            "abandoned": [c.c.get(d.ABANDONED, 0) for c in per],
            "service_level": [
                d.service_level(
                    c.c.get(d.ANSWERED_WITHIN, 0),
                    c.c.get(d.OFFERED, 0),
                    c.c.get(d.ABANDONED_IN_GRACE, 0),
                    sl_threshold_s,
                )["value"]
                for c in per
            ],
        },
    }


def build_report(
    *,
    mode: str,
    tenant: str,
    seed: int,
    outcomes: Mapping[str, Outcome],
    queue_counts: Mapping[str, Counts],
    pool_counts: Mapping[str, Counts],
    agents: Sequence[RosterAgent],
    rejected: Mapping[str, int],
    sl_threshold_s: float,
    grace_ms: int,
    start_ms: int,
    end_ms: int,
    wall_s: float,
    throughput_per_s: float | None = None,
    queue_thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The report of docs/replay.md.

    `queue_counts` / `pool_counts` hold what the outcomes cannot tell: OFFERED per
    queue is counted from the outcomes, HANDLED and HANDLE_MS come from the engine's
    contact.completed events. Neither mapping is changed. `queue_thresholds` gives a
    queue its own service-level threshold (else `sl_threshold_s`); when they differ,
    the overall threshold_s is null."""
    per_queue = dict(queue_thresholds or {})

    def threshold_s(queue: str) -> float:
        return per_queue.get(queue, sl_threshold_s)

    def threshold_ms(queue: str) -> int:
        return round(threshold_s(queue) * 1000)

    used = {threshold_s(o.queue) for o in outcomes.values()} or {sl_threshold_s}
    overall_threshold = used.pop() if len(used) == 1 else None
    pool_of = {a.id: a.pool for a in agents}
    queues = {k: v.copy() for k, v in queue_counts.items()}
    pools = {k: v.copy() for k, v in pool_counts.items()}
    waited = decided = still = 0
    still_per: dict[str, int] = {}
    for o in outcomes.values():
        q = queues.setdefault(o.queue, Counts())
        q.add(d.OFFERED)
        w = o.wait_ms
        if w is None:
            still += 1
            still_per[o.queue] = still_per.get(o.queue, 0) + 1
            continue
        decided += 1
        waited += w > 0
        if o.answered_ms is not None:
            p = pools.setdefault(pool_of.get(o.agent, ""), Counts())
            for c in (q, p):
                c.add(d.ANSWERED)
                c.add(d.WAIT_MS, w)
                c.add(d.ANSWERED_WITHIN, int(w <= threshold_ms(o.queue)))
        else:
            q.add(d.ABANDONED)
            q.add(d.ABANDONED_IN_GRACE, int(w <= grace_ms))
    for a in agents:
        pools.setdefault(a.pool, Counts()).add(d.AVAILABLE_MS, available_ms(a, end_ms - start_ms))
    total = _sum(queues.values())
    pools_total = _sum(pools.values())
    overall = d.queue_figures(total.c, overall_threshold)  # type: ignore[arg-type]  # None: mixed
    offered = int(overall["offered"])  # type: ignore[call-overload]
    wall = max(wall_s, 1e-9)
    return {
        "mode": mode,
        "tenant": tenant,
        "seed": seed,
        "offered": offered,
        "answered": overall["answered"],
        "abandoned": overall["abandoned"],
        "still_waiting": still,
        "rejected": dict(sorted(rejected.items())),
        "service_level": overall["service_level"],
        "p_wait": None if decided == 0 else round(waited / decided, 4),
        "asa_s": overall["asa_s"],
        "aht_s": overall["aht_s"],
        "abandon_rate": overall["abandon_rate"],
        "occupancy": d.occupancy(
            pools_total.c.get(d.HANDLE_MS, 0), pools_total.c.get(d.AVAILABLE_MS, 0)
        ),
        "queues": {
            q: {**d.queue_figures(c.c, threshold_s(q)), "still_waiting": still_per.get(q, 0)}
            for q, c in sorted(queues.items())
        },
        "pools": {p: d.pool_figures(c.c) for p, c in sorted(pools.items()) if p},
        "simulated_s": round((end_ms - start_ms) / 1000, 3),
        "wall_s": round(wall_s, 3),
        "throughput_per_s": round(offered / wall, 1)
        if throughput_per_s is None
        else round(throughput_per_s, 1),
        "plots": plots(
            outcomes.values(), start_ms, end_ms, overall_threshold, grace_ms, threshold_ms
        ),
    }
