"""The email channel: one raw RFC 5322 / MIME message in, one normalized `Inbound` out.

The bytes come from wherever mail reaches Switchboard: a mail server's pipe, a
provider's raw-MIME forward, or the SMTP/LMTP listener in `adapters.smtp`. The
module is named `mail`, not `email`: run from inside `adapters/`, a file called
`email.py` would shadow the standard library package it is built on.

Parsing is lenient the way mail clients are (mislabelled charsets, broken
headers, stray 8-bit bytes all still give a message), but bytes that are not
mail at all, or mail without a sender, raise `PayloadError`: nothing else.
Auto-replies, bounces and bulk mail come back as `Kind.IGNORED` with a reason,
so they are recorded but never routed to an agent.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader, BaseHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, TypeVar, cast

from adapters.inbound import TEXT_MAX, Attachment, Inbound, Kind
from router.errors import PayloadError, PayloadTooLarge
from router.model import SUBJECT_MAX, Customer

__all__ = ["MAX_BYTES", "html_to_text", "parse_message"]

if TYPE_CHECKING:
    _PolicyBase = EmailPolicy[EmailMessage]
else:
    _PolicyBase = EmailPolicy

MAX_BYTES = 10 * 1024 * 1024  # default size limit of one raw message
REFERENCES_MAX = 50  # thread ids kept, newest first
REFERENCES_RAW_MAX = 32 * 1024  # characters of References read, from its (newest) end
HEADERS_MAX = 64 * 1024  # bytes read of a bounce's text/rfc822-headers part
ADDRESSES_MAX = 50  # per To / Cc / Reply-To list
ATTACHMENTS_MAX = 100  # attachment metadata entries kept
ID_MAX = 255  # longest Message-ID kept as is
ADDRESS_MAX = 320  # RFC 5321: 64 + 1 + 255
NAME_MAX = 200
DIAGNOSTIC_MAX = 500
# Bounds on the MIME walk. The stdlib parser itself gives up (RecursionError) near
# 1000 levels of nesting; real mail rarely goes past 5.
DEPTH_MAX = 30
PARTS_MAX = 1000
# HTML fed to the renderer: even verbose (Outlook) markup rarely needs more for
# TEXT_MAX characters of text, and html.parser is slow (~2 us a character).
HTML_MAX = 512 * 1024

_T = TypeVar("_T")


def parse_message(raw: bytes, *, max_bytes: int = MAX_BYTES) -> Inbound:
    """Normalize one raw MIME message (header fields, CRLF or LF line ends) into an `Inbound`.

    Raises `PayloadTooLarge` (413) past `max_bytes`, and `PayloadError` (400) for
    bytes that are not a mail message or have no From address. The result has
    channel "email", provider "smtp", `external_id` the Message-ID (or, when it is
    missing, a digest of the message that a retry reproduces), `references` the
    In-Reply-To then References ids newest first, the From as customer, and kind
    IGNORED with a reason for auto-replies, bounces and bulk mail.
    """
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise TypeError(f"parse_message takes bytes, not {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            f"message is {len(raw)} bytes, over the {max_bytes}-byte limit",
            size=len(raw),
            limit=max_bytes,
        )
    if not raw.strip():
        raise PayloadError("empty message: no header fields and no body")
    msg = _parse(raw)
    if not msg.keys():
        raise PayloadError("not a MIME message: no header fields before the body")
    fields = _Fields(msg)
    senders = _addresses(fields, "From")
    if not senders:
        raise PayloadError("no sender: the message has no From address", field="From")
    sender = senders[0]

    walk = _Walk(_Budget())
    walk.visit(msg, 0)
    reason = _not_routed(msg, fields, walk, sender[1])

    message_id = _first_id(fields.all("Message-ID", 10)) or _digest_id(fields, raw)
    thread: list[str] = []
    if reason in ("bounce", "auto_reply"):
        thread += walk.original_ids()
    thread += _ids(fields.first("In-Reply-To"))
    # References lists the thread oldest first: its newest ids are at the end.
    thread += reversed(_ids(" ".join(fields.all("References"))[-REFERENCES_RAW_MAX:]))
    references = tuple(i for i in dict.fromkeys(thread) if i != message_id)[:REFERENCES_MAX]

    attributes: dict[str, Any] = {
        "to": _address_list(fields, "To"),
        "cc": _address_list(fields, "Cc"),
        "date": _date(fields),
        "reply_to": _address_list(fields, "Reply-To"),
    }
    if reason == "bounce" and walk.dsn:
        attributes["dsn"] = walk.dsn
    return Inbound(
        channel="email",
        kind=Kind.IGNORED if reason else Kind.MESSAGE,
        provider="smtp",
        external_id=message_id,
        references=references,
        customer=Customer(name=sender[0] or None, email=sender[1]),
        subject=_subject(fields),
        text=walk.text(),
        language=_language(fields) or (walk.body_language or None),
        attributes=attributes,
        attachments=tuple(walk.attachments[:ATTACHMENTS_MAX]),
        reason=reason,
    )


# --- parsing and header access -------------------------------------------------------


class _RawFetch(_PolicyBase):
    """policy.default, except that reading a header field gives its raw, unfolded text.

    The header registry's parser is super-linear, and the stdlib re-parses a field
    on every read (the parser and the MIME walk read each part's Content-Type a
    dozen times). Measured on CPython 3.11: a 64 KB Content-Type parameter list
    makes parsing take 8 s, 16 KB of addresses take 0.3 s. So MIME structure is
    read from the raw text by the legacy parameter code (which get_param and
    get_content_type use anyway), and the registry only ever sees the few fields
    decoded here, each cut to a bound first (`_registry`). Also used to size
    attached messages: with refold_source="none" the generator never reparses.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        # The legacy parameter parser is quadratic in RFC 2231 continuations: bound it too.
        return _unfold(value[: 2 * STRUCTURE_MAX])[:STRUCTURE_MAX]


