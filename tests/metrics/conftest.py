"""A small tenant for the metrics tests: two voice queues with different
thresholds, an in-house and a vendor pool, a 5 s abandon grace."""

from __future__ import annotations

METRICS_BODY = """
timezone = "Europe/Madrid"

[routing]
max_missed_offers = 0
presence_timeout_s = 0
wrap_up_s = { voice = 0, chat = 0, email = 0 }
transfer_wait_s = 20

[metrics]
abandon_grace_s = 5
history_days = 2

[pools.inhouse]
kind = "inhouse"
name = "In-house"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.sales]
channel = "voice"
pools = ["inhouse"]
sla = { threshold_s = 20, target = 0.8 }

[queues.support]
channel = "voice"
pools = ["inhouse", "near"]
sla = { threshold_s = 30, target = 0.9 }
"""

# 2023-11-14 22:15:00 UTC: on a minute and a quarter-hour boundary
T0 = 1_700_000_100_000
