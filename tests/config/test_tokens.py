"""Config loader: API tokens and default queues, in both file shapes.

Token errors never repeat the offending value: what sits in a sha256 field by
mistake may be the token itself, and error messages end up in logs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from router.config import Config, load_config, load_config_text
from router.config.model import Role, TokenConfig
from router.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
SRC = "test.toml"
ID_RULE = "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
CHANNELS = "voice, chat, email, social, sms"
HOW = "make one with: printf %s TOKEN | sha256sum"
SHA_RULE = "must be the token's SHA-256 as 64 lowercase hex characters"
ONE_TENANT = "a token belongs to exactly one tenant"
ROLES = "ingest, agent, supervisor, admin"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


A, B, C = sha("token-a"), sha("token-b"), sha("token-c")

BASE = """
[tenant]
id = "t1"

[pools.inhouse]

[pools.vendor]
kind = "outsourced"
vendor = "costa-contact"
location = "nearshore"

[vendors.costa-contact]
name = "Costa Contact"
location = "nearshore"

[queues.calls]
channel = "voice"
pools = ["inhouse"]

[queues.messages]
channels = ["chat", "sms"]
pools = ["inhouse"]
"""


def token(
    sha256: str | None = A,
    roles: str | None = '["admin"]',
    *,
    raw_sha256: str | None = None,
    **keys: str,
) -> str:
    """One [[tokens]] entry; `raw_sha256` and `keys` are TOML source, None drops a key."""
    if raw_sha256 is None and sha256 is not None:
        raw_sha256 = f'"{sha256}"'
    fields: dict[str, str | None] = {"sha256": raw_sha256, "roles": roles}
    fields.update(keys)
    lines = [f"{k} = {v}" for k, v in fields.items() if v is not None]
    return "\n[[tokens]]\n" + "\n".join(lines) + "\n"


def load(text: str) -> Config:
    return load_config_text(text, SRC)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    return str(info.value)


# -- the demo file -------------------------------------------------------------------


def test_demo_tokens() -> None:
    tenant = load_config(DEMO).tenants["demo"]
    by_hash = {t.sha256: t for t in tenant.tokens}
    assert len(by_hash) == len(tenant.tokens) == 5
    assert {h: t.roles for h, t in by_hash.items()} == {
        sha("demo-admin"): {Role.ADMIN},
        sha("demo-ingest"): {Role.INGEST},
        sha("demo-agent"): {Role.AGENT},
        sha("demo-supervisor"): {Role.SUPERVISOR},
        sha("demo-vendor-offshore"): {Role.SUPERVISOR},
    }
    # The demo agent token is platform-wide, the supervisor sees every pool.
    assert by_hash[sha("demo-agent")].agent is None
    assert by_hash[sha("demo-supervisor")].pool is None
    assert by_hash[sha("demo-vendor-offshore")].pool == "offshore"
    assert all(t.name for t in tenant.tokens)


def test_demo_plain_tokens_are_only_in_comments() -> None:
    for line in DEMO.read_text().splitlines():
        code = line.split("#", 1)[0]
        for plain in (
            "demo-admin",
            "demo-ingest",
            "demo-agent",
            "demo-supervisor",
            "demo-vendor-offshore",
        ):
            assert f'"{plain}"' not in code


def test_demo_default_queues() -> None:
    tenant = load_config(DEMO).tenants["demo"]
    assert tenant.default_queues == {
        "voice": "billing_voice",
        "chat": "support_chat",
        "email": "support_email",
        "social": "social",
        "sms": "social",
    }
    for channel, qid in tenant.default_queues.items():
        assert channel in tenant.queues[qid].channels


def test_demo_duplicate_token_names_both_paths() -> None:
    text = DEMO.read_text().replace(sha("demo-supervisor"), sha("demo-admin"))
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "config/demo.toml")
    assert str(info.value) == (
        "config/demo.toml: tokens[3].sha256: duplicate token: same sha256 as "
        f"tokens[0].sha256; {ONE_TENANT}"
    )


# -- accepted forms ------------------------------------------------------------------


def test_no_tokens_and_no_default_queues() -> None:
    tenant = load(BASE).tenants["t1"]
    assert tenant.tokens == ()
    assert tenant.default_queues == {}


def test_token_fields() -> None:
    text = (
        BASE
        + token(A, '["agent"]', name='"Ana desk"', agent='"ana.1"')
        + token(B, '["supervisor", "ingest"]', pool='"vendor"')
        + token(C, '["agent", "supervisor", "admin"]', agent='"bo"', pool='"inhouse"')
    )
    assert load(text).tenants["t1"].tokens == (
        TokenConfig(A, frozenset({Role.AGENT}), name="Ana desk", agent="ana.1"),
        TokenConfig(B, frozenset({Role.SUPERVISOR, Role.INGEST}), pool="vendor"),
        TokenConfig(
            C, frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN}), agent="bo", pool="inhouse"
        ),
    )


def test_default_queues_accepted() -> None:
    text = BASE + '\n[default_queues]\nvoice = "calls"\nchat = "messages"\nsms = "messages"\n'
    assert load(text).tenants["t1"].default_queues == {
        "voice": "calls",
        "chat": "messages",
        "sms": "messages",
    }


def test_default_queue_on_tenant_channel() -> None:
    text = BASE.replace('id = "t1"', 'id = "t1"\nchannels = ["voice", "chat", "sms", "whatsapp"]')
    text += '\n[queues.wa]\nchannel = "whatsapp"\npools = ["inhouse"]\n'
    text += '\n[default_queues]\nwhatsapp = "wa"\n'
    assert load(text).tenants["t1"].default_queues == {"whatsapp": "wa"}


MULTI = f"""
[tenants.acme]
channels = ["voice", "chat"]