_POLICY = _RawFetch(refold_source="none")
_PARSER = BytesParser(policy=_POLICY)
_HEADER_PARSER = HeaderParser(policy=_POLICY)
_REGISTRY = policy.default.header_factory
# Raw characters of a field handed to the registry: room for SUBJECT_MAX characters
# of Q-encoded CJK, and for ADDRESSES_MAX ordinary addresses.
FIELD_MAX = 4096
STRUCTURE_MAX = 8192  # characters of Content-Type / -Disposition / -Transfer-Encoding read


def _unfold(value: str) -> str:
    """Undo header folding the way policy.default does: drop the CR and LF, keep the WSP."""
    return value.replace("\r", "").replace("\n", "")


def _parse(raw: bytes) -> EmailMessage:
    """Parse into an EmailMessage; a structure too deep for the stdlib parser is malformed."""
    try:
        msg = _PARSER.parsebytes(raw)
    except RecursionError:
        raise PayloadError("MIME structure nested too deeply to parse") from None
    assert isinstance(msg, EmailMessage)
    return msg


def _guarded(fn: Callable[[], _T], default: _T) -> _T:
    """Run one stdlib header/parameter parse, with `default` if it crashes.

    Hostile values still crash parts of the stdlib's parsers (RecursionError on
    nested comments, IndexError on a Message-ID of "<<<"): one bad field must not
    lose the message.
    """
    try:
        return fn()
    except Exception:
        return default


class _Fields:
    """One header section's fields as received (unfolded, not decoded), indexed by name.

    Built once per header section: a hostile message can carry a million fields,
    and a scan per lookup would make reading them quadratic.
    """

    def __init__(self, part: Message) -> None:
        self._index: dict[str, list[str]] = {}
        for name, value in part.raw_items():
            self._index.setdefault(name.lower(), []).append(str(value))

    def all(self, name: str, count: int = 50) -> list[str]:
        """The first `count` `name` fields (a field should appear once; lists are bounded)."""
        return [_unfold(v) for v in self._index.get(name.lower(), [])[:count]]

    def first(self, name: str, limit: int = FIELD_MAX) -> str:
        """The first `name` field (cut to `limit` characters), or ""."""
        values = self._index.get(name.lower())
        return _unfold(values[0][: limit * 2])[:limit] if values else ""


def _registry(name: str, raw: str) -> BaseHeader | None:
    """policy.default's parsed header for a raw value cut to FIELD_MAX (None if it crashes)."""
    value = _unescape(raw)[:FIELD_MAX]
    header: BaseHeader | None = _guarded(lambda: _REGISTRY(name, value), None)
    return header


def _subject(fields: _Fields) -> str:
    """The Subject decoded (RFC 2047, any mix of charsets, raw 8-bit), on one line."""
    raw = fields.first("Subject")
    header = _registry("Subject", raw)
    text = str(header) if header is not None else _decode_words(raw[:FIELD_MAX])
    return _line(_unescape(text))[:SUBJECT_MAX]


