"""Email adapter: real MIME fixtures in, normalized Inbound out; malformed bytes are PayloadError."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.inbound import TEXT_MAX, Attachment, Inbound, Kind
from adapters.mail import REFERENCES_MAX, html_to_text, parse_message
from router.errors import PayloadError, PayloadTooLarge
from router.model import SUBJECT_MAX

FIXTURES = Path(__file__).parent / "fixtures" / "email"
NAMES = sorted(p.name for p in FIXTURES.glob("*.eml"))


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> Inbound:
    return parse_message(load(name))


def message(*headers: str, body: str = "Hello, I need help.\r\n", ctype: str = "") -> bytes:
    """A minimal message: From, the given header lines, then the body."""
    head = ["From: Carla Customer <carla@example.com>", "To: support@switchboard.example"]
    head += list(headers)
    if ctype:
        head.append(f"Content-Type: {ctype}")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def with_headers(raw: bytes, *lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode() + raw


# --- the fixtures, one by one -----------------------------------------------------------


def test_every_fixture_is_normalized_as_email() -> None:
    assert len(NAMES) >= 11
    for name in NAMES:
        item = parse(name)
        assert (item.channel, item.provider, item.thread_key) == ("email", "smtp", None), name
        assert item.external_id and "<" not in item.external_id, name
        assert item.customer.email and "@" in item.customer.email, name
        assert item.text, name


def test_multipart_alternative_takes_the_plain_part_unflowed() -> None:
    item = parse("alternative.eml")
    assert item.kind is Kind.MESSAGE and item.reason == ""
    assert item.external_id == "4f6b8c2e-1d3a-4c55-9e2b-7a1f0c9d3e21@example.org"
    assert item.customer.name == "Maria Lopez"
    assert item.customer.email == "maria.lopez@example.org"  # domain lowercased
    assert item.subject == "My card was charged twice"
    assert item.text == (
        "Hello,\n\n"
        "I was charged twice for order #A-1042 on 30 April \u2013 once at 09:12 and again at "
        "09:13. Could you refund the second charge?\n\nThanks,\nMar\u00eda"
    )
    assert "<" not in item.text  # not the HTML branch
    assert item.language == "en-US"
    assert item.attributes == {
        "to": ["support@switchboard.example"],
        "cc": ["juan.lopez@example.org", "billing@example.org"],
        "date": "2024-05-02T10:15:03+02:00",
        "reply_to": ["maria+tickets@example.org"],
    }
    assert item.references == () and item.attachments == ()


def test_alternative_with_an_empty_plain_part_uses_the_html_part() -> None:
    body = (
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n \r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Only <b>here</b></p>\r\n--b--\r\n"
    )
    item = parse_message(message(body=body, ctype='multipart/alternative; boundary="b"'))
    assert item.text == "Only here"


def test_iso_8859_1_quoted_printable_body_and_q_encoded_subject() -> None:
    item = parse("latin1_qp.eml")
    assert item.subject == "Mi pedido no lleg\u00f3"
    assert item.customer.name == "Jos\u00e9 P\u00e9rez"
    assert item.text == (
        "Buenos d\u00edas:\n\nMi pedido n\u00ba 7731 no lleg\u00f3. \u00bfPueden ayudarme? "
        "El se\u00f1or del almac\u00e9n dijo que ya sali\u00f3.\n\nGracias,\nJos\u00e9"
    )
    assert item.language == "es-ES"


def test_windows_1252_body_keeps_smart_quotes_and_euro() -> None:
    item = parse("windows1252.eml")
    assert item.text == (
        "Hi team,\n\nThe invoice says \u201cpaid\u201d but I\u2019m still being asked for "
        "\u20ac49.90 \u2013 please check.\n\nRegards,\nZo\u00eb"
    )
    # A Message-ID folded onto its own line is still found.
    assert item.external_id is not None and item.external_id.startswith("AM7PR03MB6451C1E8")
    assert item.language == "en-GB"


def test_latin_1_label_is_read_as_windows_1252() -> None:
    raw = message(ctype="text/plain; charset=iso-8859-1", body="")
    item = parse_message(raw + b"\x80 5 \x93ok\x94 caf\xe9")
    assert item.text == "\u20ac 5 \u201cok\u201d caf\u00e9"


def test_rfc_2047_b_and_q_words_in_several_charsets() -> None:
    item = parse("encoded_subject.eml")
    assert (
        item.subject
        == "\u017dlu\u0165ou\u010dk\u00fd k\u016f\u0148 \u010de\u0161tina und \u00fcbel \u20ac"
    )
    assert item.customer.name == "Luk\u00e1\u0161 Dvo\u0159\u00e1k"
    assert (
        item.text
        == "Dobr\u00fd den,\nnefunguje mi p\u0159ihl\u00e1\u0161en\u00ed do \u00fa\u010dtu.\n\nLuk\u00e1\u0161"
    )


def test_attachments_keep_metadata_only() -> None:
    raw = load("attachment.eml")
    blobs = [
        base64.b64decode(m)
        for m in re.findall(rb"base64\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n\r?\n?--", raw)
    ]
    assert [b[:4] for b in blobs] == [b"%PDF", b"\x89PNG"]
    item = parse_message(raw)
    assert item.text == "Hello, the invoice and a screenshot of the error are attached.\n\nAna"
    assert item.attachments == (
        Attachment(
            name="fatura n\u00ba 42.pdf", content_type="application/pdf", size=len(blobs[0])
        ),
        Attachment(name="screenshot.png", content_type="image/png", size=len(blobs[1])),
    )
    assert "PDF" not in repr(item) and "PNG" not in repr(item)


def test_html_only_message_is_rendered_as_text() -> None:
    item = parse("html_only.eml")
    assert item.text == (
        "New message\n\n"
        "Name Kenji Watanabe\nOrder #B-2207\n\n"
        "Please change my delivery address to:\n2-3-1 Nishi-Shinjuku,\nTokyo 163-8001\n\n"
        "- Keep the same date\n- Leave it with the concierge & call me\n\n"
        "Price shown was \u20ac12 <incl. tax> \u2014 \u3042\u308a\u304c\u3068\u3046"
    )
    assert item.customer.name == "Kenji Watanabe via Contact Form"


def test_reply_references_are_newest_first() -> None:
    item = parse("reply.eml")
    assert item.kind is Kind.MESSAGE
    assert item.references == (
        "sb.1042.1715331600@switchboard.example",  # In-Reply-To
        "sb.1042.1715245200@switchboard.example",  # References, newest first, deduplicated
        "4f6b8c2e-1d3a-4c55-9e2b-7a1f0c9d3e21@example.org",
    )
    assert item.subject == "Re: [#1042] My card was charged twice"
    assert item.text.startswith(
        "Thank you, I can see the refund now. This is a long line that the mail client wrapped"
    )
    assert (
        "> Hello Mar\u00eda, we have refunded the duplicate charge. It can take 3 to 5 working"
        in (item.text)
    )


def test_out_of_office_is_an_ignored_auto_reply() -> None:
    item = parse("auto_reply.eml")
    assert (item.kind, item.reason) == (Kind.IGNORED, "auto_reply")
    assert item.references == ("sb.1077.1715583600@switchboard.example",)
    assert item.text.startswith("I am out of the office until 20 May")


def test_postfix_bounce_points_at_the_original_message() -> None:
    item = parse("bounce.eml")
    assert (item.kind, item.reason) == (Kind.IGNORED, "bounce")
    # The returned message's id first, so the engine can attach the bounce to its contact.
    assert item.references[0] == "sb.1090.1715688003@switchboard.example"
    assert item.customer.email == "MAILER-DAEMON@mail.example.net"
    assert item.attributes["dsn"] == {
        "action": "failed",
        "status": "5.1.1",
        "recipient": "old.customer@example.net",
        "diagnostic": "550 5.1.1 <old.customer@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
    }
    assert [a.content_type for a in item.attachments] == ["text/rfc822-headers"]
    assert item.text.startswith("This is the mail system at host mail.example.net.")


def test_exchange_bounce_with_the_whole_message_returned() -> None:
    item = parse("bounce_rfc822.eml")
    assert (item.kind, item.reason) == (Kind.IGNORED, "bounce")
    assert item.references == ("sb.1101.1715847300@switchboard.example",)
    assert item.attributes["dsn"]["status"] == "5.1.10"
    assert item.attachments[0].content_type == "message/rfc822"
    assert item.attachments[0].size > 200
    assert "Your order #C-5531 has shipped" not in item.text  # the returned text is not the body


def test_mailing_list_post_is_bulk() -> None:
    item = parse("mailing_list.eml")
    assert (item.kind, item.reason) == (Kind.IGNORED, "bulk")


# --- not routed: each signal on its own ------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (["Auto-Submitted: auto-replied"], "auto_reply"),
        (["Auto-Submitted: auto-generated; owner-email=x@example.com"], "auto_reply"),
        (["Auto-Submitted: no"], ""),
        (["Precedence: bulk"], "bulk"),
        (["Precedence: junk"], "bulk"),
        (["Precedence: list"], "bulk"),
        (["Precedence: auto_reply"], "auto_reply"),
        (["X-Autoreply: yes"], "auto_reply"),
        (["X-Autorespond: Vacation"], "auto_reply"),
        (["List-Id: <news.example.com>"], "bulk"),
        (["List-Unsubscribe: <mailto:leave@example.com>"], "bulk"),
        (["Return-Path: <>"], "bounce"),
        (["Return-Path: <carla@example.com>"], ""),
        (["X-Auto-Response-Suppress: All"], ""),  # Outlook sets it on ordinary mail
    ],
)
def test_not_routed_signals(headers: list[str], reason: str) -> None:
    item = parse_message(message(*headers))
    assert item.reason == reason
    assert item.kind is (Kind.IGNORED if reason else Kind.MESSAGE)


def test_mailer_daemon_sender_is_a_bounce_and_a_quoted_message_id_is_kept() -> None:
    """qmail-style: a plain-text bounce quoting the original's header."""
    raw = (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@switchboard.example\r\n"
        b"Subject: failure notice\r\nMessage-ID: <bounce-1@mx.example.org>\r\n\r\n"
        b"Hi. This is the qmail-send program at mx.example.org.\r\n"
        b"<gone@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\n"
        b"Return-Path: <support@switchboard.example>\r\n"
        b"Message-ID: <sb.77.1@switchboard.example>\r\nSubject: Re: your order\r\n\r\nHello\r\n"
    )
    item = parse_message(raw)
    assert (item.kind, item.reason) == (Kind.IGNORED, "bounce")
    assert item.references == ("sb.77.1@switchboard.example",)
    assert item.external_id == "bounce-1@mx.example.org"


