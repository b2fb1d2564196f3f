"""The real month: a slice of the Anonymous Bank log replayed in virtual time.

Two real days (Monday 16 and Tuesday 17 August 1999, 2,848 contacts) go through the
converter and the replay with the derived configuration, with their real arrivals,
handle times and patience. The report must conserve contacts and offer every trace
contact, and its abandon rate and ASA must land in a band around the log's own
figures.

Exact agreement is not expected: the roster is rebuilt from who served (an agent is
on duty in a half hour only if it served a call in it), routing is the engine's
longest-idle with each call going only to agents who served its type, and served
callers never abandon with the default censored patience (callers who hung up in
the log have no handle time, so when the replay answers one the call takes 0 s).
The bands below are wide on purpose (docs/replay.md, "The real month", gives the
figures of the whole month).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from loadtests.convert import BankSummary, bank_contacts, bank_roster, open_text, read_bank
from loadtests.replay import load_tenant, replay_virtual

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "anonymous-bank-1999-08.csv.gz"
FIRST, LAST = dt.date(1999, 8, 16), dt.date(1999, 8, 17)

# The band. The replay is expected to do much better than the center did: the roster
# puts an agent on duty for every whole half hour in which it served a call, with no
# after-call work, breaks or other tasks, so agents are free far more often than the
# real ones were (occupancy 53 %). So the replay may beat the log by a lot, but
# not be worse than it, and not be implausibly perfect. On these two days the log
# says 12.4 % abandoned and 43.8 s mean wait of served calls; the replay gives 2.0 %
# and 5.8 s (the whole month: docs/replay.md, "The real month").
ABANDON_WORSE = 0.02  # abandon rate at most the log's + 0.02
ABANDON_FLOOR = 1 / 10  # and at least a tenth of the log's
ASA_WORSE_S = 10.0  # ASA at most the log's mean wait + 10 s
ASA_FLOOR = 1 / 25  # and at least a 25th of it


@pytest.mark.slow
async def test_two_real_days_replay_close_to_the_log(redis: Redis) -> None:
    with open_text(DATA) as stream:
        calls, day0 = read_bank(stream, str(DATA), BankSummary(), FIRST, LAST)
    assert day0 == FIRST
    served = [c for c in calls if not c.abandoned]
    log_abandon = 1 - len(served) / len(calls)
    log_asa = sum(c.wait for c in served) / len(served)
    trace = list(bank_contacts(calls, day0, "censored", 0))
    roster = bank_roster(calls, day0)
    assert len(trace) == 2848 and len(roster.agents) > 10

    tenant = load_tenant(None, trace, roster, tenant=f"bank-{uuid.uuid4().hex[:8]}")
    sim = await replay_virtual(redis, tenant, trace, roster)
    rep = sim.report()

    # every trace contact was offered, none refused
    assert rep["rejected"] == {}
    assert set(sim.outcomes) == {c.id for c in trace}
    assert rep["offered"] == len(trace)
    # conservation, overall and per queue
    assert rep["offered"] == rep["answered"] + rep["abandoned"] + rep["still_waiting"]
    for q in rep["queues"].values():
        assert q["offered"] == q["answered"] + q["abandoned"] + q["still_waiting"]
    assert {q: r["offered"] for q, r in rep["queues"].items()} == {
        q: sum(1 for c in trace if c.queue == q) for q in {c.queue for c in trace}
    }
    # only callers who hung up in the log can abandon (censored patience), and the
    # roster covers every call's type, so nobody is left waiting at the end
    assert rep["abandoned"] <= len(calls) - len(served)
    assert rep["still_waiting"] == 0
    # within the band around the log's own figures
    assert log_abandon * ABANDON_FLOOR <= rep["abandon_rate"] <= log_abandon + ABANDON_WORSE
    assert log_asa * ASA_FLOOR <= rep["asa_s"] <= log_asa + ASA_WORSE_S
    # handle times are the log's ser_time; callers who hung up in the log have none
    # (0 s), so the replay's AHT is the served calls' talk time over everyone answered
    assert rep["aht_s"] == pytest.approx(sum(c.handle for c in served) / rep["answered"], abs=0.06)
