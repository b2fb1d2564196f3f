"""SMTP/LMTP listener: a real smtplib client against a real listener on a free port."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.inbound import Kind
from adapters.mail import parse_message
from adapters.smtp import InboundMailHandler, start_smtp_server
from router.errors import PayloadError, PayloadTooLarge

FIXTURES = Path(__file__).parent / "fixtures" / "email"
LIMIT = 64 * 1024


@dataclass
class Inbox:
    """The router's side, as a test double: records each delivery, answers `reply`."""

    reply: str | None = "250 2.0.0 Ok: queued"
    error: Exception | None = None
    received: list[tuple[bytes, str, list[str]]] = field(default_factory=list)

    async def __call__(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str | None:
        self.received.append((raw, mail_from, rcpt_tos))
        if self.error is not None:
            raise self.error
        return self.reply


Listener = Callable[..., Awaitable[int]]


@pytest.fixture
async def listen() -> AsyncIterator[Listener]:
    """`port = await listen(inbox, lmtp=False)`: a listener on a free port, closed afterwards."""
    servers: list[asyncio.Server] = []

    async def start(inbox: Inbox, lmtp: bool = False) -> int:
        server = await start_smtp_server(
            "127.0.0.1", 0, inbox, lmtp=lmtp, max_bytes=LIMIT, hostname="mx.test"
        )
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def client(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10)


async def test_a_message_reaches_the_callback_with_its_envelope(listen: Listener) -> None:
    inbox = Inbox()
    port = await listen(inbox)
    raw = (FIXTURES / "alternative.eml").read_bytes()

    def send() -> dict[str, tuple[int, bytes]]:
        with client(port) as smtp:
            return smtp.sendmail(
                "maria.lopez@example.org",
                ["support@switchboard.example", "any-address@elsewhere.example"],
                raw,
            )

    assert await asyncio.to_thread(send) == {}  # every recipient accepted
    [(got, mail_from, rcpt_tos)] = inbox.received
    assert mail_from == "maria.lopez@example.org"
    assert rcpt_tos == ["support@switchboard.example", "any-address@elsewhere.example"]
    # Byte for byte what the client sent, behind the Return-Path the final delivery adds.
    assert got == b"Return-Path: <maria.lopez@example.org>\r\n" + raw
    item = parse_message(got)
    assert item.kind is Kind.MESSAGE
    assert item.external_id == "4f6b8c2e-1d3a-4c55-9e2b-7a1f0c9d3e21@example.org"


async def test_the_null_sender_marks_the_message_as_a_bounce(listen: Listener) -> None:
    inbox = Inbox()
    port = await listen(inbox)
    plain = b"From: Someone <someone@example.com>\r\nSubject: hi\r\n\r\nhello\r\n"

    def send() -> None:
        with client(port) as smtp:
            smtp.sendmail("", ["support@switchboard.example"], plain)

    await asyncio.to_thread(send)
    [(got, mail_from, _)] = inbox.received
    assert mail_from == ""
    assert got.startswith(b"Return-Path: <>\r\n")
    assert parse_message(got).reason == "bounce"


async def test_the_callback_reply_is_the_smtp_reply(listen: Listener) -> None:
    inbox = Inbox(reply="250 2.0.0 Ok: queued as C42")
    port = await listen(inbox)

    def send() -> tuple[int, bytes]:
        with client(port) as smtp:
            smtp.ehlo()
            smtp.mail("a@example.com")
            smtp.rcpt("support@switchboard.example")
            return smtp.data(b"From: a@example.com\r\n\r\nhi\r\n")

    assert await asyncio.to_thread(send) == (250, b"2.0.0 Ok: queued as C42")


@pytest.mark.parametrize(
    ("error", "reply", "code", "text"),
    [
        (PayloadError("no sender: the message has no From address"), None, 554, b"no sender"),
        (PayloadTooLarge("too big"), None, 552, b"too big"),
        (RuntimeError("redis is down"), None, 451, b"try again"),
        (None, "not an smtp reply", 451, b"try again"),
        (None, None, 250, b"OK"),
    ],
)
async def test_failures_map_to_smtp_codes(
    listen: Listener,
    caplog: pytest.LogCaptureFixture,
    error: Exception | None,
    reply: str | None,
    code: int,
    text: bytes,
) -> None:
    inbox = Inbox(reply=reply, error=error)
    port = await listen(inbox)

    def send() -> tuple[int, bytes]:
        with client(port) as smtp:
            smtp.ehlo()
            smtp.mail("a@example.com")
            smtp.rcpt("support@switchboard.example")
            return smtp.data(b"From: a@example.com\r\n\r\nhi\r\n")

    with caplog.at_level(logging.ERROR, logger="switchboard.smtp"):
        got_code, got_text = await asyncio.to_thread(send)
    assert got_code == code
    assert text in got_text
    assert len(inbox.received) == 1
    assert bool(caplog.records) is (code == 451)  # a 451 is the server's fault: logged


async def test_oversized_data_is_refused_with_552(listen: Listener) -> None:
    inbox = Inbox()
    port = await listen(inbox)
    big = b"From: a@example.com\r\n\r\n" + (b"y" * 78 + b"\r\n") * 1000  # 80 KB

    def send() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        with client(port) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("size")
            # No SIZE= on MAIL FROM, so only the DATA itself can be refused.
            smtp.mail("a@example.com")
            smtp.rcpt("support@switchboard.example")
            too_big = smtp.data(big)
            smtp.rset()  # the session goes on: a small message still gets through
            smtp.mail("a@example.com")
            smtp.rcpt("support@switchboard.example")
            return too_big, smtp.data(b"From: a@example.com\r\n\r\nsmall\r\n")

    too_big, small = await asyncio.to_thread(send)
    assert too_big[0] == 552
    assert small[0] == 250
    assert [raw.endswith(b"small\r\n") for raw, _, _ in inbox.received] == [True]


async def test_declared_size_over_the_limit_is_refused_at_mail_from(listen: Listener) -> None:
    port = await listen(Inbox())

    def send() -> tuple[int, bytes]:
        with client(port) as smtp:
            smtp.ehlo()
            return smtp.mail("a@example.com", [f"SIZE={LIMIT + 1}"])

    code, _ = await asyncio.to_thread(send)
    assert code == 552


async def test_recipients_are_capped_at_100(listen: Listener) -> None:
    port = await listen(Inbox())

    def send() -> list[int]:
        with client(port) as smtp:
            smtp.ehlo()
            smtp.mail("a@example.com")
            return [smtp.rcpt(f"r{i}@example.com")[0] for i in range(101)]

    codes = await asyncio.to_thread(send)
    assert codes[:100] == [250] * 100
    assert codes[100] == 452


async def test_utf8_headers_arrive_intact_with_smtputf8(listen: Listener) -> None:
    inbox = Inbox()
    port = await listen(inbox)
    raw = "From: Zoë <zoë@exämple.com>\r\nSubject: café\r\n\r\nolá\r\n".encode()

    def send() -> None:
        with client(port) as smtp:
            smtp.sendmail("zoë@exämple.com", ["support@switchboard.example"], raw, ["SMTPUTF8"])

    await asyncio.to_thread(send)
    [(got, mail_from, _)] = inbox.received
    assert mail_from == "zoë@exämple.com"
    item = parse_message(got)
    assert (item.customer.name, item.subject, item.text) == ("Zoë", "café", "olá")


async def test_lmtp_delivery_with_smtplib(listen: Listener) -> None:
    inbox = Inbox()
    port = await listen(inbox, lmtp=True)
    raw = (FIXTURES / "reply.eml").read_bytes()

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", port, local_hostname="mta.test", timeout=10) as lmtp:
            return lmtp.sendmail("maria.lopez@example.org", ["support@switchboard.example"], raw)

    assert await asyncio.to_thread(send) == {}
    [(got, _, rcpt_tos)] = inbox.received
    assert got.endswith(raw) and rcpt_tos == ["support@switchboard.example"]


async def test_lmtp_answers_data_once_per_recipient(listen: Listener) -> None:
    """RFC 2033: after DATA, one reply per accepted recipient (smtplib reads only one)."""
    port = await listen(Inbox(reply="250 2.0.0 delivered"), lmtp=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> list[bytes]:
        lines = [await reader.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(await reader.readline())
        return lines

    try:
        assert (await reply())[0].startswith(b"220")
        for command in (
            b"LHLO mta.test",
            b"MAIL FROM:<a@example.com>",
            b"RCPT TO:<one@example.com>",
            b"RCPT TO:<two@example.com>",
            b"DATA",
        ):
            writer.write(command + b"\r\n")
            assert (await reply())[-1][:1] in (b"2", b"3"), command
        writer.write(b"From: a@example.com\r\n\r\nhello\r\n.\r\n")
        first = await asyncio.wait_for(reader.readline(), 5)
        second = await asyncio.wait_for(reader.readline(), 5)
        assert first == second == b"250 2.0.0 delivered\r\n"
        writer.write(b"QUIT\r\n")
        assert (await reply())[0].startswith(b"221")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_lmtp_refuses_smtp_greetings(listen: Listener) -> None:
    port = await listen(Inbox(), lmtp=True)

    def send() -> tuple[int, bytes]:
        with client(port) as smtp:
            return smtp.ehlo()

    code, _ = await asyncio.to_thread(send)
    assert code == 500


async def test_the_handler_enforces_its_own_limit_under_any_server() -> None:
    """Used with another aiosmtpd server (a Controller, a bigger data_size_limit)."""
    inbox = Inbox()
    handler = InboundMailHandler(inbox, max_bytes=100, lmtp=True)
    envelope = Envelope()
    envelope.mail_from = "a@example.com"
    envelope.rcpt_tos = ["one@example.com", "two@example.com"]
    envelope.original_content = b"From: a@example.com\r\n\r\n" + b"x" * 100
    server = SMTP(handler, hostname="mx.test")
    reply = await handler.handle_DATA(server, Session(asyncio.get_running_loop()), envelope)
    assert reply == "552 5.3.4 Message too big for system\r\n552 5.3.4 Message too big for system"
    assert inbox.received == []
