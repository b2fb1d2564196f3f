"""Queueing-theory yardsticks for the virtual replay, in the tests' own code.

Erlang C (M/M/c) in closed form, and Erlang A (M/M/c+M, exponential patience)
exactly by its birth-death chain, plus the synthetic traces they describe.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from loadtests.trace import Roster, RosterAgent, TraceContact


def erlang_c(c: int, a: float) -> float:
    """P(wait) for c agents and offered load a = lambda / mu Erlangs (a < c)."""
    term = 1.0
    total = 1.0  # sum_{k<c} a^k / k!
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c * (c / (c - a))  # a^c / c! * c / (c - a)
    return last / (total + last)


def erlang_c_service_level(c: int, lam: float, mu: float, t: float) -> float:
    """P(wait <= t) in M/M/c, FIFO."""
    return 1.0 - erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t)


def erlang_c_asa(c: int, lam: float, mu: float) -> float:
    """Mean wait (all contacts, answered at once included) in M/M/c."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def erlang_a(c: int, lam: float, mu: float, theta: float, n_max: int = 2000) -> tuple[float, float]:
    """(P(wait), P(abandon)) of M/M/c+M from the stationary birth-death chain.

    Births lam; deaths min(n, c) mu + max(n - c, 0) theta. By PASTA an arrival
    waits when it finds n >= c; abandonments happen at rate theta * E[queue], so
    P(abandon) = theta * E[(N - c)+] / lam."""
    logp = [0.0]
    for n in range(1, n_max + 1):
        death = min(n, c) * mu + max(n - c, 0) * theta
        logp.append(logp[-1] + math.log(lam) - math.log(death))
    top = max(logp)
    p = [math.exp(x - top) for x in logp]
    z = sum(p)
    p = [x / z for x in p]
    p_wait = sum(p[c:])
    queue = sum((n - c) * p[n] for n in range(c + 1, n_max + 1))
    return p_wait, theta * queue / lam


def poisson_trace(
    n: int,
    lam: float,
    mean_handle_s: float,
    *,
    seed: int,
    mean_patience_s: float | None = None,
    queue: str = "support",
    channel: str = "voice",
) -> list[TraceContact]:
    """n contacts: Poisson arrivals at rate lam per second, exponential handle times
    and (when given) exponential patience."""
    rng = random.Random(seed)
    t = 0.0
    out: list[TraceContact] = []
    for i in range(n):
        t += rng.expovariate(lam)
        handle = rng.expovariate(1.0 / mean_handle_s)
        patience = None if mean_patience_s is None else rng.expovariate(1.0 / mean_patience_s)
        out.append(TraceContact(round(t, 3), f"c{i}", channel, queue, round(handle, 3), patience))
    return out


def agents(c: int, pool: str = "inhouse", channel: str = "voice") -> Roster:
    return Roster(tuple(RosterAgent(f"a{i}", pool, {}, {channel: 1}) for i in range(c)))


def batch_means(values: Sequence[float], batches: int = 20) -> tuple[float, float]:
    """(mean, standard error) of a correlated series by the method of batch means."""
    size = len(values) // batches
    means = [sum(values[b * size : (b + 1) * size]) / size for b in range(batches)]
    m = sum(means) / batches
    var = sum((x - m) ** 2 for x in means) / (batches - 1)
    return m, math.sqrt(var / batches)
