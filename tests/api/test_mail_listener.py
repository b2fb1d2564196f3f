"""`serve --smtp-port`: a mail server relays to Switchboard and the mail becomes a contact."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from pathlib import Path

from aiohttp import web

from router.api.context import SERVICE
from router.api.mail_listener import MailListener, listen_for_mail

from ..processes import free_port
from .conftest import ApiFactory

FIXTURES = Path(__file__).parent.parent / "adapters" / "fixtures" / "email"


async def test_relayed_mail_becomes_a_contact_and_garbage_is_refused(make_api: ApiFactory) -> None:
    api = await make_api()
    app = web.Application()
    app[SERVICE] = api.service
    port = free_port()
    running = listen_for_mail(MailListener("127.0.0.1", port, api.tenant))(app)
    await running.__anext__()
    try:
        raw = FIXTURES.joinpath("alternative.eml").read_bytes()

        def relay(message: bytes) -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo("mx.example.net")
                client.mail("maria.lopez@example.org")
                client.rcpt("support@demo.example")
                return client.data(message)

        code, reply = await asyncio.to_thread(relay, raw)
        assert code == 250, reply
        r = await api.client.get(
            "/v1/contacts",
            params={"external_id": "4f6b8c2e-1d3a-4c55-9e2b-7a1f0c9d3e21@example.org"},
            headers=api.auth("supervisor"),
        )
        found = (await r.json())["contacts"]
        assert len(found) == 1 and found[0]["channel"] == "email"
        assert found[0]["id"].encode() in reply
        code, reply = await asyncio.to_thread(relay, b"\x00\x01 not a message")
        assert code == 554, reply
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await running.__anext__()
