"""Property-based stateful test: random traffic on the real engine, invariants after each step.

Hypothesis drives arrivals, agents, status changes, accepts, rejects, timeouts
in virtual time, completions, abandons, transfers, pool gates and overflow. After
every step the whole tenant is read back from Redis and checked (tests/invariants.py):
every contact in exactly one place, no agent over capacity, no contact held by
two agents, ready sets exact, queue order by effective priority, work
conservation, and an event stream that replays to the current state.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from redis.asyncio import Redis

from router.clock import VirtualClock
from router.config import load_config_text
from router.engine import Engine
from router.errors import SwitchboardError
from router.model import AgentSpec, AgentStatus, NewContact

from ..conftest import drop_tenant
from ..factories import BASE_BODY, tenant_toml
from ..invariants import assert_invariants
from .test_overflow_triggers import assert_open_stages

QUEUES = [
    ("voice", "voice"),
    ("chat", "chat"),
    ("email", "email"),
    ("social", "social"),
    ("social", "sms"),
]
# The shared test config, plus one queue that takes two channels and ranks
# agents by occupancy, so both show up in random traffic too.
MACHINE_BODY = (
    BASE_BODY.replace(
        "wrap_up_s = { voice = 10, chat = 0, email = 0 }",
        "wrap_up_s = { voice = 10, chat = 0, email = 0, social = 5 }",
    )
    .replace(  # a vendor cap that binds: routing skips the vendor at 2 contacts
        'name = "Near Co"\nlocation = "nearshore"\n',
        'name = "Near Co"\nlocation = "nearshore"\nmax_concurrent = 2\n',
    )
    .replace(  # overflow triggers: by estimated wait, and when earlier pools are empty
        'after_s = 30\npools = ["near"]\n',
        'after_s = 30\npools = ["near"]\nestimated_wait_s = 20\nwhen_unstaffed = true\n',
    )
    + """
[queues.social]
channels = ["social", "sms"]
pools = ["near"]
strategy = "least_occupied"
offer_timeout_s = 15

