"""The virtual replay against queueing theory: the real engine on a real Valkey, in
virtual time, must reproduce M/M/c (Erlang C) and M/M/c+M (Erlang A).

Tolerance: the waits of successive contacts are correlated, so each measured figure
gets its standard error by batch means (20 batches, after a 5 % warm-up), and must lie
within 3.5 standard errors of the formula, plus 0.01 (0.5 s for the ASA) for the bias
of a finite run started empty. A routing bug that queues a contact while an agent is
idle, or serves out of order, moves the figures by far more (docs/replay.md)."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from loadtests.replay import VirtualReplay, load_tenant, replay_virtual

from .erlang import (
    agents,
    batch_means,
    erlang_a,
    erlang_c,
    erlang_c_asa,
    erlang_c_service_level,
    poisson_trace,
)

C = 3
MEAN_HANDLE_S = 100.0
MU = 1 / MEAN_HANDLE_S
# Erlang C: 1.5 Erlangs on 3 agents (50 % occupancy), so successive waits decorrelate
# within a few contacts and batch means give a tight error; Erlang A runs busier, since
# abandonment shortens the queue's memory.
LAM = 1.5 * MU
LAM_A = 2.4 * MU
T = 20.0
N = 2400
N_C = 5000  # Erlang C has no abandonment to shorten the queue's memory: more contacts


def _waits(sim: VirtualReplay) -> list[tuple[float, bool]]:
    """(wait s, abandoned) per decided contact in arrival order, after the warm-up."""
    out: list[tuple[float, bool]] = []
    for o in sim.outcomes.values():
        w = o.wait_ms
        assert w is not None, "every contact is answered or abandoned by the end"
        out.append((w / 1000, o.abandoned_ms is not None))
    return out[len(out) // 20 :]


def _near(measured: tuple[float, float], expected: float, slack: float, what: str) -> None:
    mean, se = measured
    tol = 3.5 * se + slack
    assert abs(mean - expected) <= tol, f"{what}: {mean:.4f} vs {expected:.4f} (tol {tol:.4f})"


@pytest.mark.slow
async def test_erlang_c(redis: Redis) -> None:
    trace = poisson_trace(N_C, LAM, MEAN_HANDLE_S, seed=11)
    roster = agents(C)
    tenant = load_tenant(None, trace, roster, tenant=f"erc-{uuid.uuid4().hex[:8]}")
    sim = await replay_virtual(redis, tenant, trace, roster, sl_threshold_s=T)
    rep = sim.report()
    assert rep["offered"] == N_C and rep["answered"] == N_C and rep["abandoned"] == 0
    waits = _waits(sim)
    a = LAM / MU
    _near(batch_means([float(w > 0) for w, _ in waits]), erlang_c(C, a), 0.01, "P(wait)")
    _near(
        batch_means([float(w <= T) for w, _ in waits]),
        erlang_c_service_level(C, LAM, MU, T),
        0.01,
        "service level",
    )
    _near(batch_means([w for w, _ in waits]), erlang_c_asa(C, LAM, MU), 0.5, "ASA s")
    # the report's own figures agree with the same formula (they include the warm-up)
    assert abs(rep["p_wait"] - erlang_c(C, a)) < 0.12
    assert abs(rep["service_level"]["value"] - erlang_c_service_level(C, LAM, MU, T)) < 0.12


@pytest.mark.slow
async def test_erlang_a(redis: Redis) -> None:
    mean_patience = 60.0
    trace = poisson_trace(N, LAM_A, MEAN_HANDLE_S, seed=12, mean_patience_s=mean_patience)
    roster = agents(C)
    tenant = load_tenant(None, trace, roster, tenant=f"era-{uuid.uuid4().hex[:8]}")
    sim = await replay_virtual(redis, tenant, trace, roster, sl_threshold_s=T)
    rep = sim.report()
    assert rep["abandoned"] > 0 and rep["still_waiting"] == 0
    p_wait, p_abandon = erlang_a(C, LAM_A, MU, 1 / mean_patience)
    waits = _waits(sim)
    _near(batch_means([float(w > 0) for w, _ in waits]), p_wait, 0.01, "P(wait)")
    _near(batch_means([float(ab) for _, ab in waits]), p_abandon, 0.01, "P(abandon)")
    assert abs(rep["abandon_rate"] - p_abandon) < 0.08


def test_formulas_known_values() -> None:
    """The yardsticks themselves: textbook values, and Erlang A tends to Erlang C."""
    assert abs(erlang_c(2, 1.0) - 1 / 3) < 1e-12  # M/M/2 at a = 1: P(wait) = 1/3
    assert abs(erlang_c(1, 0.5) - 0.5) < 1e-12  # M/M/1: P(wait) = rho
    p_wait, p_ab = erlang_a(3, 0.021, 0.01, 1e-9)
    assert abs(p_wait - erlang_c(3, 2.1)) < 1e-4 and p_ab < 1e-6
    assert abs(erlang_c_asa(1, 0.5, 1.0) - 1.0) < 1e-12  # M/M/1: Wq = rho / (mu - lam)