def _addresses(fields: _Fields, name: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) of the addresses in the `name` fields, groups flattened."""
    raw = ", ".join(v[: 2 * FIELD_MAX] for v in fields.all(name))
    if len(raw) > FIELD_MAX:  # cut between addresses, not inside one
        cut = raw.rfind(",", 0, FIELD_MAX)
        raw = raw[: cut if cut > 0 else FIELD_MAX]
    header = _registry(name, raw)
    found = (
        _guarded(lambda: _registry_addresses(cast(AddressHeader, header)), None)
        if header is not None
        else None
    )
    if found is None:  # the registry parser failed: fall back to the permissive legacy one
        pairs: list[tuple[str, str]] = _guarded(lambda: getaddresses([raw]), [])
        found = [(_decode_words(n), a) for n, a in pairs]
    out: list[tuple[str, str]] = []
    for display, spec in found:
        addr = _addr_spec(spec)
        if addr:
            out.append((_line(_unescape(display))[:NAME_MAX], addr))
    return out


def _registry_addresses(header: AddressHeader) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in header.addresses]


def _addr_spec(spec: str) -> str:
    """A usable address (domain lowercased), or "" for null or absurd ones."""
    spec = _unescape(spec).strip()
    if spec in ("", "<>") or len(spec) > ADDRESS_MAX or re.search(r"[\s\x00-\x1f\x7f]", spec):
        return ""
    local, at, domain = spec.rpartition("@")
    return f"{local}@{domain.lower()}" if at else spec


def _address_list(fields: _Fields, name: str) -> list[str]:
    """The addr-specs of To / Cc / Reply-To: deduplicated, bounded, real addresses only."""
    found = (a for _, a in _addresses(fields, name) if "@" in a)
    return list(dict.fromkeys(found))[:ADDRESSES_MAX]


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words with the legacy decoder (when the registry failed)."""
    return _guarded(lambda: str(make_header(decode_header(value))), value)


def _date(fields: _Fields) -> str | None:
    """The Date field as RFC 3339; a zone-less ("-0000") date is UTC, per RFC 5322."""
    raw = fields.first("Date", 200)
    if not raw.strip():
        return None
    when = getattr(_registry("Date", raw), "datetime", None)
    if not isinstance(when, datetime):
        when = _guarded(lambda: parsedate_to_datetime(raw.strip()), None)
    if not isinstance(when, datetime):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


def _language(fields: _Fields) -> str | None:
    """The first tag of Content-Language ("en-US, fr" is "en-US"), if it is well formed."""
    tag = fields.first("Content-Language", 200).split(",")[0].strip()
    return tag if len(tag) <= 35 and _LANGUAGE.fullmatch(tag) else None


# --- ids ------------------------------------------------------------------------------

_BRACKETED = re.compile(r"<([^<>]*)>")


def _ids(value: str) -> list[str]:
    """The msg-ids in a Message-ID / In-Reply-To / References value, without brackets.

    Takes every <...> token (In-Reply-To often holds prose around it); a value with
    no brackets counts only if it is one token with an "@" (a sloppy mailer's id).
    """
    value = _unescape(value)
    found = _BRACKETED.findall(value)
    if not found:
        token = value.strip()
        found = [token] if "@" in token and not re.search(r"\s", token) else []
    out = []
    for candidate in found:
        ident = re.sub(r"\s+", "", candidate)
        if ident and len(ident) <= ID_MAX and not re.search(r"[\x00-\x1f\x7f<>]", ident):
            out.append(ident)
    return out


def _first_id(values: list[str]) -> str | None:
    for value in values:
        ids = _ids(value)
        if ids:
            return ids[0]
    return None


def _digest_id(fields: _Fields, raw: bytes) -> str:
    """A stable stand-in for a missing Message-ID, so a redelivered message dedups.

    It hashes what a retry keeps (sender, recipients, date, subject, body) and not
    what relays change on the way (Received and other trace fields, CRLF or LF).
    """
    h = hashlib.sha256()
    for name in ("From", "To", "Cc", "Date", "Subject"):
        for value in fields.all(name):
            h.update(name.lower().encode() + b":")
            h.update(re.sub(r"\s+", " ", value).strip().encode("utf-8", "surrogateescape"))
            h.update(b"\n")
    body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2]
    h.update(b"\n" + body.rstrip())
    return "sha256:" + h.hexdigest()[:40]


# --- not routed -----------------------------------------------------------------------

_BOUNCE_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})


