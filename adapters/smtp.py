"""An SMTP or LMTP listener for the email channel, built on aiosmtpd.

Switchboard is the final destination of the mail it receives (a support
address's MX, or the LMTP target a mail server delivers to), so the handler
accepts any recipient and does not relay. Each message goes, as raw bytes with
its envelope, to an async callback the router supplies; the callback's SMTP
reply is what the client gets. The listener runs on the caller's event loop
(not aiosmtpd's thread-based Controller), so the callback can use the engine's
Redis client directly.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.mail import MAX_BYTES
from router.errors import PayloadError, PayloadTooLarge

__all__ = ["InboundMailHandler", "MailCallback", "start_smtp_server"]

log = logging.getLogger("switchboard.smtp")

# (raw message, envelope sender ("" for the null sender <>), envelope recipients)
# -> an SMTP reply such as "250 2.0.0 OK" (None: the handler answers 250 OK). The raw
# bytes begin with the Return-Path field the handler adds, so they may exceed
# max_bytes by up to 340 bytes: give parse_message a little headroom.
MailCallback = Callable[[bytes, str, list[str]], Awaitable[str | None]]

RECIPIENTS_MAX = 100  # RFC 5321 section 4.5.3.1.8: servers must accept at least 100
_REPLY = re.compile(r"[2-5][0-9][0-9](?: [^\r\n]*)?")

TOO_BIG = "552 5.3.4 Message too big for system"
TEMPORARY = "451 4.3.0 Temporary failure, please try again later"


class InboundMailHandler:
    """aiosmtpd handler: takes mail for any recipient and hands it to `callback`.

    Replies: 552 past `max_bytes` (checked again here, whatever the server class
    enforced); 554 when the callback raises PayloadError (the message is
    malformed: retrying cannot help); 451 when it raises anything else or
    answers something that is not an SMTP reply (the client keeps the message
    and retries). With `lmtp`, one reply per recipient, as RFC 2033 requires.
    """

    def __init__(
        self,
        callback: MailCallback,
        *,
        max_bytes: int = MAX_BYTES,
        lmtp: bool = False,
        add_return_path: bool = True,
    ) -> None:
        self.callback = callback
        self.max_bytes = max_bytes
        self.lmtp = lmtp
        # As the final delivery agent, record the envelope sender in a Return-Path
        # field (RFC 5321 section 4.4): it is how parse_message tells a bounce (<>).
        self.add_return_path = add_return_path

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= RECIPIENTS_MAX:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._reply(await self._deliver(envelope), len(envelope.rcpt_tos))

    async def _deliver(self, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.max_bytes:
            return TOO_BIG
        mail_from = _clean_address(envelope.mail_from or "")
        if self.add_return_path:
            raw = b"Return-Path: <" + mail_from.encode("utf-8", "replace") + b">\r\n" + raw
        try:
            status = await self.callback(raw, mail_from, list(envelope.rcpt_tos))
        except PayloadTooLarge:
            return TOO_BIG
        except PayloadError as exc:
            return "554 5.6.0 " + _clean_text(exc.message)
        except Exception:
            log.exception("inbound mail callback failed; answering 451 so the sender retries")
            return TEMPORARY
        if status is None:
            return "250 2.0.0 OK"
        if not _REPLY.fullmatch(status):
            log.error("inbound mail callback answered %r, not an SMTP reply", status[:100])
            return TEMPORARY
        return status

    def _reply(self, status: str, recipients: int) -> str:
        """LMTP answers DATA once per accepted recipient; SMTP once."""
        return "\r\n".join([status] * max(1, recipients)) if self.lmtp else status


def _clean_address(address: str) -> str:
    """The envelope sender, safe to put in a header: "<>" is "", no CR/LF, bounded."""
    address = re.sub(r"[\x00-\x1f\x7f]", "", address).strip()
    return "" if address == "<>" else address[:320]


def _clean_text(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", " ", text)[:200]


async def start_smtp_server(
    host: str,
    port: int,
    callback: MailCallback,
    lmtp: bool = False,
    *,
    max_bytes: int = MAX_BYTES,
    hostname: str | None = None,
    idle_timeout: float = 300,
) -> asyncio.Server:
    """Listen for SMTP (or LMTP) on host:port, on the running event loop.

    Port 0 picks a free port (`server.sockets[0].getsockname()[1]`). Stop it with
    `server.close(); await server.wait_closed()`. SMTPUTF8 is on (international
    addresses and headers arrive as UTF-8); `hostname` is the name in the greeting
    (default: this host's name, without a DNS lookup); `idle_timeout` closes idle
    connections.
    """
    loop = asyncio.get_running_loop()
    handler = InboundMailHandler(callback, max_bytes=max_bytes, lmtp=lmtp)
    protocol = LMTP if lmtp else SMTP
    name = hostname or socket.gethostname()

    def factory() -> SMTP:
        return protocol(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=name,
            ident="Switchboard",
            timeout=idle_timeout,
            loop=loop,
        )

    return await loop.create_server(factory, host, port)
