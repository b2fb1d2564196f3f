"""A vendor's contract bounds where its pools' agents get lanes: only the channels
and queues it lists, and only the data-residency regions it is allowed. The config
refuses a queue that lists a vendor's pool the contract does not cover."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from router.config import load_config_text
from router.config.model import (
    Location,
    PoolConfig,
    PoolKind,
    QueueConfig,
    StageConfig,
    TenantConfig,
    VendorConfig,
)
from router.eligibility import (
    ANY,
    PoolScope,
    agent_lanes,
    entry_stage,
    pool_lanes,
    pool_scope,
    region_pools,
    regions_field,
)
from router.errors import ConfigError
from router.model import AgentStatus
from router.subqueues import derive, requirement, signature

from .conftest import EngineFactory
from .factories import agent


def _tenant(*, channels: tuple[str, ...] | None, queues: tuple[str, ...] | None) -> TenantConfig:
    both = QueueConfig(
        id="both", channels=("voice", "chat"), stages=(StageConfig(0.0, ("home", "far")),)
    )
    other = QueueConfig(id="other", channels=("email",), stages=(StageConfig(0.0, ("far",)),))
    return TenantConfig(
        id="t",
        pools={
            "home": PoolConfig("home"),
            "eu_home": PoolConfig("eu_home", regions=("eu",)),
            "far": PoolConfig("far", kind=PoolKind.OUTSOURCED, vendor="v"),
        },
        queues={"both": both, "other": other},
        vendors={
            "v": VendorConfig(
                id="v", location=Location.OFFSHORE, channels=channels, queues=queues, region="apac"
            )
        },
    )


CAP = {"voice": 1, "chat": 2, "email": 3}


def test_a_vendor_pool_gets_no_lane_outside_the_contract_channels() -> None:
    t = _tenant(channels=("chat",), queues=None)
    qs = t.queues.values()
    assert agent_lanes(qs, "far", {}, CAP, pool_scope(t, "far")) == {"both:chat": "0:0"}
    # without the contract every channel of both queues is a lane
    assert set(agent_lanes(qs, "far", {}, CAP)) == {"both:voice", "both:chat", "other:email"}
    assert pool_lanes(qs, "far", pool_scope(t, "far")) == ["both:chat"]
    # in-house pools are not bound by any contract
    assert set(agent_lanes(qs, "home", {}, CAP, pool_scope(t, "home"))) == {
        "both:voice",
        "both:chat",
    }


def test_a_vendor_pool_gets_no_lane_outside_the_contract_queues() -> None:
    t = _tenant(channels=None, queues=("other",))
    qs = list(t.queues.values())
    scope = pool_scope(t, "far")
    assert agent_lanes(qs, "far", {}, CAP, scope) == {"other:email": "0:0"}
    assert pool_lanes(qs, "far", scope) == ["other:email"]
    # a sub-queue is judged by its configured queue
    sub = derive(qs[0], {"spanish": 2}, signature({"spanish": 2}))
    assert entry_stage(sub, "far", {"spanish": 5}, scope) is None
    sub2 = derive(qs[1], {"spanish": 2}, signature({"spanish": 2}))
    assert entry_stage(sub2, "far", {"spanish": 5}, scope) == 0


def test_pool_scopes_and_region_fields() -> None:
    t = _tenant(channels=("chat",), queues=("both",))
    assert pool_scope(t, "far") == PoolScope(
        channels=frozenset({"chat"}), queues=frozenset({"both"}), regions=frozenset({"apac"})
    )
    assert pool_scope(t, "home") == ANY
    assert pool_scope(t, "eu_home") == PoolScope(regions=frozenset({"eu"}))
    assert regions_field(pool_scope(t, "home")) == "*"
    assert regions_field(pool_scope(t, "far")) == ",apac,"
    assert regions_field(PoolScope(regions=frozenset())) == ","
    assert regions_field(PoolScope(regions=frozenset({"us", "eu"}))) == ",eu,us,"
    # a vendor without a region serves no tagged contact
    no_region = _tenant(channels=None, queues=None)
    vendors = {"v": VendorConfig(id="v", location=Location.OFFSHORE)}
    bare = TenantConfig(id="t", pools=no_region.pools, queues=no_region.queues, vendors=vendors)
    assert pool_scope(bare, "far").regions == frozenset()
    assert not pool_scope(bare, "far").allows_region("apac")
    assert pool_scope(bare, "far").allows_region(None)


def test_the_region_is_a_pseudo_requirement_met_by_allowed_pools_only() -> None:
    t = _tenant(channels=None, queues=None)
    both = t.queues["both"]
    need = requirement({"spanish": 2}, "apac")
    assert need == {"spanish": 2, "@region:apac": 1}
    sub = derive(both, need, signature(need))
    # the region is not a skill: an agent cannot have it, its pool's contract decides
    assert entry_stage(sub, "far", {"spanish": 2}, pool_scope(t, "far")) == 0
    assert entry_stage(sub, "home", {"spanish": 2}, pool_scope(t, "home")) == 0
    assert entry_stage(sub, "far", {"spanish": 1}, pool_scope(t, "far")) is None
    eu = derive(both, requirement({}, "eu"), signature(requirement({}, "eu")))
    assert entry_stage(eu, "far", {}, pool_scope(t, "far")) is None
    assert pool_lanes([eu], "far", pool_scope(t, "far")) == []
    assert pool_lanes([eu], "home", pool_scope(t, "home")) == [f"{eu.id}:voice", f"{eu.id}:chat"]
    assert region_pools(t, [both], "voice", "apac") == ["home", "far"]
    assert region_pools(t, [both], "voice", "eu") == ["home"]
    assert region_pools(t, [t.queues["other"]], "email", "eu") == []


# -- config ------------------------------------------------------------------------

SRC = "c.toml"


def _doc(vendor: str, queue: str) -> str:
    return f"""
