"""`[webhooks]` in the config: defaults, values, and exact error messages."""

from __future__ import annotations

import pytest

from router.config import load_config_text
from router.config.model import WebhooksConfig, WebhookSubscription
from router.errors import ConfigError

from ..factories import tenant_toml

SUB = '[[webhooks.subscriptions]]\nid = "crm"\nurl = "https://crm.example/hook"\n'
SUB += 'events = ["sla.*", "contact.assigned"]\nsecret_env = "CRM_SECRET"\n'


def _load(extra: str) -> WebhooksConfig:
    return load_config_text(tenant_toml("t1") + "\n" + extra, "sb.toml").tenants["t1"].webhooks


def test_defaults_and_values() -> None:
    assert _load("") == WebhooksConfig()
    got = _load(
        "[webhooks]\nmax_attempts = 5\ntimeout_s = 2.5\ndead_letter_days = 1\n"
        + "max_pending = 50\n"
        + SUB
        + SUB.replace('"crm"', '"ops"').replace('["sla.*", "contact.assigned"]', '["*", "*"]')
    )
    assert got.max_attempts == 5 and got.timeout_s == 2.5 and got.dead_letter_days == 1.0
    assert got.max_pending == 50 and WebhooksConfig().max_pending == 100_000
    assert got.subscriptions == (
        WebhookSubscription(
            "crm", "https://crm.example/hook", ("sla.*", "contact.assigned"), "CRM_SECRET"
        ),
        WebhookSubscription("ops", "https://crm.example/hook", ("*",), "CRM_SECRET"),
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[webhooks]\nretries = 3\n",
            "sb.toml: webhooks.retries: unknown key; allowed keys: "
            "dead_letter_days, max_attempts, max_pending, subscriptions, timeout_s",
        ),
        ("[webhooks]\nmax_pending = 0\n", "sb.toml: webhooks.max_pending: must be >= 1"),
        (
            "[webhooks]\nmax_pending = 10000001\n",
            "sb.toml: webhooks.max_pending: must be <= 10000000",
        ),
        (
            '[webhooks]\nmax_pending = "many"\n',
            "sb.toml: webhooks.max_pending: expected integer, got string 'many'",
        ),
        ("[webhooks]\nmax_attempts = 0\n", "sb.toml: webhooks.max_attempts: must be >= 1"),
        ("[webhooks]\nmax_attempts = 51\n", "sb.toml: webhooks.max_attempts: must be <= 50"),
        ("[webhooks]\ntimeout_s = 0\n", "sb.toml: webhooks.timeout_s: must be > 0"),
        ("[webhooks]\ntimeout_s = 61\n", "sb.toml: webhooks.timeout_s: must be <= 60"),
        ("[webhooks]\ndead_letter_days = -1\n", "sb.toml: webhooks.dead_letter_days: must be > 0"),
        (
            SUB.replace('"https://crm.example/hook"', '"ftp://x/"'),
            "sb.toml: webhooks.subscriptions[0].url: must be an http:// or https:// URL, got 'ftp://x/'",
        ),
        (
            SUB.replace('"https://crm.example/hook"', '"https:///x"'),
            "sb.toml: webhooks.subscriptions[0].url: has no host: 'https:///x'",
        ),
        (
            SUB.replace('["sla.*", "contact.assigned"]', "[]"),
            "sb.toml: webhooks.subscriptions[0].events: must list at least one event type ('*' for all)",
        ),
        (
            SUB.replace('"contact.assigned"', '"contact"'),
            "sb.toml: webhooks.subscriptions[0].events[1]: 'contact' is not an event type: use '*', "
            "a family such as 'sla.*', or a type such as 'contact.assigned'",
        ),
        (
            SUB.replace('"CRM_SECRET"', '"crm secret"'),
            "sb.toml: webhooks.subscriptions[0].secret_env: must name an environment variable "
            "(A-Z a-z 0-9 _), got 'crm secret'; the secret itself never goes in the file",
        ),
        (
            SUB.replace('secret_env = "CRM_SECRET"\n', 'secret = "x"\n'),
            "sb.toml: webhooks.subscriptions[0].secret: unknown key; allowed keys: events, id, "
            "secret_env, url",
        ),
        (
            SUB.replace('secret_env = "CRM_SECRET"\n', ""),
            "sb.toml: webhooks.subscriptions[0].secret_env: is required",
        ),
        (
            SUB.replace('"crm"', '"a b"'),
            "sb.toml: webhooks.subscriptions[0].id: invalid subscription id 'a b': must be 1-64 "
            "characters of A-Z a-z 0-9 _ . - starting with a letter or digit",
        ),
        (SUB + SUB, "sb.toml: webhooks.subscriptions[1].id: duplicate subscription id 'crm'"),
    ],
)
def test_errors_name_the_file_and_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(extra)
    assert str(err.value) == message
