"""Test data builders: small configs and agents."""

from __future__ import annotations

from router.model import AgentSpec

# Two queues, three pools, overflow in-house -> nearshore (30 s) -> offshore (90 s, level >= 2).
BASE_BODY = """
[routing]
max_missed_offers = 3
presence_timeout_s = 60
exclusive_channels = ["voice"]
wrap_up_s = { voice = 10, chat = 0, email = 0 }
transfer_wait_s = 20
preferred_agent_s = 15

[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[pools.off]
kind = "outsourced"
vendor = "off-co"
location = "offshore"

[vendors.off-co]
name = "Off Co"
location = "offshore"

[queues.voice]
channel = "voice"
skills = { billing = 3 }
pools = ["inhouse"]
offer_timeout_s = 15
aging_s = 60

[[queues.voice.overflow]]
after_s = 30
pools = ["near"]

[[queues.voice.overflow]]
after_s = 90
pools = ["off"]
min_proficiency = 2

[queues.chat]
channel = "chat"
pools = ["inhouse", "near"]
offer_timeout_s = 30

[queues.email]
channel = "email"
pools = ["inhouse"]
offer_timeout_s = 60
"""


def tenant_toml(tenant: str, body: str | None = None) -> str:
    return f'[tenant]\nid = "{tenant}"\n' + (BASE_BODY if body is None else body)


def agent(
    agent_id: str,
    pool: str = "inhouse",
    skills: dict[str, int] | None = None,
    capacity: dict[str, int] | None = None,
) -> AgentSpec:
    return AgentSpec(
        id=agent_id,
        pool=pool,
        name=agent_id.title(),
        skills={"billing": 3} if skills is None else skills,
        capacity={"voice": 1, "chat": 2, "email": 3} if capacity is None else capacity,
    )
