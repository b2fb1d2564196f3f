"""The metric formulas: one definition of each for the whole product.

Live metrics (router/metrics/query.py) compute their figures here, from
counters, and replay reports and vendor scorecards will too, so the same words
always mean the same numbers. docs/metrics.md states each definition and its edge cases.

Every ratio is None (JSON null) when its denominator is zero: "no data" is not
0 % or 100 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from ..config.model import QueueConfig, SlaKind
from ..sla import main_kind

# Counter names, as the consumer script writes them (`q:<queue>:<name>`, `p:<pool>:<name>`).
OFFERED = "off"  # contacts that entered the queue, once per contact per queue
ANSWERED = "ans"  # first assignment of a contact in the queue (pools: every assignment)
# ... with wait_ms <= the queue's T; on a first-response queue, instead: first
# responses (contact.responded, or the completion without one) within T
ANSWERED_WITHIN = "ans_t"
WAIT_MS = "wait"  # sum of wait_ms of those answers (ASA)
ABANDONED = "abn"  # contact.abandoned
ABANDONED_IN_GRACE = "abn_g"  # ... with wait_ms <= the tenant's abandon grace
HANDLED = "hnd"  # contact.completed of an answered contact
HANDLE_MS = "hms"  # sum of their handle_ms (talk + wrap-up)
BREACHES = "brch"  # sla.breached
WARNINGS = "warn"  # sla.warning
# ABANDONED and BREACHES are also counted per stage of the contact, as
# `q:<queue>:abn.<stage>` and `q:<queue>:brch.<stage>` (vendor scorecards)
AVAILABLE_MS = "avail"  # pools: time agents spent available (busy or idle)
# contact.surveyed, credited to the answering agent's pool and the contact's queue
CSAT_SUM = "cs_s"  # sum of the CSAT scores (1-5)
CSAT_COUNT = "cs_n"  # surveys with a CSAT score
NPS_PROMOTERS = "np_p"  # NPS answers 9-10
NPS_PASSIVES = "np_a"  # NPS answers 7-8
NPS_DETRACTORS = "np_d"  # NPS answers 0-6
NPS_COUNT = "np_n"  # surveys with an NPS answer
SURVEY_COUNTERS = (CSAT_SUM, CSAT_COUNT, NPS_PROMOTERS, NPS_PASSIVES, NPS_DETRACTORS, NPS_COUNT)

QUEUE_COUNTERS = (
    OFFERED,
    ANSWERED,
    ANSWERED_WITHIN,
    WAIT_MS,
    ABANDONED,
    ABANDONED_IN_GRACE,
    HANDLED,
    HANDLE_MS,
    BREACHES,
    WARNINGS,
)
POOL_COUNTERS = (ANSWERED, ANSWERED_WITHIN, WAIT_MS, HANDLED, HANDLE_MS, AVAILABLE_MS)

Counters = Mapping[str, int]


class ServiceLevel(TypedDict):
    threshold_s: float | None
    value: float | None


def service_clock(queue: QueueConfig) -> tuple[SlaKind, float]:
    """The clock a queue's service level follows, and its T in seconds: the queue's
    main SLA clock. First response when the queue runs SLA timers (it has an `sla`
    table) and serves no live channel: T = `first_response_s`, else `threshold_s`.
    Otherwise the answer clock: T = `threshold_s` (a queue mixing live and other
    channels reports one figure, so it keeps the answer clock)."""
    sla = queue.sla
    if sla.timed and all(main_kind(ch) is SlaKind.FIRST_RESPONSE for ch in queue.channels):
        first = sla.first_response_s
        return SlaKind.FIRST_RESPONSE, sla.threshold_s if first is None else first
    return SlaKind.ANSWER, sla.threshold_s


def _clamp01(v: float) -> float:
    return min(1.0, max(0.0, v))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    if denominator <= 0:
        return None
    return numerator / denominator


def service_level(
    answered_within: int, offered: int, abandoned_within_grace: int, threshold_s: float | None
) -> ServiceLevel:
    """Answered within T / (offered - abandoned within the grace), in 0..1.

    Clamped: counts are attributed to the bucket of the event that caused them,
    so within a window a contact can be answered without having been offered in
    it (it arrived earlier), which could otherwise push the value past 1."""
    v = ratio(answered_within, offered - abandoned_within_grace)
    return {"threshold_s": threshold_s, "value": None if v is None else round(_clamp01(v), 4)}


def asa_s(wait_ms: int, answered: int) -> float | None:
    """Average speed of answer, in seconds: mean wait_ms of the answered contacts."""
    v = ratio(wait_ms, answered)
    return None if v is None else round(v / 1000, 1)


def aht_s(handle_ms: int, handled: int) -> float | None:
    """Average handle time, in seconds: talk plus wrap-up, per completed contact."""
    v = ratio(handle_ms, handled)
    return None if v is None else round(v / 1000, 1)


def abandon_rate(abandoned: int, offered: int) -> float | None:
    """Abandoned / offered, in 0..1 (clamped like the service level)."""
    v = ratio(abandoned, offered)
    return None if v is None else round(_clamp01(v), 4)


def occupancy(handle_ms: int, available_ms: int) -> float | None:
    """Handling time / available time, in 0..1. Clamped: an agent working several
    chats at once, or a contact begun before the window, can count more handling
    time than the available time of the window."""
    v = ratio(handle_ms, available_ms)
    return None if v is None else round(_clamp01(v), 4)


def csat(csat_sum: int, csat_count: int) -> float | None:
    """Mean CSAT score (1-5) of the surveys received, two decimals; None without any."""
    v = ratio(csat_sum, csat_count)
    return None if v is None else round(v, 2)


def nps(promoters: int, detractors: int, answers: int) -> float | None:
    """Net promoter score: % promoters (9-10) minus % detractors (0-6) of the NPS
    answers, in -100..100, one decimal; None without any answer."""
    v = ratio(promoters - detractors, answers)
    return None if v is None else round(max(-100.0, min(100.0, 100 * v)), 1)


def survey_figures(c: Counters) -> dict[str, float | None]:
    """CSAT and NPS of a queue or pool from its survey counters (in the bucket of
    the survey's arrival, which may be days after the contact)."""
    return {
        "csat": csat(c.get(CSAT_SUM, 0), c.get(CSAT_COUNT, 0)),
        "nps": nps(c.get(NPS_PROMOTERS, 0), c.get(NPS_DETRACTORS, 0), c.get(NPS_COUNT, 0)),
    }


def queue_figures(c: Counters, threshold_s: float) -> dict[str, object]:
    """The derived per-queue figures of one window or interval."""
    offered = c.get(OFFERED, 0)
    answered = c.get(ANSWERED, 0)
    abandoned = c.get(ABANDONED, 0)
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "service_level": service_level(
            c.get(ANSWERED_WITHIN, 0), offered, c.get(ABANDONED_IN_GRACE, 0), threshold_s
        ),
        "asa_s": asa_s(c.get(WAIT_MS, 0), answered),
        "aht_s": aht_s(c.get(HANDLE_MS, 0), c.get(HANDLED, 0)),
        "abandon_rate": abandon_rate(abandoned, offered),
        "handled": c.get(HANDLED, 0),
        "sla_breaches": c.get(BREACHES, 0),
        "sla_warnings": c.get(WARNINGS, 0),
    }