def test_read_receipt_report_is_not_routed() -> None:
    body = (
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n"
        "--r\r\nContent-Type: message/disposition-notification\r\n\r\n"
        "Final-Recipient: rfc822; carla@example.com\r\n"
        "Original-Message-ID: <sb.5@switchboard.example>\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--r--\r\n"
    )
    ctype = 'multipart/report; report-type=disposition-notification; boundary="r"'
    item = parse_message(message(body=body, ctype=ctype))
    assert (item.kind, item.reason) == (Kind.IGNORED, "auto_reply")


def test_a_forwarded_bounce_is_a_customer_message() -> None:
    """The customer forwards a bounce they got: the DSN is inside message/rfc822."""
    body = (
        "--m\r\nContent-Type: text/plain\r\n\r\nWhy did this bounce?\r\n"
        "--m\r\nContent-Type: message/rfc822\r\n\r\n"
        + load("bounce.eml").decode()
        + "\r\n--m--\r\n"
    )
    item = parse_message(message(body=body, ctype='multipart/mixed; boundary="m"'))
    assert (item.kind, item.reason) == (Kind.MESSAGE, "")
    assert item.text == "Why did this bounce?"
    assert item.references == ()
    assert [a.content_type for a in item.attachments] == ["message/rfc822"]


# --- ids and threading -----------------------------------------------------------------


