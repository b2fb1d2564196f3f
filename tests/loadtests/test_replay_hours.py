"""The virtual replay honours pool hours: a boundary moves the gate at its own time."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from loadtests.replay import START_MS, replay_virtual
from loadtests.trace import Roster, RosterAgent, TraceContact
from router.config import load_config_text

# 2024-01-01 (START_MS) is a Monday. Site `day` works 08:00-17:00 UTC, `night` the rest.
BODY = """
[pools.day]
kind = "outsourced"
vendor = "sun"
hours = "days"

[pools.night]
kind = "outsourced"
vendor = "sun"
hours = "nights"

[vendors.sun]
location = "offshore"

[calendars.days]
hours = { mon = ["08:00-17:00"], tue = ["08:00-17:00"] }

[calendars.nights]
hours = { mon = ["00:00-08:00", "17:00-24:00"], tue = ["00:00-08:00", "17:00-24:00"] }

[queues.chat]
channel = "chat"
pools = ["day", "night"]
offer_timeout_s = 3600
"""


async def test_replay_offers_only_to_sites_within_their_hours(redis: Redis) -> None:
    tid = f"rh-{uuid.uuid4().hex[:8]}"
    tenant = load_config_text(f'[tenant]\nid = "{tid}"\n' + BODY, "<test>").tenants[tid]
    # a contact every 20 min for a day, 5 min each; one agent per site, always on
    trace = [TraceContact(i * 1200.0, f"c{i}", "chat", "chat", 300.0) for i in range(72)]
    # 16:55 UTC: offered to the day site, still handled after it closes at 17:00
    trace.append(TraceContact(16 * 3600 + 55 * 60 + 1.0, "late", "chat", "chat", 600.0))
    trace.sort(key=lambda c: c.at)
    roster = Roster(
        (
            RosterAgent("d1", "day", {}, {"chat": 1}),
            RosterAgent("n1", "night", {}, {"chat": 1}),
        )
    )
    sim = await replay_virtual(redis, tenant, trace, roster)
    for c in trace:
        o = sim.outcomes[c.id]
        hour = int(c.at // 3600)
        assert o.wait_ms == 0, c.id
        if c.id == "late":
            assert o.agent == "d1"
        else:
            assert o.agent == ("d1" if 8 <= hour < 17 else "n1"), (c.id, hour, o.agent)
    # the run ends with the trace, not at the next boundary
    assert sim.end_ms < START_MS + 25 * 3_600_000