def pool_figures(c: Counters) -> dict[str, object]:
    """The derived per-pool figures. A pool has no `offered` (contacts are offered to
    queues), so its service level is its answers within their queue's threshold
    over all its answers, and its threshold_s is null."""
    answered = c.get(ANSWERED, 0)
    return {
        "occupancy": occupancy(c.get(HANDLE_MS, 0), c.get(AVAILABLE_MS, 0)),
        "answered": answered,
        "handled": c.get(HANDLED, 0),
        "asa_s": asa_s(c.get(WAIT_MS, 0), answered),
        "aht_s": aht_s(c.get(HANDLE_MS, 0), c.get(HANDLED, 0)),
        "service_level": service_level(c.get(ANSWERED_WITHIN, 0), answered, 0, None),
    }


def split_counters(
    raw: Mapping[str, int],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """`q:<queue>:<name>` / `p:<pool>:<name>` fields -> per-queue and per-pool counters."""
    queues: dict[str, dict[str, int]] = {}
    pools: dict[str, dict[str, int]] = {}
    for field, n in raw.items():
        kind, _, rest = field.partition(":")
        owner, _, name = rest.rpartition(":")
        target = queues if kind == "q" else pools if kind == "p" else None
        if target is None or not owner:
            continue
        counters = target.setdefault(owner, {})
        counters[name] = counters.get(name, 0) + n
    return queues, pools