def test_missing_message_id_gets_a_stable_digest() -> None:
    raw = message("Subject: no id", "Date: Mon, 6 May 2024 08:30:09 +0000")
    first = parse_message(raw).external_id
    assert first is not None and re.fullmatch(r"sha256:[0-9a-f]{40}", first)
    # A retry through another relay: a trace field added, line ends changed.
    relayed = with_headers(raw, "Received: from relay2 by mx; Mon, 6 May 2024 08:31:00 +0000")
    assert parse_message(relayed).external_id == first
    assert parse_message(raw.replace(b"\r\n", b"\n")).external_id == first
    # A different message is a different id.
    assert parse_message(raw.replace(b"help", b"HELP")).external_id != first
    assert parse_message(raw.replace(b"no id", b"other")).external_id != first


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc.123@example.com>", "abc.123@example.com"),
        ("   <abc.123@example.com>   ", "abc.123@example.com"),
        ("\r\n <abc.123@example.com>", "abc.123@example.com"),
        ("abc.123@example.com", "abc.123@example.com"),  # sloppy mailer, no brackets
        ("<CAF=x+y_z@mail.gmail.com>", "CAF=x+y_z@mail.gmail.com"),
    ],
)
def test_message_id_is_normalized(value: str, expected: str) -> None:
    assert parse_message(message(f"Message-ID: {value}")).external_id == expected


