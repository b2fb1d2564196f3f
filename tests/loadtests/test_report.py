"""The replay report's figures and plot series, on hand-made outcomes."""

from __future__ import annotations

from loadtests.html_report import render_html
from loadtests.report import Outcome, build_report, plots
from loadtests.trace import RosterAgent

S = 1000  # ms


def test_waiting_series_counts_a_contact_only_while_it_waits() -> None:
    o = Outcome("q", "voice", arrived_ms=0, handle_ms=5 * S, answered_ms=10 * S, agent="a1")
    series = plots([o], start_ms=0, end_ms=20 * S, sl_threshold_s=20.0, grace_ms=0)["waiting"]
    assert series["step_s"] == 1
    assert series["max"] == [1] * 10 + [0] * 10  # waiting over [0, 10 s), not in [10, 11)


def test_each_queue_is_measured_at_its_own_threshold() -> None:
    outs = {
        f"{q}{k}": Outcome(q, "voice", arrived_ms=k * S, handle_ms=S, answered_ms=(k + 20) * S)
        for q in ("fast", "slow")
        for k in range(2)
    }
    rep = build_report(
        mode="virtual",
        tenant="t",
        seed=0,
        outcomes=outs,
        queue_counts={},
        pool_counts={},
        agents=[RosterAgent("a1", "p", {}, {"voice": 1})],
        rejected={},
        sl_threshold_s=20.0,
        grace_ms=0,
        start_ms=0,
        end_ms=60 * S,
        wall_s=1.0,
        queue_thresholds={"fast": 10.0, "slow": 30.0},
    )
    # every contact waited 20 s: late for "fast" (10 s), on time for "slow" (30 s)
    assert rep["queues"]["fast"]["service_level"] == {"threshold_s": 10.0, "value": 0.0}
    assert rep["queues"]["slow"]["service_level"] == {"threshold_s": 30.0, "value": 1.0}
    assert rep["service_level"] == {"threshold_s": None, "value": 0.5}  # mixed thresholds
    assert rep["plots"]["intervals"]["service_level"][0] == 0.5
    page = render_html(rep)
    assert "None" not in page and "50.0%" in page
