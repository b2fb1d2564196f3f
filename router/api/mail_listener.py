"""`serve --smtp-port`: mail servers relay (SMTP) or deliver (LMTP) straight to us.

Each message is parsed by `adapters.mail` and handed to the tenant's
conversations, exactly as `POST /v1/channels/email` does. The SMTP reply says
what happened: 250 (queued or threaded), 554 for a malformed message (retrying
cannot help), 451 for anything temporary (the mail server keeps it and retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from adapters import mail
from adapters.smtp import start_smtp_server

from ..conversations import Conversations
from .context import SERVICE

log = logging.getLogger("switchboard.smtp")


@dataclass(frozen=True)
class MailListener:
    host: str
    port: int
    tenant: str
    lmtp: bool = False


def listen_for_mail(
    listener: MailListener,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that runs the listener with the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        service = app[SERVICE]

        async def deliver(raw: bytes, sender: str, recipients: list[str]) -> str:
            engine = service.engines[listener.tenant]
            # parsing costs about 2 us a byte: keep big messages off the event loop
            item = await asyncio.to_thread(mail.parse_message, raw, max_bytes=mail.MAX_BYTES + 1024)
            out = await Conversations(engine).receive(item)
            return f"250 2.0.0 OK {out.contact_id or 'recorded'} ({out.reason or out.status})"

        server = await start_smtp_server(listener.host, listener.port, deliver, listener.lmtp)
        kind = "LMTP" if listener.lmtp else "SMTP"
        log.info(
            "%s listener on %s:%d for tenant %s",
            kind,
            listener.host,
            listener.port,
            listener.tenant,
        )
        yield
        server.close()
        await server.wait_closed()

    return context