def _not_routed(msg: Message, fields: _Fields, walk: _Walk, sender: str) -> str:
    """Why this message must not reach an agent ("" if it must), from its headers and shape.

    Bounces first (a DSN is also auto-submitted), then RFC 3834 auto-replies, then
    bulk and list mail.
    """
    top = _guarded(msg.get_content_type, "text/plain")
    if top == "multipart/report":
        # A non-DSN report is a read receipt (MDN) or an abuse report (ARF): machine-made.
        return "bounce" if _param(msg, "report-type") == "delivery-status" else "auto_reply"
    if walk.types & _BOUNCE_TYPES:
        return "bounce"
    auto = fields.first("Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_reply"
    for name in ("X-Autoreply", "X-Autorespond"):
        values = fields.all(name, 1)
        if values and values[0].strip().lower() not in ("no", "false", "0"):
            return "auto_reply"
    precedence = fields.first("Precedence").strip().lower()
    if precedence == "auto_reply":
        return "auto_reply"
    if sender.partition("@")[0].lower() == "mailer-daemon":
        return "bounce"
    if any(re.sub(r"\s+", "", v) == "<>" for v in fields.all("Return-Path", 10)):
        return "bounce"
    if precedence in ("bulk", "junk", "list"):
        return "bulk"
    if fields.all("List-Id", 1) or fields.all("List-Unsubscribe", 1):
        return "bulk"
    return ""


# --- the MIME walk --------------------------------------------------------------------


@dataclass
class _Budget:
    """Parts left to visit, shared by the walkers of one message."""

    parts: int = PARTS_MAX


@dataclass
class _Walk:
    """What one pass over the MIME tree finds: body text, attachments, report parts.

    The body is every inline text/plain or text/html part, except that a
    multipart/alternative contributes one branch (plain text preferred). Forwarded
    messages (message/rfc822) are attachments: their text is not this message's
    text, and their structure does not make this message a bounce.
    """

    budget: _Budget
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (subtype, text)
    attachments: list[Attachment] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    originals: list[Message] = field(default_factory=list)  # returned message or its headers
    dsn: dict[str, str] = field(default_factory=dict)
    body_language: str = ""
    size: int = 0  # characters of body text so far

    def visit(self, part: Message, depth: int) -> None:
        if depth > DEPTH_MAX or self.budget.parts <= 0:
            return
        self.budget.parts -= 1
        ctype = _guarded(part.get_content_type, "text/plain")
        self.types.add(ctype)
        if part.is_multipart():  # multipart/*, message/rfc822, message/delivery-status
            children = [p for p in part.get_payload() if isinstance(p, Message)]
            if ctype in _BOUNCE_TYPES:
                self._delivery_status(children)
            elif ctype.startswith("message/"):
                self._attach(part, ctype)
                if ctype in ("message/rfc822", "message/global"):
                    self.originals.extend(children[:1])
            elif ctype == "multipart/alternative":
                self._alternative(children, depth)
            else:
                for child in children:
                    self.visit(child, depth + 1)
            return
        self._leaf(part, ctype)

    def _alternative(self, children: list[Message], depth: int) -> None:
        """Take one branch's text, plain preferred; keep every branch's attachments."""
        branches = []
        for child in children:
            branch = _Walk(self.budget)
            branch.size = self.size
            branch.visit(child, depth + 1)
            self.attachments += branch.attachments
            self.types |= branch.types
            self.originals += branch.originals
            branches.append(branch)
        for wanted in ("plain", "html"):
            for branch in branches:
                if any(kind == wanted and text.strip() for kind, text in branch.blocks):
                    self._add_blocks(branch)
                    return

    def _add_blocks(self, branch: _Walk) -> None:
        self.blocks += branch.blocks
        self.size = branch.size
        self.body_language = self.body_language or branch.body_language

    def _leaf(self, part: Message, ctype: str) -> None:
        maintype, _, subtype = ctype.partition("/")
        disposition = _guarded(part.get_content_disposition, None)
        filename = _guarded(part.get_filename, None)
        if maintype == "multipart":  # a multipart without a usable boundary: its raw text
            maintype, subtype = "text", "plain"
        if (
            maintype == "text"
            and subtype in ("plain", "html")
            and disposition != "attachment"
            and not filename
        ):
            room = TEXT_MAX - self.size
            if room > 0:
                # Decode no more than can show: a character is at most 4 bytes (8 in UTF-7).
                data = _payload_bytes(part)[: 4 * HTML_MAX if subtype == "html" else 8 * room]
                text = _decode_text(data, _charset(part))
                text = text.replace("\r\n", "\n").replace("\r", "\n")
                if subtype == "html":
                    text = html_to_text(text)
                elif _flowed(part):
                    text = _unflow(text, _param(part, "delsp") == "yes")
                text = text[:room]
                self.blocks.append((subtype, text))
                self.size += len(text)
                self.body_language = self.body_language or (_language(_Fields(part)) or "")
            return
        if ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            headers = _decode_text(_payload_bytes(part)[:HEADERS_MAX], _charset(part))
            self.originals.append(_guarded(lambda: _HEADER_PARSER.parsestr(headers), Message()))
        self._attach(part, ctype, filename)

    def _attach(self, part: Message, ctype: str, filename: str | None = None) -> None:
        if len(self.attachments) >= ATTACHMENTS_MAX:
            return
        if part.is_multipart():
            size = _guarded(lambda: len(part.as_bytes()), 0)
        else:
            size = len(_payload_bytes(part))
        name = _line(_unescape(filename))[:NAME_MAX] if filename else None
        self.attachments.append(Attachment(name=name or None, content_type=ctype, size=size))

    def _delivery_status(self, blocks: list[Message]) -> None:
        """Keep the first failed (or any) recipient's DSN fields: which address, and why."""
        for block in blocks[1:]:  # the first block is per-message, the rest per-recipient
            block_fields = _Fields(block)
            fields = {
                "action": block_fields.first("Action").lower(),
                "status": block_fields.first("Status"),
                "recipient": block_fields.first("Final-Recipient").partition(";")[2],
                "diagnostic": block_fields.first("Diagnostic-Code").partition(";")[2],
            }
            found = {k: _line(_unescape(v))[:DIAGNOSTIC_MAX] for k, v in fields.items()}
            found = {k: v for k, v in found.items() if v}
            if found and (not self.dsn or found.get("action") == "failed"):
                self.dsn = found
            if self.dsn.get("action") == "failed":
                return

    def original_ids(self) -> list[str]:
        """Message-IDs of the message(s) a bounce or receipt returns, from the report parts.

        Falls back to a "Message-ID:" line quoted in the body text, the way qmail
        and some providers return the original.
        """
        ids = [i for m in self.originals[:10] for i in _ids(_Fields(m).first("Message-ID"))]
        if not ids:
            for _, text in self.blocks:
                quoted = re.search(r"(?im)^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", text)
                if quoted:
                    ids += _ids(quoted.group(1))
                    break
        return ids

    def text(self) -> str:
        """The body blocks as one bounded text with LF line ends and no control characters."""
        text = "\n\n".join(t.strip("\n") for _, t in self.blocks if t.strip())
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
        return re.sub(r"\n{3,}", "\n\n", text).strip()[:TEXT_MAX]


# --- body decoding --------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LABEL = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")
_SURROGATES = re.compile(r"[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _payload_bytes(part: Message) -> bytes:
    """The part's body with its transfer encoding (base64, quoted-printable) removed."""
    empty: object = b""
    data = _guarded(lambda: part.get_payload(decode=True), empty)
    return data if isinstance(data, bytes) else b""


def _charset(part: Message) -> str | None:
    value = _guarded(lambda: part.get_content_charset(), None)
    return value if isinstance(value, str) else None


def _decode_text(data: bytes, charset: str | None) -> str:
    """Decode a body in its declared charset, with fallbacks that never raise.

    ISO-8859-1 is read as Windows-1252, as browsers do: mailers label cp1252 text
    (smart quotes, €) latin-1 all the time. No charset, us-ascii or an unknown
    one: UTF-8 if the bytes are valid UTF-8, else Windows-1252.
    """
    label = (charset or "").strip().strip("\"'").lower()
    codec = None
    if _LABEL.fullmatch(label):
        info = _guarded(lambda: codecs.lookup(label), None)
        if info is not None and info.name not in ("ascii", "us-ascii"):
            codec = "cp1252" if info.name == "iso8859-1" else info.name
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass  # not a text codec ("base64"), or one with no "replace" mode ("idna")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _unescape(value: str) -> str:
    """Turn the stdlib's surrogate-escaped raw 8-bit header bytes into real characters.

    Raw UTF-8 in headers (SMTPUTF8, careless mailers) is common; other raw bytes
    are taken as Windows-1252. Any other lone surrogate becomes U+FFFD, so the text
    always encodes as UTF-8.
    """
    if not _LONE_SURROGATE.search(value):
        return value

    def run(m: re.Match[str]) -> str:
        return _decode_text(bytes(ord(c) - 0xDC00 for c in m.group()), None)

    return _LONE_SURROGATE.sub("\ufffd", _SURROGATES.sub(run, value))


def _line(value: str) -> str:
    """One line of text: whitespace runs (folding, tabs) become one space, controls go."""
    return re.sub(r"\s+", " ", _CONTROL.sub("", value)).strip()


def _param(part: Message, name: str) -> str:
    """A Content-Type parameter, lowercased ("" if absent or unreadable)."""
    value = _guarded(lambda: part.get_param(name), None)
    return value.strip().lower() if isinstance(value, str) else ""


def _flowed(part: Message) -> bool:
    return _param(part, "format") == "flowed"


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed: join soft-broken lines (those ending in a space)."""
    out: list[str] = []
    buf, buf_depth = "", -1
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):  # space-stuffing
            content = content[1:]
        if buf_depth not in (-1, depth):  # a quote depth change ends the paragraph
            out.append(">" * buf_depth + (" " if buf_depth else "") + buf)
            buf, buf_depth = "", -1
        if content.endswith(" ") and content != "-- ":
            buf += content[:-1] if delsp else content
            buf_depth = depth
            continue
        prefix = ">" * depth + (" " if depth else "")
        out.append(prefix + buf + content)
        buf, buf_depth = "", -1
    if buf_depth != -1:
        out.append(">" * buf_depth + (" " if buf_depth else "") + buf)
    return "\n".join(out)


# --- HTML to text ---------------------------------------------------------------------

_SKIP = frozenset({"script", "style", "title", "template"})
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr"}
)
_BLOCK = frozenset(
    {
        "div",
        "tr",
        "li",
        "dl",
        "dt",
        "dd",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "figure",
        "figcaption",
        "address",
        "form",
        "fieldset",
        "body",
        "center",
    }
)


_WHITESPACE = re.compile(r"\s+")
_SPACES = re.compile(r"[ \t]{2,}")


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML body, with line breaks where blocks are.

    Block boundaries only ask for a break (`pending`), so nested and adjacent
    blocks give one line break, or one blank line around paragraphs, not a pile.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pending = 0  # newlines owed before the next text
        self.skip = 0
        self.pre = 0

    def _break(self, newlines: int) -> None:
        self.pending = max(self.pending, newlines)

    def _emit(self, text: str) -> None:
        if self.pending:
            if self.parts:
                self.parts.append("\n" * self.pending)
            self.pending = 0
        self.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._emit("\n")
        elif tag in _PARAGRAPH:
            self._break(2)
            self.pre += tag == "pre"
        elif tag in _BLOCK:
            self._break(1)
            if tag == "li":
                self._emit("- ")
        elif tag in ("td", "th"):
            self._emit(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP:  # <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _PARAGRAPH:
            self._break(2)
            self.pre = max(0, self.pre - (tag == "pre"))
        elif tag in _BLOCK:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = _WHITESPACE.sub(" ", data)
            if data == " " and self.pending:  # source indentation between blocks
                return
        self._emit(data)


# Invisible constructs, removed before html.parser sees the markup: each pattern
# runs in linear time, even unterminated (a comment without "-->" runs to the end,
# as in a browser).
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_CDATA = re.compile(r"<!\[CDATA\[.*?(?:\]\]>|\Z)", re.S | re.I)
_DECLARATION = re.compile(r"<[!?][^<>]*>")  # <!DOCTYPE>, <![endif]>, <?xml?>
# A "<" that does not open a complete tag is text.
_NOT_A_TAG = re.compile(r"<(?!/?[A-Za-z][^<>]*>)")


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML mail body: what a reader would see, unstyled.

    Scripts, styles, comments (Outlook's conditional ones too) and the title are
    dropped; block elements start new lines and paragraphs are separated by a
    blank line. Never raises. CPython's html.parser is quadratic on markup that is
    never closed ("<a<a<a...", "</</", "<![" runs: minutes for 256 KB), so the
    markup is first reduced to text and complete tags, with the regexes above.
    """
    html = html[:HTML_MAX]
    html = _COMMENT.sub("", html)
    html = _CDATA.sub("", html)
    html = _DECLARATION.sub("", html)
    html = _NOT_A_TAG.sub("&lt;", html)
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except (AssertionError, ValueError, IndexError):  # _markupbase's checks, should they fire
        text = unescape(re.sub(r"<[^>]*>", " ", html))
    lines = (_SPACES.sub(" ", line.replace("\xa0", " ")).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