def test_unusable_message_id_falls_back_to_the_digest() -> None:
    item = parse_message(message("Message-ID: not an id"))
    assert item.external_id is not None and item.external_id.startswith("sha256:")


def test_references_are_normalized_deduplicated_and_bounded() -> None:
    refs = " ".join(f"<r{i}@example.com>" for i in range(80))
    item = parse_message(
        message(
            "Message-ID: <self@example.com>",
            'In-Reply-To: "Your message of Monday" <r79@example.com>',
            f"References: {refs} <self@example.com>",
        )
    )
    assert len(item.references) == REFERENCES_MAX
    assert item.references[:3] == ("r79@example.com", "r78@example.com", "r77@example.com")
    assert item.references[-1] == f"r{79 - REFERENCES_MAX + 1}@example.com"
    assert "self@example.com" not in item.references


# --- decoding details ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "body", "text"),
    [
        ("x-no-such-charset", "caf\u00e9 \u20ac".encode(), "caf\u00e9 \u20ac"),  # valid UTF-8
        ("x-no-such-charset", b"caf\xe9 \x80", "caf\u00e9 \u20ac"),  # else Windows-1252
        ("base64", b"plain words", "plain words"),  # a codec, but not a text one
        ("idna", b"caf\xc3\xa9", "caf\u00e9"),  # a text codec without "replace"
        ('"utf-8"', "\u00fcber".encode(), "\u00fcber"),
        ("us-ascii", "na\u00efve".encode(), "na\u00efve"),  # mislabelled UTF-8
        ("utf-8", b"bad \xff byte", "bad \ufffd byte"),
        ("a\x00b", b"ok", "ok"),
    ],
)
def test_body_charsets_never_crash(charset: str, body: bytes, text: str) -> None:
    head = message(ctype=f"text/plain; charset={charset}", body="")
    assert parse_message(head + body).text == text


