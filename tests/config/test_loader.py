"""Config loader: the demo file, both file shapes, and one exact message per rule.

Messages are compared whole because operators act on them: the file and key path
must point at the offending line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import (
    Config,
    FullAction,
    Location,
    PoolKind,
    StageConfig,
    Strategy,
    load_config,
    load_config_text,
)
from router.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
SRC = "test.toml"
ID_RULE = "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
CHANNELS = "voice, chat, email, social, sms"

POOLS = """
[pools.inhouse]

[pools.vendor]
kind = "outsourced"
vendor = "costa-contact"
location = "nearshore"

[pools.far]
kind = "outsourced"
vendor = "manila-connect"

[vendors.costa-contact]
location = "nearshore"

[vendors.manila-connect]
location = "offshore"
"""


def queue(qid: str = "q1", *, tail: str = "", **keys: str | None) -> str:
    """A minimal valid queue; keyword arguments replace (or, as None, drop) its keys."""
    fields: dict[str, str | None] = {"channel": '"voice"', "pools": '["inhouse"]'}
    fields.update(keys)
    lines = [f"{k} = {v}" for k, v in fields.items() if v is not None]
    return f"\n[queues.{qid}]\n" + "\n".join(lines) + "\n" + tail


def doc(
    *,
    tenant: str = 'id = "t1"',
    top: str = "",
    pools: str = POOLS,
    queues: str | None = None,
) -> str:
    """A minimal valid single-tenant file with one part swapped for the case at hand."""
    return f"{top}\n[tenant]\n{tenant}\n{pools}\n{queue() if queues is None else queues}"


def overflow(*stages: str, qid: str = "q1") -> str:
    return "".join(f"\n[[queues.{qid}.overflow]]\n{s}\n" for s in stages)


def load(text: str) -> Config:
    return load_config_text(text, SRC)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    return str(info.value)


# -- the demo file -------------------------------------------------------------------


def test_demo_loads_with_expected_pools_and_queues() -> None:
    config = load_config(DEMO)
    assert config.source == str(DEMO)
    assert list(config.tenants) == ["demo"]
    tenant = config.tenants["demo"]
    assert tenant.name == "Demo Bank"
    assert set(tenant.pools) == {"inhouse", "nearshore", "offshore"}
    assert tenant.pools["inhouse"].kind is PoolKind.INHOUSE
    assert tenant.pools["inhouse"].vendor is None
    nearshore, offshore = tenant.pools["nearshore"], tenant.pools["offshore"]
    assert (nearshore.kind, nearshore.vendor, nearshore.location) == (
        PoolKind.OUTSOURCED,
        "costa-contact",
        Location.NEARSHORE,
    )
    assert (offshore.vendor, offshore.location) == ("manila-connect", Location.OFFSHORE)
    assert tenant.vendors["costa-contact"].name == "Costa Contact"
    assert {
        "billing_voice",
        "support_voice_es",
        "support_chat",
        "support_chat_es",
        "support_email",
        "social",
    } <= set(tenant.queues)
    used = {c for q in tenant.queues.values() for c in q.channels}
    assert {"voice", "chat", "email", "social"} <= used


def test_demo_voice_overflow_stages() -> None:
    q = load_config(DEMO).tenants["demo"].queues["billing_voice"]
    assert q.stages == (
        StageConfig(0.0, ("inhouse",), None),
        StageConfig(30.0, ("nearshore",), None, estimated_wait_s=60.0, when_unstaffed=True),
        StageConfig(90.0, ("offshore",), 2),
    )
    assert q.pools_at(0) == ("inhouse",)
    assert q.pools_at(1) == ("inhouse", "nearshore")
    assert q.pools_at(2) == ("inhouse", "nearshore", "offshore")
    assert q.requirement_at(0) == {"billing": 3, "english": 2}
    assert q.requirement_at(1) == {"billing": 3, "english": 2}
    assert q.requirement_at(2) == {"billing": 2, "english": 2}
    assert q.offer_timeout_s == 15
    assert (q.sla.threshold_s, q.sla.target) == (20.0, 0.8)
    assert q.max_size is not None
    assert q.when_full is FullAction.OVERFLOW
    assert q.overflow_queue is not None
    target = load_config(DEMO).tenants["demo"].queues[q.overflow_queue]
    assert "inhouse" not in target.pools_at(len(target.stages) - 1)


def test_demo_channel_defaults_and_slas() -> None:
    tenant = load_config(DEMO).tenants["demo"]
    assert tenant.routing.wrap_up_s == {
        "voice": 30.0,
        "chat": 15.0,
        "email": 60.0,
        "social": 30.0,
        "sms": 30.0,
    }
    chat, email = tenant.queues["support_chat"], tenant.queues["support_email"]
    assert (chat.offer_timeout_s, chat.sla.threshold_s, chat.sla.target) == (30, 60, 0.8)
    assert (email.offer_timeout_s, email.sla.threshold_s) == (120, 14400)
    assert tenant.wrap_up_ms(chat, "chat") == 15_000
    assert any(q.when_full is FullAction.REJECT and q.max_size for q in tenant.queues.values())
    # Every stage of every queue starts with stage 0 at once and only widens.
    for q in tenant.queues.values():
        assert q.stages[0].after_s == 0 and q.stages[0].pools
    social = tenant.queues["social"]  # the explicit [[stages]] form
    assert social.channels == ("social", "sms")
    assert social.requirement_at(1) == {"support": 1, "english": 1}


def test_demo_file_error_names_file_and_overflow_index() -> None:
    text = DEMO.read_text().replace("after_s = 90\n", "after_s = 0\n", 1)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "config/demo.toml")
    assert str(info.value) == (
        "config/demo.toml: queues.billing_voice.overflow[1].after_s: must be > 0"
    )


# -- shapes and defaults ---------------------------------------------------------------


def test_minimal_file_gets_defaults() -> None:
    tenant = load(doc()).tenants["t1"]
    q = tenant.queues["q1"]
    assert q.channels == ("voice",)
    assert q.stages == (StageConfig(0.0, ("inhouse",), None),)
    assert q.strategy is Strategy.LONGEST_IDLE
    assert q.when_full is FullAction.REJECT and q.overflow_queue is None
    assert tenant.routing.exclusive_channels == ("voice",)
    assert tenant.channels == ("voice", "chat", "email", "social", "sms")


def test_ints_accepted_for_float_fields() -> None:
    q = (
        load(doc(queues=queue(aging_s="30", sla="{ threshold_s = 10, target = 1 }")))
        .tenants["t1"]
        .queues["q1"]
    )
    assert isinstance(q.aging_s, float) and q.aging_s == 30.0
    assert isinstance(q.sla.target, float) and q.sla.target == 1.0


@pytest.mark.parametrize(("raw", "share"), [('"80%"', 0.8), ('"100 %"', 1.0), ("0.95", 0.95)])
def test_sla_target_forms(raw: str, share: float) -> None:
    q = load(doc(queues=queue(sla=f"{{ target = {raw} }}"))).tenants["t1"].queues["q1"]
    assert q.sla.target == pytest.approx(share)


def test_stages_form_equals_overflow_form() -> None:
    a = queue(tail=overflow('after_s = 30\npools = ["vendor"]\nmin_proficiency = 2'))
    b = queue(
        pools=None,
        tail='[[queues.q1.stages]]\npools = ["inhouse"]\n'
        '[[queues.q1.stages]]\nafter_s = 30\npools = ["vendor"]\nmin_proficiency = 2\n',
    )
    qa = load(doc(queues=a)).tenants["t1"].queues["q1"]
    qb = load(doc(queues=b)).tenants["t1"].queues["q1"]
    assert qa.stages == qb.stages
    assert qa.stages[1] == StageConfig(30.0, ("vendor",), 2)


def test_stage_may_only_lower_proficiency() -> None:
    q = (
        load(
            doc(
                queues=queue(
                    skills="{ billing = 4 }", tail=overflow("after_s = 10\nmin_proficiency = 2")
                )
            )
        )
        .tenants["t1"]
        .queues["q1"]
    )
    assert q.pools_at(1) == ("inhouse",)
    assert q.requirement_at(1) == {"billing": 2}


def test_tenant_may_add_channels() -> None:
    text = doc(
        tenant='id = "t1"\nchannels = ["voice", "whatsapp"]',
        queues=queue(channels='["whatsapp", "voice"]', channel=None),
    )
    tenant = load(text).tenants["t1"]
    assert tenant.channels == ("voice", "whatsapp")
    assert tenant.queues["q1"].channels == ("whatsapp", "voice")


def test_exclusive_default_drops_voice_when_tenant_has_none() -> None:
    text = doc(tenant='id = "t1"\nchannels = ["chat"]', queues=queue(channel='"chat"'))
    assert load(text).tenants["t1"].routing.exclusive_channels == ()


def test_overflow_queue_accepted() -> None:
    text = doc(
        queues=queue(max_size="10", when_full='"overflow"', overflow_queue='"q2"')
        + queue("q2", pools='["vendor"]')
    )
    q = load(text).tenants["t1"].queues["q1"]
    assert (q.max_size, q.when_full, q.overflow_queue) == (10, FullAction.OVERFLOW, "q2")


MULTI = """
[tenants.acme]
name = "Acme"
channels = ["voice", "chat"]