[[queues.social.overflow]]
after_s = 60
pools = ["inhouse"]
when_unstaffed = true
"""
)
POOLS = ["inhouse", "near", "off"]
AGENTS = [f"a{i}" for i in range(6)]


class RoutingMachine(RuleBasedStateMachine):
    redis_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.redis_url)
        self.clock = VirtualClock()
        tid = "h" + uuid.uuid4().hex[:12]
        self.tenant = load_config_text(tenant_toml(tid, MACHINE_BODY), "<test>").tenants[tid]
        self.engine = Engine(self.redis, self.tenant, self.clock)
        self.n = 0
        self.created: list[str] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(drop_tenant(self.redis, self.tenant.id))
        self.run(self.redis.aclose())
        self.loop.close()

    def attempt(self, coro: Any) -> Any:
        """Run a transition; a typed refusal is fine (it must change nothing)."""
        try:
            return self.run(coro)
        except SwitchboardError:
            return None

    def contacts_in(self, *states: str) -> list[str]:
        """Contacts in these states, in creation order (ids are deterministic, so a
        replayed example draws the same contacts)."""

        async def read() -> list[str]:
            pipe = self.redis.pipeline(transaction=False)
            for cid in self.created:
                pipe.hget(self.engine.keys.contact(cid), "state")
            got = await pipe.execute()
            return [
                c
                for c, st_ in zip(self.created, got, strict=True)
                if st_ and st_.decode() in states
            ]

        return self.run(read())  # type: ignore[no-any-return]

    @initialize()
    def setup(self) -> None:
        self.run(self.engine.apply_config())

    @rule(
        aid=st.sampled_from(AGENTS),
        pool=st.sampled_from(POOLS),
        level=st.integers(1, 5),
        spanish=st.integers(0, 5),
        voice=st.integers(0, 1),
        chat=st.integers(0, 3),
        email=st.integers(0, 2),
        social=st.integers(0, 2),
        status=st.sampled_from(list(AgentStatus)),
    )
    def upsert_agent(
        self,
        aid: str,
        pool: str,
        level: int,
        spanish: int,
        voice: int,
        chat: int,
        email: int,
        social: int,
        status: AgentStatus,
    ) -> None:
        cap = {"voice": voice, "chat": chat, "email": email, "social": social, "sms": social}
        skills = {"billing": level} | ({"spanish": spanish} if spanish else {})
        self.attempt(self.engine.upsert_agent(AgentSpec(aid, pool, aid, skills, cap), status))

    @rule(aid=st.sampled_from(AGENTS), status=st.sampled_from(list(AgentStatus)))
    def set_status(self, aid: str, status: AgentStatus) -> None:
        self.attempt(self.engine.set_agent_status(aid, status, "test"))

    @rule(
        q=st.sampled_from(QUEUES),
        priority=st.integers(0, 2),
        pref=st.none() | st.sampled_from(AGENTS),
        spanish=st.sampled_from([0, 0, 2, 4]),
    )
    def arrive(self, q: tuple[str, str], priority: int, pref: str | None, spanish: int) -> None:
        self.n += 1
        skills = {"spanish": spanish} if spanish else {}
        cid = f"k{self.n:04d}"  # deterministic: ties in a queue break by id
        new = NewContact(
            id=cid, channel=q[1], queue=q[0], priority=priority, preferred_agent=pref, skills=skills
        )
        if self.attempt(self.engine.create_contact(new)) is not None:
            self.created.append(cid)

    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        held = self.contacts_in("reserved")
        if held:
            cid = data.draw(st.sampled_from(held))
            c = self.run(self.engine.get_contact(cid))
            self.attempt(self.engine.accept(cid, c.agent))

    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        held = self.contacts_in("reserved")
        if held:
            cid = data.draw(st.sampled_from(held))
            c = self.run(self.engine.get_contact(cid))
            self.attempt(self.engine.reject(cid, c.agent))

    @rule(data=st.data(), skip=st.booleans())
    def complete(self, data: st.DataObject, skip: bool) -> None:
        held = self.contacts_in("assigned", "wrap_up")
        if held:
            cid = data.draw(st.sampled_from(held))
            self.attempt(self.engine.complete(cid, None, "done", skip_wrap_up=skip))

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        waiting = self.contacts_in("queued", "reserved")
        if waiting:
            self.attempt(self.engine.abandon(data.draw(st.sampled_from(waiting))))

    @rule(data=st.data(), to_agent=st.booleans())
    def transfer(self, data: st.DataObject, to_agent: bool) -> None:
        live = self.contacts_in("queued", "reserved", "assigned")
        if live:
            cid = data.draw(st.sampled_from(live))
            if to_agent:
                self.attempt(self.engine.transfer(cid, agent=data.draw(st.sampled_from(AGENTS))))
            else:
                q = data.draw(st.sampled_from(list(dict.fromkeys(q for q, _ in QUEUES))))
                self.attempt(self.engine.transfer(cid, queue=q))

    @rule(pool=st.sampled_from(POOLS), is_open=st.booleans())
    def gate(self, pool: str, is_open: bool) -> None:
        self.attempt(self.engine.set_pool_open(pool, is_open, "test"))

    @rule(aid=st.sampled_from(AGENTS))
    def heartbeat(self, aid: str) -> None:
        self.attempt(self.engine.heartbeat(aid))

    @rule(seconds=st.sampled_from([1, 5, 16, 31, 61, 95]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.run(self.engine.run_due_timers())

    @precondition(lambda self: True)
    @invariant()
    def invariants_hold(self) -> None:
        # Timers due now are part of the state too: apply them first, as the
        # timer loop would, then check.
        self.run(self.engine.run_due_timers())
        self.run(assert_invariants(self.redis, self.tenant))
        self.run(assert_open_stages(self.redis, self.tenant))


def test_routing_state_machine(redis_url: str) -> None:
    RoutingMachine.redis_url = redis_url
    run = RoutingMachine.TestCase
    run.settings = settings(
        max_examples=60,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    run().runTest()