def test_raw_8bit_utf8_headers_are_decoded() -> None:
    raw = (
        "From: Fran\u00e7oise M\u00fcller <fm@example.fr>\r\nSubject: r\u00e9clamation "
        "n\u00b0 5\r\n\r\nbody\r\n"
    ).encode()
    item = parse_message(raw)
    assert item.customer.name == "Fran\u00e7oise M\u00fcller"
    assert item.subject == "r\u00e9clamation n\u00b0 5"


def test_encoded_word_in_an_unknown_charset_leaves_no_surrogates() -> None:
    raw = b"From: a@example.com\r\nSubject: =?x-weird?q?caf=E9?= =?utf-8?q?ok?= \xff\xfe\r\n\r\nx"
    item = parse_message(raw)
    item.subject.encode("utf-8")  # raises on lone surrogates
    assert item.subject.startswith("caf") and "ok" in item.subject


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 2 May 2024 10:15:03 +0200", "2024-05-02T10:15:03+02:00"),
        ("Thu, 2 May 2024 10:15:03 -0000", "2024-05-02T10:15:03+00:00"),
        ("2 May 2024 10:15 GMT", "2024-05-02T10:15:00+00:00"),
        ("next Tuesday", None),
    ],
)
def test_date_is_rfc_3339(value: str, expected: str | None) -> None:
    assert parse_message(message(f"Date: {value}")).attributes["date"] == expected


def test_missing_date_is_none() -> None:
    assert parse_message(message()).attributes["date"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en-US, fr", "en-US"), ("de", "de"), ("??", None), ("en_US", None)],
)
def test_content_language(value: str, expected: str | None) -> None:
    assert parse_message(message(f"Content-Language: {value}")).language == expected


def test_text_and_subject_are_bounded() -> None:
    item = parse_message(message("Subject: " + "word " * 200, body="line of text\r\n" * 20000))
    assert len(item.text) == TEXT_MAX
    assert len(item.subject) == SUBJECT_MAX


def test_addresses_are_bounded_and_deduplicated() -> None:
    to = ", ".join(f"User {i} <u{i % 60}@example.com>" for i in range(120))
    item = parse_message(message(f"Cc: {to}", "Reply-To: Carla <CARLA@EXAMPLE.COM>"))
    assert item.attributes["cc"] == [f"u{i}@example.com" for i in range(50)]
    assert item.attributes["reply_to"] == ["CARLA@example.com"]  # the local part keeps its case


# --- html_to_text ----------------------------------------------------------------------


def test_html_rendering_drops_invisible_markup() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body>"
        "<!--[if gte mso 9]><xml><o:x>outlook only</o:x></xml><![endif]-->"
        "<div><div><p>First &amp; <i>one</i></p></div></div>"
        "<div>a<br>b<br/><br>c</div><table><tr><td>x</td><td>y</td></tr></table>"
        "<p>1 < 2 and 3 > 2</p></body></html>"
    )
    assert html_to_text(html) == "First & one\n\na\nb\n\nc\n\nx y\n\n1 < 2 and 3 > 2"


