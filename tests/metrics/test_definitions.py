"""The metric formulas against hand-computed cases, and their edge cases."""

from __future__ import annotations

from router.metrics import definitions as d


def test_service_level_counts_answers_within_over_offered_minus_quick_abandons() -> None:
    # 10 offered, 7 answered within 20 s, 2 abandoned within the grace
    assert d.service_level(7, 10, 2, 20) == {"threshold_s": 20, "value": 0.875}
    # grace 0: nothing leaves the denominator
    assert d.service_level(7, 10, 0, 20)["value"] == 0.7


def test_ratios_without_a_denominator_are_null_not_zero() -> None:
    assert d.service_level(0, 0, 0, 20) == {"threshold_s": 20, "value": None}
    assert d.service_level(0, 3, 3, 20)["value"] is None  # every contact left in the grace
    assert d.asa_s(0, 0) is None
    assert d.aht_s(0, 0) is None
    assert d.abandon_rate(0, 0) is None
    assert d.occupancy(5000, 0) is None


def test_ratios_are_clamped_to_0_1() -> None:
    # answered in the window, offered before it: the raw ratio would be 2
    assert d.service_level(4, 2, 0, 20)["value"] == 1.0
    assert d.abandon_rate(3, 1) == 1.0
    assert d.occupancy(120_000, 60_000) == 1.0  # two chats at once


def test_averages_are_in_seconds() -> None:
    assert d.asa_s(40_000, 2) == 20.0
    assert d.aht_s(100_000, 2) == 50.0
    assert d.occupancy(30_000, 120_000) == 0.25


def test_queue_and_pool_figures_from_counters() -> None:
    q = {
        "off": 5,
        "ans": 2,
        "ans_t": 1,
        "wait": 40_000,
        "abn": 3,
        "abn_g": 1,
        "hnd": 2,
        "hms": 100_000,
        "brch": 1,
        "warn": 2,
    }
    f = d.queue_figures(q, 20)
    assert f == {
        "offered": 5,
        "answered": 2,
        "abandoned": 3,
        "service_level": {"threshold_s": 20, "value": 0.25},
        "asa_s": 20.0,
        "aht_s": 50.0,
        "abandon_rate": 0.6,
        "handled": 2,
        "sla_breaches": 1,
        "sla_warnings": 2,
    }
    p = d.pool_figures(
        {"ans": 4, "ans_t": 3, "wait": 8000, "hnd": 2, "hms": 60_000, "avail": 120_000}
    )
    assert p["service_level"] == {"threshold_s": None, "value": 0.75}
    assert p["occupancy"] == 0.5 and p["asa_s"] == 2.0 and p["aht_s"] == 30.0
    assert d.pool_figures({})["service_level"] == {"threshold_s": None, "value": None}


def test_split_counters_by_queue_and_pool() -> None:
    q, p = d.split_counters({"q:sales:off": 2, "q:sales:ans": 1, "p:near:avail": 9, "x": 1})
    assert q == {"sales": {"off": 2, "ans": 1}}
    assert p == {"near": {"avail": 9}}
