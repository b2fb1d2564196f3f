"""Start-up warning: a `notify` escalation naming a webhook subscription that
neither the config nor the admin API defines would page nobody."""

from __future__ import annotations

import logging

import pytest

from router.sla import unknown_notify

from ..factories import BASE_BODY
from .conftest import ApiFactory

ESCALATIONS = """
[queues.chat.sla]
threshold_s = 20

[[queues.chat.sla.escalation]]
on = "warning"
action = "notify"
webhook = "crm"

[[queues.chat.sla.escalation]]
on = "breach"
action = "notify"
webhook = "pager"
"""
WEBHOOKS = """
[[webhooks.subscriptions]]
id = "crm"
url = "https://crm.example.com/events"
events = ["contact.escalated"]
secret_env = "SB_TEST_CRM_SECRET"
"""


async def test_unknown_notify_webhook_is_logged_at_start(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SB_TEST_CRM_SECRET", "s3cret")
    with caplog.at_level(logging.WARNING, logger="switchboard"):
        api = await make_api(BASE_BODY + ESCALATIONS, extra=WEBHOOKS)
    found = [r.getMessage() for r in caplog.records if "escalation" in r.getMessage()]
    assert len(found) == 1, found
    assert f"tenant {api.tenant}: queues.chat.sla.escalation[1].webhook: " in found[0]
    assert "no webhook subscription 'pager'" in found[0]
    # a subscription made with the admin API counts too
    tenant = api.service.engines[api.tenant].tenant
    assert unknown_notify(tenant, {"crm", "pager"}) == []
    assert len(unknown_notify(tenant, set())) == 2