[tenant]
id = "t1"

[pools.inhouse]

[pools.far]
kind = "outsourced"
vendor = "acme"

[vendors.acme]
location = "offshore"
{vendor}

[queues.q1]
channel = "voice"
{queue}

[queues.q2]
channel = "chat"
pools = ["inhouse"]
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, SRC)
    return str(info.value)


@pytest.mark.parametrize(
    ("queue", "where"),
    [
        ('pools = ["inhouse", "far"]', "queues.q1.pools[1]"),
        (
            'pools = ["inhouse"]\n[[queues.q1.overflow]]\nafter_s = 30\npools = ["far"]',
            "queues.q1.overflow[0].pools[0]",
        ),
        (
            '[[queues.q1.stages]]\npools = ["inhouse"]\n'
            '[[queues.q1.stages]]\nafter_s = 30\npools = ["far"]',
            "queues.q1.stages[1].pools[0]",
        ),
    ],
)
def test_a_queue_listing_a_pool_its_vendors_contract_does_not_cover(queue: str, where: str) -> None:
    msg = _error(_doc('queues = ["q2"]', queue))
    assert msg == (
        f"{SRC}: {where}: pool far is run by vendor acme, whose contract does not cover "
        "queue q1 (vendors.acme.queues)"
    )
    # covered, or no queues in the contract: fine
    load_config_text(_doc('queues = ["q1", "q2"]', queue), SRC)
    load_config_text(_doc("", queue), SRC)


def test_pool_regions() -> None:
    q = 'pools = ["inhouse", "far"]'
    cfg = load_config_text(
        _doc('region = "eu"', q).replace(
            "[pools.inhouse]", '[pools.inhouse]\nregions = ["eu", "us"]'
        ),
        SRC,
    )
    t = cfg.tenants["t1"]
    assert t.pools["inhouse"].regions == ("eu", "us")
    assert t.pools["far"].regions is None
    assert pool_scope(t, "far").regions == frozenset({"eu"})
    bad = [
        ('regions = ["EU"]', "pools.inhouse.regions[0]: bad region 'EU'"),
        ('regions = ["eu", "eu"]', "pools.inhouse.regions[1]: region 'eu' is listed twice"),
        ('regions = "eu"', "pools.inhouse.regions: expected array"),
    ]
    for line, message in bad:
        msg = _error(_doc("", q).replace("[pools.inhouse]", f"[pools.inhouse]\n{line}"))
        assert msg.startswith(f"{SRC}: {message}"), msg
    msg = _error(_doc("", q).replace('vendor = "acme"', 'vendor = "acme"\nregions = ["eu"]'))
    assert msg == (
        f"{SRC}: pools.far.regions: only allowed for in-house pools; an outsourced pool "
        "serves its vendor's region (vendors.<id>.region)"
    )


# -- engine ------------------------------------------------------------------------

ENGINE_BODY = """
[routing]
presence_timeout_s = 0

[pools.inhouse]

[pools.far]
kind = "outsourced"
vendor = "acme"

[vendors.acme]
location = "offshore"
channels = ["chat"]
queues = ["mixed"]

[queues.mixed]
channels = ["voice", "chat"]
pools = ["inhouse", "far"]

[queues.mail]
channel = "email"
pools = ["inhouse"]
"""


async def test_the_engine_lanes_follow_the_contract(
    make_engine: EngineFactory, redis: Redis
) -> None:
    eng = await make_engine(ENGINE_BODY)
    await eng.upsert_agent(agent("f1", "far", skills={}), AgentStatus.AVAILABLE)
    await eng.upsert_agent(agent("h1", "inhouse", skills={}), AgentStatus.AVAILABLE)
    far = {k.decode() for k in await redis.hkeys(eng.keys.agent_lanes("f1"))}
    home = {k.decode() for k in await redis.hkeys(eng.keys.agent_lanes("h1"))}
    assert far == {"mixed:chat"}
    assert home == {"mixed:voice", "mixed:chat", "mail:email"}
    vend = {
        k.decode(): v.decode() for k, v in (await redis.hgetall(eng.keys.vendor_config)).items()
    }
    assert vend["lanes:acme"] == "mixed:chat"
    assert vend["rg:far"] == "," and vend["rg:inhouse"] == "*"