[tenants.acme.routing]
max_missed_offers = 0

[tenants.acme.pools.inhouse]

[tenants.acme.queues.sales]
channel = "voice"
pools = ["inhouse"]

[tenants.globex]
name = "Globex"

[tenants.globex.retention]
stream_max_len = 5000

[tenants.globex.pools.team]

[tenants.globex.pools.bpo]
kind = "outsourced"
vendor = "manila-connect"

[tenants.globex.vendors.manila-connect]
name = "Manila Connect"
location = "offshore"

[tenants.globex.queues.help]
channels = ["chat", "email"]
skills = { support = 2 }
pools = ["team"]

[[tenants.globex.queues.help.overflow]]
after_s = 60
pools = ["bpo"]
"""


def test_multi_tenant_file() -> None:
    config = load(MULTI)
    assert list(config.tenants) == ["acme", "globex"]
    acme, globex = config.tenants["acme"], config.tenants["globex"]
    assert acme.name == "Acme" and acme.channels == ("voice", "chat")
    assert acme.routing.max_missed_offers == 0
    assert list(acme.queues) == ["sales"]
    assert globex.retention.stream_max_len == 5000
    assert globex.queues["help"].pools_at(1) == ("team", "bpo")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MULTI.replace("after_s = 60", "after_s = -1"),
            "tenants.globex.queues.help.overflow[0].after_s: must be > 0",
        ),
        (
            MULTI.replace('channel = "voice"', 'channel = "email"'),
            "tenants.acme.queues.sales.channel: unknown channel 'email'; "
            "tenant channels: voice, chat",
        ),
        (
            MULTI.replace('name = "Acme"', 'nmae = "Acme"'),
            "tenants.acme.nmae: unknown key; allowed keys: "
            "calendars, channels, conversations, default_queues, limits, metrics, name, pools, "
            "providers, queues, retention, routing, rules, timezone, tokens, vendors, webhooks",
        ),
        (
            '[tenants."a b"]\n',
            f"tenants.\"a b\": invalid tenant id 'a b': {ID_RULE}",
        ),
        ("tenants = {}\n", "tenants: must define at least one tenant"),
        (
            '[tenants.x]\n[tenants.x.queues.q]\nchannel = "voice"\n',
            "tenants.x.pools: a tenant needs at least one pool",
        ),
        (
            MULTI + "\n[queues.stray]\n",
            "queues: cannot be combined with [tenants.<id>]; move it into the tenant's table",
        ),
    ],
)
def test_multi_tenant_errors(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


# -- one exact message per rule --------------------------------------------------------

CASES: list[tuple[str, str, str]] = [
    # document / tenant
    (
        "unknown top-level key",
        doc(top="[routeing]"),
        "routeing: unknown key; allowed keys: calendars, conversations, default_queues, limits, "
        "metrics, pools, providers, queues, retention, routing, rules, tenant, tenants, tokens, "
        "vendors, webhooks",
    ),
    (
        "missing tenant",
        "pools = {}\n",
        "tenant: missing; a single-tenant file needs a [tenant] "
        "table with an id (or use [tenants.<id>] tables for several tenants)",
    ),
    ("missing tenant id", doc(tenant='name = "x"'), "tenant.id: required"),
    (
        "bad tenant id",
        doc(tenant='id = "t{1}"'),
        f"tenant.id: invalid tenant id 't{{1}}': {ID_RULE}",
    ),
    ("tenant id type", doc(tenant="id = 7"), "tenant.id: expected string, got integer 7"),
    (
        "unknown tenant key",
        doc(tenant='id = "t1"\nchanels = []'),
        "tenant.chanels: unknown key; allowed keys: channels, id, name, timezone",
    ),
    (
        "empty tenant channels",
        doc(tenant='id = "t1"\nchannels = []'),
        "tenant.channels: must list at least one channel",
    ),
    (
        "bad channel name",
        doc(tenant='id = "t1"\nchannels = ["voice", "live chat"]'),
        f"tenant.channels[1]: invalid channel id 'live chat': {ID_RULE}",
    ),
    (
        "duplicate tenant channel",
        doc(tenant='id = "t1"\nchannels = ["voice", "voice"]'),
        "tenant.channels[1]: channel 'voice' is listed twice",
    ),
    ("no pools", doc(pools=""), "pools: a tenant needs at least one pool"),
    ("no queues", doc(queues=""), "queues: a tenant needs at least one queue"),
    (
        "queues not a table",
        doc(top='queues = ["a"]', queues=""),
        "queues: expected table, got array",
    ),
    # pools
    (
        "bad pool id",
        doc(pools='[pools."in house"]'),
        f"pools.\"in house\": invalid pool id 'in house': {ID_RULE}",
    ),
    (
        "pool kind",
        doc(pools='[pools.inhouse]\nkind = "bpo"'),
        "pools.inhouse.kind: must be one of inhouse, outsourced, got 'bpo'",
    ),
    (
        "outsourced needs vendor",
        doc(pools='[pools.inhouse]\n[pools.v]\nkind = "outsourced"\nlocation = "offshore"'),
        'pools.v.vendor: required when kind = "outsourced"',
    ),
    (
        "outsourced names an undeclared vendor",
        doc(pools='[pools.inhouse]\n[pools.v]\nkind = "outsourced"\nvendor = "X"'),
        "pools.v.vendor: unknown vendor 'X' (no vendor is declared); a pool's vendor is the "
        "id of a [vendors.<id>] table holding its contract: declare e.g. [vendors.x] with "
        'name = "X" and location, then write vendor = "x"',
    ),
    (
        "bad location",
        doc(
            pools='[pools.inhouse]\n[pools.v]\nkind = "outsourced"\nvendor = "X"\nlocation = "moon"'
        ),
        "pools.v.location: must be one of onshore, nearshore, offshore, got 'moon'",
    ),
    (
        "vendor type",
        doc(
            pools='[pools.inhouse]\n[pools.v]\nkind = "outsourced"\n'
            'vendor = 3\nlocation = "onshore"'
        ),
        "pools.v.vendor: expected string, got integer 3",
    ),
    (
        "empty vendor",
        doc(
            pools='[pools.inhouse]\n[pools.v]\nkind = "outsourced"\n'
            'vendor = " "\nlocation = "onshore"'
        ),
        "pools.v.vendor: must not be empty",
    ),
    (
        "inhouse with vendor",
        doc(pools='[pools.inhouse]\nvendor = "X"'),
        'pools.inhouse.vendor: only allowed when kind = "outsourced"',
    ),
    (
        "inhouse with location",
        doc(pools='[pools.inhouse]\nlocation = "onshore"'),
        'pools.inhouse.location: only allowed when kind = "outsourced"',
    ),
    (
        "pool open type",
        doc(pools='[pools.inhouse]\nopen = "yes"'),
        "pools.inhouse.open: expected boolean, got string 'yes'",
    ),
    (
        "unknown pool key",
        doc(pools='[pools.inhouse]\nlocaton = "x"'),
        "pools.inhouse.locaton: unknown key; allowed keys: hours, kind, location, name, open, regions, vendor",
    ),
    # queue ids and channels
    (
        "bad queue id",
        doc(queues=queue('"q:1"')),
        f"queues.\"q:1\": invalid queue id 'q:1': {ID_RULE}",
    ),
    (
        "unknown queue key",
        doc(queues=queue(aging="30")),
        "queues.q1.aging: unknown key; allowed keys: aging_s, channel, channels, closed_queue, "
        "hours, max_size, name, offer_timeout_s, overflow, overflow_queue, pools, skills, sla, "
        "stages, strategy, when_closed, when_full, wrap_up_s",
    ),
    (
        "channel and channels",
        doc(queues=queue(channels='["voice"]')),
        "queues.q1.channel: use either channel or channels, not both",
    ),
    (
        "no channel",
        doc(queues=queue(channel=None)),
        'queues.q1.channels: required (or channel = "<name>")',
    ),
    (
        "unknown channel",
        doc(queues=queue(channel='"fax"')),
        f"queues.q1.channel: unknown channel 'fax'; tenant channels: {CHANNELS}",
    ),
    (
        "unknown channel in list",
        doc(queues=queue(channel=None, channels='["voice", "fax"]')),
        f"queues.q1.channels[1]: unknown channel 'fax'; tenant channels: {CHANNELS}",
    ),
    (
        "empty channels",
        doc(queues=queue(channel=None, channels="[]")),
        "queues.q1.channels: must list at least one channel",
    ),
    (
        "duplicate queue channel",
        doc(queues=queue(channel=None, channels='["chat", "chat"]')),
        "queues.q1.channels[1]: channel 'chat' is listed twice",
    ),
    (
        "channel outside tenant list",
        doc(tenant='id = "t1"\nchannels = ["chat"]', queues=queue()),
        "queues.q1.channel: unknown channel 'voice'; tenant channels: chat",
    ),
    (
        "channel type",
        doc(queues=queue(channel='["voice"]')),
        "queues.q1.channel: expected string, got array",
    ),
    # skills
    (
        "bad skill id",
        doc(queues=queue(skills='{ "bill ing" = 2 }')),
        f"queues.q1.skills.\"bill ing\": invalid skill id 'bill ing': {ID_RULE}",
    ),
    (
        "skill level 0",
        doc(queues=queue(skills="{ billing = 0 }")),
        "queues.q1.skills.billing: must be between 1 and 5",
    ),
    (
        "skill level 6",
        doc(queues=queue(skills="{ billing = 6 }")),
        "queues.q1.skills.billing: must be between 1 and 5",
    ),
    (
        "skill level float",
        doc(queues=queue(skills="{ billing = 2.5 }")),
        "queues.q1.skills.billing: expected integer, got float 2.5",
    ),
    (
        "skill level bool",
        doc(queues=queue(skills="{ billing = true }")),
        "queues.q1.skills.billing: expected integer, got boolean True",
    ),
    (
        "skills type",
        doc(queues=queue(skills='["billing"]')),
        "queues.q1.skills: expected table, got array",
    ),
    # stages
    (
        "stage 0 needs pools",
        doc(queues=queue(pools=None)),
        "queues.q1.pools: required: stage 0 needs at least one pool",
    ),
    (
        "stage 0 empty pools",
        doc(queues=queue(pools="[]")),
        "queues.q1.pools: stage 0 needs at least one pool",
    ),
    (
        "overflow without pools",
        doc(queues=queue(pools=None, tail=overflow('after_s = 5\npools = ["vendor"]'))),
        "queues.q1.pools: required: stage 0 needs at least one pool",
    ),
    (
        "unknown stage pool",
        doc(queues=queue(pools='["inhouse", "ghost"]')),
        "queues.q1.pools[1]: unknown pool 'ghost'; defined pools: inhouse, vendor, far",
    ),
    (
        "unknown overflow pool",
        doc(queues=queue(tail=overflow('after_s = 5\npools = ["ghost"]'))),
        "queues.q1.overflow[0].pools[0]: unknown pool 'ghost'; defined pools: inhouse, vendor, far",
    ),
    (
        "pool repeated across stages",
        doc(queues=queue(tail=overflow('after_s = 5\npools = ["vendor", "inhouse"]'))),
        "queues.q1.overflow[0].pools[1]: pool 'inhouse' is repeated; "
        "each pool opens at one stage only",
    ),
    (
        "pool repeated in stage",
        doc(queues=queue(pools='["inhouse", "inhouse"]')),
        "queues.q1.pools[1]: pool 'inhouse' is repeated; each pool opens at one stage only",
    ),
    (
        "after_s zero",
        doc(
            queues=queue(
                "billing_voice",
                tail=overflow(
                    'after_s = 30\npools = ["vendor"]',
                    'after_s = 0\npools = ["far"]',
                    qid="billing_voice",
                ),
            )
        ),
        "queues.billing_voice.overflow[1].after_s: must be > 0",
    ),
    (
        "after_s negative",
        doc(queues=queue(tail=overflow('after_s = -5\npools = ["vendor"]'))),
        "queues.q1.overflow[0].after_s: must be > 0",
    ),
    (
        "after_s missing",
        doc(queues=queue(tail=overflow('pools = ["vendor"]'))),
        "queues.q1.overflow[0].after_s: required",
    ),
    (
        "after_s not increasing",
        doc(
            queues=queue(
                tail=overflow('after_s = 60\npools = ["vendor"]', 'after_s = 60\npools = ["far"]')
            )
        ),
        "queues.q1.overflow[1].after_s: must be greater than the previous stage's after_s (60)",
    ),
    (
        "after_s type",
        doc(queues=queue(tail=overflow('after_s = "30"\npools = ["vendor"]'))),
        "queues.q1.overflow[0].after_s: expected number, got string '30'",
    ),
    (
        "stage must widen",
        doc(queues=queue(tail=overflow("after_s = 30"))),
        "queues.q1.overflow[0]: adds no pool and does not lower min_proficiency; "
        "each stage must widen",
    ),
    (
        "stage same proficiency does not widen",
        doc(
            queues=queue(
                tail=overflow(
                    'after_s = 30\npools = ["vendor"]\nmin_proficiency = 2',
                    "after_s = 60\nmin_proficiency = 2",
                )
            )
        ),
        "queues.q1.overflow[1]: adds no pool and does not lower min_proficiency; "
        "each stage must widen",
    ),
    (
        "min_proficiency range",
        doc(queues=queue(tail=overflow("after_s = 30\nmin_proficiency = 0"))),
        "queues.q1.overflow[0].min_proficiency: must be between 1 and 5",
    ),
    (
        "min_proficiency increases",
        doc(
            queues=queue(
                tail=overflow(
                    'after_s = 30\npools = ["vendor"]\nmin_proficiency = 2',
                    'after_s = 60\npools = ["far"]\nmin_proficiency = 3',
                )
            )
        ),
        "queues.q1.overflow[1].min_proficiency: must not be greater than the previous stage's "
        "min_proficiency (2); stages only widen",
    ),
    (
        "unknown stage key",
        doc(queues=queue(tail=overflow('after = 30\npools = ["vendor"]'))),
        "queues.q1.overflow[0].after: unknown key; allowed keys: after_s, estimated_wait_s, "
        "min_proficiency, pools, when_unstaffed",
    ),
    (
        "stages with pools",
        doc(queues=queue(tail='[[queues.q1.stages]]\npools = ["vendor"]\n')),
        "queues.q1.stages: cannot be combined with pools/overflow; use one form",
    ),
    (
        "stages with overflow",
        doc(
            queues=queue(
                pools=None,
                stages='[{ pools = ["inhouse"] }]',
                tail=overflow('after_s = 5\npools = ["far"]'),
            )
        ),
        "queues.q1.stages: cannot be combined with pools/overflow; use one form",
    ),
    (
        "empty stages",
        doc(queues=queue(pools=None, stages="[]")),
        "queues.q1.stages: must have at least one stage",
    ),
    (
        "stage 0 after_s",
        doc(queues=queue(pools=None, stages='[{ after_s = 5, pools = ["inhouse"] }]')),
        "queues.q1.stages[0].after_s: must be 0: stage 0 opens at once",
    ),
    (
        "stages[0] without pools",
        doc(queues=queue(pools=None, stages="[{ min_proficiency = 2 }]")),
        "queues.q1.stages[0].pools: required: stage 0 needs at least one pool",
    ),
    (
        "stages[1] after_s",
        doc(
            queues=queue(
                pools=None, stages='[{ pools = ["inhouse"] }, { after_s = 0, pools = ["far"] }]'
            )
        ),
        "queues.q1.stages[1].after_s: must be > 0",
    ),
    (
        "stage entry type",
        doc(queues=queue(pools=None, stages='["inhouse"]')),
        "queues.q1.stages[0]: expected table, got string 'inhouse'",
    ),
    # queue scalars
    (
        "strategy",
        doc(queues=queue(strategy='"round_robin"')),
        "queues.q1.strategy: must be one of longest_idle, least_occupied, highest_proficiency, "
        "got 'round_robin'",
    ),
    ("aging_s zero", doc(queues=queue(aging_s="0")), "queues.q1.aging_s: must be > 0"),
    (
        "aging_s bool",
        doc(queues=queue(aging_s="true")),
        "queues.q1.aging_s: expected number, got boolean True",
    ),
    ("aging_s nan", doc(queues=queue(aging_s="nan")), "queues.q1.aging_s: must be a finite number"),
    (
        "offer_timeout_s zero",
        doc(queues=queue(offer_timeout_s="0")),
        "queues.q1.offer_timeout_s: must be > 0",
    ),
    ("wrap_up_s negative", doc(queues=queue(wrap_up_s="-1")), "queues.q1.wrap_up_s: must be >= 0"),
    ("max_size zero", doc(queues=queue(max_size="0")), "queues.q1.max_size: must be >= 1"),
    (
        "max_size float",
        doc(queues=queue(max_size="10.0")),
        "queues.q1.max_size: expected integer, got float 10.0",
    ),
    (
        "when_full value",
        doc(queues=queue(max_size="5", when_full='"drop"')),
        "queues.q1.when_full: must be one of reject, overflow, got 'drop'",
    ),
    (
        "when_full without max_size",
        doc(queues=queue(when_full='"reject"')),
        "queues.q1.when_full: has no effect without max_size",
    ),
    (
        "overflow needs queue",
        doc(queues=queue(max_size="5", when_full='"overflow"')),
        'queues.q1.overflow_queue: required when when_full = "overflow"',
    ),
    (
        "overflow unknown queue",
        doc(queues=queue(max_size="5", when_full='"overflow"', overflow_queue='"nope"')),
        "queues.q1.overflow_queue: unknown queue 'nope'; defined queues: q1",
    ),
    (
        "overflow to itself",
        doc(queues=queue(max_size="5", when_full='"overflow"', overflow_queue='"q1"')),
        "queues.q1.overflow_queue: must name another queue, not 'q1' itself",
    ),
    (
        "overflow_queue without overflow",
        doc(queues=queue(overflow_queue='"q2"') + queue("q2")),
        'queues.q1.overflow_queue: only allowed when when_full = "overflow"',
    ),
    (
        "overflow target channel",
        doc(
            queues=queue(max_size="5", when_full='"overflow"', overflow_queue='"q2"')
            + queue("q2", channel='"chat"')
        ),
        "queues.q1.overflow_queue: queue 'q2' does not serve channel 'voice'",
    ),
    (
        "overflow cycle",
        doc(
            queues=queue(max_size="5", when_full='"overflow"', overflow_queue='"q2"')
            + queue("q2", max_size="5", when_full='"overflow"', overflow_queue='"q1"')
        ),
        "queues.q1.overflow_queue: overflow cycle: q1 -> q2 -> q1",
    ),
    (
        "overflow cycle further down a chain",
        doc(
            queues=queue("q0", max_size="5", when_full='"overflow"', overflow_queue='"q1"')
            + queue("q1", max_size="5", when_full='"overflow"', overflow_queue='"q2"')
            + queue("q2", max_size="5", when_full='"overflow"', overflow_queue='"q3"')
            + queue("q3", max_size="5", when_full='"overflow"', overflow_queue='"q1"')
        ),
        "queues.q1.overflow_queue: overflow cycle: q1 -> q2 -> q3 -> q1",
    ),
    ("name type", doc(queues=queue(name="1")), "queues.q1.name: expected string, got integer 1"),
    # sla
    (
        "sla threshold",
        doc(queues=queue(sla="{ threshold_s = 0 }")),
        "queues.q1.sla.threshold_s: must be > 0",
    ),
    (
        "sla target zero",
        doc(queues=queue(sla="{ target = 0 }")),
        'queues.q1.sla.target: must be in (0, 1] or a percentage like "80%"',
    ),
    (
        "sla target above one",
        doc(queues=queue(sla="{ target = 80 }")),
        'queues.q1.sla.target: must be in (0, 1] or a percentage like "80%"',
    ),
    (
        "sla target percent above 100",
        doc(queues=queue(sla='{ target = "150%" }')),
        'queues.q1.sla.target: must be in (0, 1] or a percentage like "80%"',
    ),
    (
        "sla target text",
        doc(queues=queue(sla='{ target = "most" }')),
        "queues.q1.sla.target: must be in (0, 1] or a percentage like \"80%\", got 'most'",
    ),
    (
        "sla target bool",
        doc(queues=queue(sla="{ target = true }")),
        'queues.q1.sla.target: expected number in (0, 1] or percentage string like "80%", '
        "got boolean True",
    ),
    (
        "sla unknown key",
        doc(queues=queue(sla="{ threshold = 20 }")),
        "queues.q1.sla.threshold: unknown key; allowed keys: calendar, escalation, "
        "first_response_s, priority, resolution_s, target, threshold_s, warn_at",
    ),
    # routing
    (
        "routing unknown key",
        doc(top="[routing]\nmax_missed = 3"),
        "routing.max_missed: unknown key; allowed keys: cost_currency, exchange_rates, "
        "exclusive_channels, expected_handle_s, fallback_queue, max_missed_offers, "
        "prefer_last_agent, preferred_agent_s, presence_timeout_s, transfer_wait_s, wrap_up_s",
    ),
    (
        "cost currency not a code",
        doc(top='[routing]\ncost_currency = "euro"'),
        "routing.cost_currency: bad currency 'euro': an ISO 4217 code, e.g. \"EUR\"",
    ),
    (
        "exchange rates without a cost currency",
        doc(top="[routing]\nexchange_rates = { USD = 0.9 }"),
        "routing.exchange_rates: only allowed with cost_currency",
    ),
    (
        "exchange rate not positive",
        doc(top='[routing]\ncost_currency = "EUR"\nexchange_rates = { USD = 0 }'),
        "routing.exchange_rates.USD: must be > 0 (EUR per USD)",
    ),
    (
        "max_missed_offers negative",
        doc(top="[routing]\nmax_missed_offers = -1"),
        "routing.max_missed_offers: must be >= 0",
    ),
    (
        "max_missed_offers float",
        doc(top="[routing]\nmax_missed_offers = 2.0"),
        "routing.max_missed_offers: expected integer, got float 2.0",
    ),
    (
        "max_missed_offers bool",
        doc(top="[routing]\nmax_missed_offers = false"),
        "routing.max_missed_offers: expected integer, got boolean False",
    ),
    (
        "presence_timeout_s negative",
        doc(top="[routing]\npresence_timeout_s = -1"),
        "routing.presence_timeout_s: must be >= 0",
    ),
    (
        "exclusive channel unknown",
        doc(top='[routing]\nexclusive_channels = ["voice", "fax"]'),
        f"routing.exclusive_channels[1]: unknown channel 'fax'; tenant channels: {CHANNELS}",
    ),
    (
        "wrap_up channel unknown",
        doc(top="[routing]\nwrap_up_s = { fax = 10 }"),
        f"routing.wrap_up_s.fax: unknown channel 'fax'; tenant channels: {CHANNELS}",
    ),
    (
        "wrap_up negative",
        doc(top="[routing]\nwrap_up_s = { chat = -1 }"),
        "routing.wrap_up_s.chat: must be >= 0",
    ),
    (
        "wrap_up type",
        doc(top='[routing]\nwrap_up_s = { chat = "15s" }'),
        "routing.wrap_up_s.chat: expected number, got string '15s'",
    ),
    (
        "preferred_agent_s negative",
        doc(top="[routing]\npreferred_agent_s = -1"),
        "routing.preferred_agent_s: must be >= 0",
    ),
    (
        "transfer_wait_s negative",
        doc(top="[routing]\ntransfer_wait_s = -0.5"),
        "routing.transfer_wait_s: must be >= 0",
    ),
    (
        "prefer_last_agent type",
        doc(top='[routing]\nprefer_last_agent = "yes"'),
        "routing.prefer_last_agent: expected boolean, got string 'yes'",
    ),
    ("routing type", doc(top="routing = 3"), "routing: expected table, got integer 3"),
    # retention
    (
        "finished_contact_s",
        doc(top="[retention]\nfinished_contact_s = 0"),
        "retention.finished_contact_s: must be > 0",
    ),
    (
        "idempotency_s",
        doc(top="[retention]\nidempotency_s = -1"),
        "retention.idempotency_s: must be > 0",
    ),
    (
        "stream_max_len small",
        doc(top="[retention]\nstream_max_len = 999"),
        "retention.stream_max_len: must be >= 1000",
    ),
    (
        "stream_max_len float",
        doc(top="[retention]\nstream_max_len = 1e6"),
        "retention.stream_max_len: expected integer, got float 1000000.0",
    ),
    (
        "retention unknown key",
        doc(top="[retention]\nkeep_s = 5"),
        "retention.keep_s: unknown key; allowed keys: finished_contact_s, idempotency_s, "
        "stream_max_len",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_message(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


def test_case_ids_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


# -- TOML syntax and files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tenant\nid = "t1"\n',
            "line 1, column 8: invalid TOML: Expected ']' at the end of a table declaration",
        ),
        (
            '[tenant]\nid = "t1"\nid = "t2"\n',
            "line 3, column 10: invalid TOML: Cannot overwrite a value",
        ),
        (
            '[tenant]\nid = "t1',
            "line 2 (end of document): invalid TOML: Unterminated string",
        ),
        ("[tenant]\nid = \n[pools.a]\n", "line 2, column 6: invalid TOML: Invalid value"),
    ],
)
def test_toml_syntax_error(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


def test_load_config_names_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(doc(queues=queue(aging_s="0")))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: queues.q1.aging_s: must be > 0"
    assert info.value.details == {"source": str(path), "path": "queues.q1.aging_s"}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path}: cannot read file: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[tenant]\nname = "Caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: line 2: not valid UTF-8"