@pytest.mark.timeout(30)  # a hang guard, not a speed test: the bug takes minutes
@pytest.mark.parametrize("unit", ["<a", "</", "<![", "<?", "<!", "<!--x>", "<![CDATA[x>"])
def test_html_rendering_is_linear_on_unclosed_markup(unit: str) -> None:
    """CPython's html.parser alone takes minutes on these (quadratic)."""
    assert isinstance(html_to_text(unit * (200_000 // len(unit))), str)


# --- malformed input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b" \r\n\r\n\t", "empty"),
        (b"\x00\x01\x02\xff\xfe garbage \x89PNG\r\n", "not a MIME message"),
        (b"hello there, no headers at all\r\n\r\nbody\r\n", "not a MIME message"),
        (b"Subject: no sender\r\n\r\nbody\r\n", "no From"),
        (b"From: undisclosed-recipients:;\r\n\r\nbody\r\n", "no From"),
        (b"From: <>\r\n\r\nbody\r\n", "no From"),
        (b"From:\r\nTo: a@example.com\r\n\r\nbody\r\n", "no From"),
    ],
)
def test_malformed_messages_are_payload_errors(raw: bytes, words: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_message(raw)
    assert words in caught.value.message
    assert caught.value.http_status == 400


def test_missing_from_names_the_field() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_message(b"To: a@example.com\r\n\r\nbody")
    assert caught.value.details == {"field": "From"}


def test_oversized_message_is_413() -> None:
    raw = message(body="x" * 2000)
    assert parse_message(raw, max_bytes=len(raw)).text  # exactly at the limit is fine
    with pytest.raises(PayloadTooLarge) as caught:
        parse_message(raw, max_bytes=len(raw) - 1)
    assert isinstance(caught.value, PayloadError)  # one hierarchy
    assert caught.value.http_status == 413
    assert caught.value.details == {"size": len(raw), "limit": len(raw) - 1}


def test_nesting_too_deep_for_the_parser_is_a_payload_error() -> None:
    parts = "".join(
        f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(2000)
    )
    with pytest.raises(PayloadError, match="nested"):
        parse_message(message(body=parts, ctype="multipart/mixed; boundary=b0"))


@pytest.mark.timeout(30)  # a hang guard, not a speed test: these sizes took minutes
def test_huge_header_fields_stay_fast() -> None:
    """The stdlib header parser is super-linear: 64 KB of Content-Type took 8 s."""
    params = "; ".join(f"p{i}=v{i}" for i in range(20_000))
    many = ", ".join(f"u{i}@example.com" for i in range(20_000))
    raw = message(
        f"To: {many}",
        f"Subject: {'=?utf-8?q?caf=C3=A9?= ' * 10_000}",
        ctype=f"text/plain; {params}",
    )
    item = parse_message(raw)
    assert item.text == "Hello, I need help."
    assert len(item.attributes["to"]) == 50


# --- fuzzing: bad bytes are PayloadError, never anything else -------------------------


def check(raw: bytes) -> None:
    try:
        item = parse_message(raw)
    except PayloadError:
        return
    assert item.channel == "email" and item.kind in (Kind.MESSAGE, Kind.IGNORED)
    for text in (item.text, item.subject, item.customer.name or "", item.customer.email or ""):
        text.encode("utf-8")  # no lone surrogates from raw bytes
    assert len(item.text) <= TEXT_MAX and len(item.subject) <= SUBJECT_MAX
    assert len(item.references) <= REFERENCES_MAX
    assert item.external_id and all(isinstance(r, str) and r for r in item.references)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(raw: bytes) -> None:
    check(raw)


TOKENS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b":",
    b"=?",
    b"?=",
    b"=?utf-8?q?",
    b"=?x-bad?b?",
    b"<",
    b">",
    b"@",
    b'"',
    b"\\",
    b"(",
    b")",
    b";",
    b"=",
    b"--",
    b"*",
    b"'",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\t",
    b"multipart/alternative; boundary=",
    b"charset=",
    b"Content-Type: ",
    b"message/rfc822",
    b"text/html",
    b"format=flowed",
    b"<!",
    b"<![",
    b"&#",
    b"From: ",
    b"Content-Transfer-Encoding: base64",
    b"quoted-printable",
    b"filename*=utf-8''",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(load(draw(st.sampled_from(NAMES))))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "byte", "copy"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "byte" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        else:
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 200))]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_real_messages(raw: bytes) -> None:
    check(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>/!?-[]&#;=\"' abpdivscript\n\x00é€")), max_size=300)
)
def test_fuzz_html_rendering(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip() and "\n\n\n" not in text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(">/!?-[]#;=\"' ab\n\t\xa0é€")), max_size=300))
def test_html_rendering_of_markup_free_text_only_collapses_whitespace(html: str) -> None:
    assert html_to_text(html) == " ".join(html.replace("\xa0", " ").split())