[tenants.acme.pools.inhouse]

[tenants.acme.queues.sales]
channel = "voice"
pools = ["inhouse"]

[tenants.acme.default_queues]
voice = "sales"

[[tenants.acme.tokens]]
sha256 = "{A}"
roles = ["admin"]

[[tenants.acme.tokens]]
sha256 = "{B}"
roles = ["supervisor"]
pool = "inhouse"

[tenants.globex]

[tenants.globex.pools.team]

[tenants.globex.queues.help]
channels = ["chat", "email"]
pools = ["team"]

[tenants.globex.default_queues]
chat = "help"
email = "help"

[[tenants.globex.tokens]]
sha256 = "{C}"
roles = ["ingest"]
"""


def test_multi_tenant_tokens_and_default_queues() -> None:
    config = load(MULTI)
    acme, globex = config.tenants["acme"], config.tenants["globex"]
    assert acme.tokens == (
        TokenConfig(A, frozenset({Role.ADMIN})),
        TokenConfig(B, frozenset({Role.SUPERVISOR}), pool="inhouse"),
    )
    assert globex.tokens == (TokenConfig(C, frozenset({Role.INGEST})),)
    assert acme.default_queues == {"voice": "sales"}
    assert globex.default_queues == {"chat": "help", "email": "help"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MULTI.replace(f'sha256 = "{C}"', f'sha256 = "{B}"'),
            "tenants.globex.tokens[0].sha256: duplicate token: same sha256 as "
            f"tenants.acme.tokens[1].sha256; {ONE_TENANT}",
        ),
        (
            MULTI.replace(f'sha256 = "{A}"', 'sha256 = "token-a"'),
            f"tenants.acme.tokens[0].sha256: {SHA_RULE} (got 7 characters); {HOW}",
        ),
        (
            MULTI.replace('pool = "inhouse"', 'pool = "team"'),
            "tenants.acme.tokens[1].pool: unknown pool 'team'; defined pools: inhouse",
        ),
        (
            MULTI.replace('roles = ["ingest"]', 'roles = ["ingest", "root"]'),
            f"tenants.globex.tokens[0].roles[1]: must be one of {ROLES}, got 'root'",
        ),
        (
            MULTI.replace('voice = "sales"', 'chat = "sales"'),
            "tenants.acme.default_queues.chat: queue 'sales' does not serve channel 'chat'; "
            "its channels: voice",
        ),
        (
            MULTI.replace('email = "help"', 'fax = "help"'),
            f"tenants.globex.default_queues.fax: unknown channel 'fax'; tenant channels: {CHANNELS}",
        ),
        (
            MULTI.replace(
                "[tenants.acme.default_queues]", '[tenants.acme.default_queues]\nx = "y"'
            ),
            "tenants.acme.default_queues.x: unknown channel 'x'; tenant channels: voice, chat",
        ),
        (
            MULTI + f'\n[[tokens]]\nsha256 = "{sha("x")}"\nroles = ["admin"]\n',
            "tokens: cannot be combined with [tenants.<id>]; move it into the tenant's table",
        ),
        (
            MULTI + '\n[default_queues]\nvoice = "sales"\n',
            "default_queues: cannot be combined with [tenants.<id>]; "
            "move it into the tenant's table",
        ),
    ],
)
def test_multi_tenant_errors(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


# -- one exact message per rule --------------------------------------------------------

CASES: list[tuple[str, str, str]] = [
    # tokens: shape
    (
        "tokens not an array",
        BASE + "\n[tokens]\n",
        "tokens: expected array of tables ([[tokens]]), got table",
    ),
    (
        "tokens entry not a table",
        BASE.replace("[tenant]", 'tokens = ["s3cret"]\n[tenant]'),
        "tokens[0]: expected table, got string",
    ),
    (
        "unknown token key",
        BASE + token(token='"s3cret"'),
        "tokens[0].token: unknown key; allowed keys: agent, burst, name, pool, requests_per_s, roles, sha256",
    ),
    ("token name type", BASE + token(name="1"), "tokens[0].name: expected string, got integer 1"),
    # tokens: sha256
    (
        "sha256 missing",
        BASE + token(None),
        f"tokens[0].sha256: required: the token's SHA-256 as 64 lowercase hex characters; {HOW}",
    ),
    (
        "sha256 too short",
        BASE + token(A[:63]),
        f"tokens[0].sha256: {SHA_RULE} (got 63 characters); {HOW}",
    ),
    (
        "sha256 too long",
        BASE + token(A + "0"),
        f"tokens[0].sha256: {SHA_RULE} (got 65 characters); {HOW}",
    ),
    (
        "sha256 uppercase",
        BASE + token(A.upper()),
        f"tokens[0].sha256: {SHA_RULE} (got uppercase hex); {HOW}",
    ),
    (
        "sha256 not hex",
        BASE + token("g" * 64),
        f"tokens[0].sha256: {SHA_RULE} (got characters other than 0-9 a-f); {HOW}",
    ),
    (
        "sha256 plain token",
        BASE + token(B) + token("demo-admin"),
        f"tokens[1].sha256: {SHA_RULE} (got 10 characters); {HOW}",
    ),
    (
        "sha256 type",
        BASE + token(raw_sha256="12"),
        "tokens[0].sha256: expected string, got integer",
    ),
    (
        "sha256 duplicate",
        BASE + token(A) + token(B) + token(A, '["ingest"]'),
        f"tokens[2].sha256: duplicate token: same sha256 as tokens[0].sha256; {ONE_TENANT}",
    ),
    # tokens: roles
    (
        "roles missing",
        BASE + token(roles=None),
        f"tokens[0].roles: required: a non-empty array of {ROLES}",
    ),
    (
        "roles empty",
        BASE + token(roles="[]"),
        "tokens[0].roles: must list at least one role",
    ),
    (
        "roles not an array",
        BASE + token(roles='"admin"'),
        "tokens[0].roles: expected array, got string 'admin'",
    ),
    (
        "unknown role",
        BASE + token(A) + token(B) + token(C, '["agent", "operator"]'),
        f"tokens[2].roles[1]: must be one of {ROLES}, got 'operator'",
    ),
    (
        "role type",
        BASE + token(roles="[1]"),
        "tokens[0].roles[0]: expected string, got integer 1",
    ),
    (
        "role listed twice",
        BASE + token(roles='["agent", "admin", "agent"]'),
        "tokens[0].roles[2]: role 'agent' is listed twice",
    ),
    # tokens: agent and pool
    (
        "agent without agent role",
        BASE + token(roles='["supervisor"]', agent='"ana"'),
        'tokens[0].agent: only allowed when roles include "agent"',
    ),
    (
        "bad agent id",
        BASE + token(roles='["agent"]', agent='"ana maria"'),
        f"tokens[0].agent: invalid agent id 'ana maria': {ID_RULE}",
    ),
    (
        "agent type",
        BASE + token(roles='["agent"]', agent="7"),
        "tokens[0].agent: expected string, got integer 7",
    ),
    (
        "pool without supervisor role",
        BASE + token(roles='["agent", "admin"]', pool='"inhouse"'),
        'tokens[0].pool: only allowed when roles include "supervisor"',
    ),
    (
        "unknown token pool",
        BASE + token(roles='["supervisor"]', pool='"far"'),
        "tokens[0].pool: unknown pool 'far'; defined pools: inhouse, vendor",
    ),
    (
        "token pool type",
        BASE + token(roles='["supervisor"]', pool='["inhouse"]'),
        "tokens[0].pool: expected string, got array",
    ),
    # default queues
    (
        "default_queues not a table",
        BASE.replace("[tenant]", 'default_queues = ["calls"]\n[tenant]'),
        "default_queues: expected table, got array",
    ),
    (
        "default queue unknown channel",
        BASE + '\n[default_queues]\nfax = "calls"\n',
        f"default_queues.fax: unknown channel 'fax'; tenant channels: {CHANNELS}",
    ),
    (
        "default queue quoted channel",
        BASE + '\n[default_queues]\n"live chat" = "messages"\n',
        f"default_queues.\"live chat\": unknown channel 'live chat'; tenant channels: {CHANNELS}",
    ),
    (
        "default queue outside tenant channels",
        BASE.replace('id = "t1"', 'id = "t1"\nchannels = ["voice", "chat", "sms"]')
        + '\n[default_queues]\nemail = "messages"\n',
        "default_queues.email: unknown channel 'email'; tenant channels: voice, chat, sms",
    ),
    (
        "default queue unknown queue",
        BASE + '\n[default_queues]\nvoice = "billing"\n',
        "default_queues.voice: unknown queue 'billing'; defined queues: calls, messages",
    ),
    (
        "default queue wrong channel",
        BASE + '\n[default_queues]\nvoice = "calls"\nchat = "calls"\n',
        "default_queues.chat: queue 'calls' does not serve channel 'chat'; its channels: voice",
    ),
    (
        "default queue type",
        BASE + '\n[default_queues]\nvoice = ["calls"]\n',
        "default_queues.voice: expected string, got array",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_message(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


def test_case_ids_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "text",
    [
        BASE + token("s3cret-token"),
        BASE + token("S3CRET" * 10 + "abcd"),
        BASE + token(raw_sha256='{ value = "s3cret" }'),
        BASE.replace("[tenant]", 'tokens = "s3cret"\n[tenant]'),
        BASE.replace("[tenant]", 'tokens = ["s3cret"]\n[tenant]'),
    ],
)
def test_token_errors_do_not_echo_the_value(text: str) -> None:
    message = error_of(text).lower()
    assert "s3cret" not in message


def test_error_details_carry_the_path() -> None:
    with pytest.raises(ConfigError) as info:
        load(BASE + token(A) + token(A))
    assert info.value.details == {"source": SRC, "path": "tokens[1].sha256"}


# -- rate limits and the reload fallback ------------------------------------------------


def test_limits_default_per_tenant_and_per_token() -> None:
    text = BASE + "\n[limits]\nrequests_per_s = 5\n" + token(A) + token(B, requests_per_s="50")
    text += token(C, burst="3")
    tenant = load(text).tenants["t1"]
    a, b, c = tenant.tokens
    assert tenant.limits.bucket(a) == (5, 10)  # burst defaults to two seconds' worth
    assert tenant.limits.bucket(b) == (50, 100)
    assert tenant.limits.bucket(c) == (5, 3)
    assert load(BASE).tenants["t1"].limits.bucket() == (100, 200)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n[limits]\nrequests_per_s = 0\n", "limits.requests_per_s: must be > 0"),
        ("\n[limits]\nburst = 0\n", "limits.burst: must be >= 1"),
        ("\n[limits]\nrate = 3\n", "limits.rate: unknown key; allowed keys: burst, requests_per_s"),
        (token(A, requests_per_s='"fast"'), "tokens[0].requests_per_s: expected number"),
        ('\n[routing]\nfallback_queue = "nope"\n', "routing.fallback_queue: unknown queue 'nope'"),
    ],
)
def test_limit_and_fallback_errors_name_the_key(extra: str, message: str) -> None:
    assert error_of(BASE + extra).startswith(f"{SRC}: {message}")


def test_fallback_serves_the_channel_or_the_default_queue_does() -> None:
    text = BASE + '\n[routing]\nfallback_queue = "messages"\n[default_queues]\nvoice = "calls"\n'
    tenant = load(text).tenants["t1"]
    assert tenant.fallback_for("chat") == "messages"
    assert tenant.fallback_for("voice") == "calls"  # messages does not take voice
    assert tenant.fallback_for("email") is None
