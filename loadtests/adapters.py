"""Adapter parse benchmark: `python -m loadtests.adapters` (see docs/benchmarks.md).

How many provider messages per second each channel adapter turns from raw request
bytes into a normalized `Inbound`, in one process, with no Redis and no network.
Every figure comes with a reference measured in the same run on the same payload:
the standard-library step the adapter cannot avoid (`parse_qsl` for Twilio's forms,
`json.loads` for JSON webhooks, `email.message_from_bytes` with the compat32 policy
for mail). The ratio `cost_x` = adapter time / reference time carries over between
machines far better than messages per second do.

Signature checks (Twilio's HMAC-SHA1, Meta's HMAC-SHA256) are timed on their own,
against the same reference as the payload they sign.

Adapters are found by module name when the benchmark runs (adapters.twilio,
adapters.mail or adapters.email, adapters.meta, adapters.chat, adapters.voice): a
module that is missing or does not import, or a sample it refuses, is skipped with a
note on stderr, never a failure. Every sample is built in; for chat and voice, whose
formats are Switchboard's own and may still move, a refused sample falls back to the
first of `tests/adapters/fixtures/<name>/*.json` that parses into a MESSAGE.

Timing: `time.perf_counter` around a loop of N calls, N sized so one loop takes about
`--min-time` (default 2 ms); one warm-up loop, then `--repeat` (300) loops of the
adapter and of the reference alternately, so drift hits both alike; best of each. The
loops are short on purpose: on a shared machine nearly every 200 ms loop is cut by
other processes' time slices, while many 2 ms loops fit between them, and the best of
300 is then a clean one (0.2 s loops gave 1.07-2.53 for one ratio over six runs;
2 ms loops 1.46-1.47 over three). The garbage collector stays on, as in production.
"""

from __future__ import annotations

import argparse
import base64
import email
import hashlib
import hmac
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode

from loadtests.bench import machine_info

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "adapters" / "fixtures"

# -- built-in samples (public provider formats) ----------------------------------------

_AC = "AC0123456789abcdef0123456789abcdef"
_CA = "CA5bbf4ac2b5a6e0f3c2d1e0f9a8b7c6d5"
_MM = "MM7a3c5e9f1b2d4c6e8a0b1c2d3e4f5a6b"
_GEO = [
    ("FromCity", "SAN FRANCISCO"),
    ("FromCountry", "US"),
    ("FromState", "CA"),
    ("FromZip", "94103"),
    ("ToCity", "OAKLAND"),
    ("ToCountry", "US"),
    ("ToState", "CA"),
    ("ToZip", "94612"),
]
# An incoming call's first request to the voice URL (25 fields, 0.6 KB).
TWILIO_VOICE = urlencode(
    [
        ("AccountSid", _AC),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", _CA),
        ("CallStatus", "ringing"),
        ("Called", "+15558675310"),
        ("CalledCity", "OAKLAND"),
        ("CalledCountry", "US"),
        ("CalledState", "CA"),
        ("CalledZip", "94612"),
        ("Caller", "+14158675309"),
        ("CallerCity", "SAN FRANCISCO"),
        ("CallerCountry", "US"),
        ("CallerName", "JENNY JONES"),
        ("CallerState", "CA"),
        ("CallerZip", "94103"),
        ("Direction", "inbound"),
        ("From", "+14158675309"),
        ("To", "+15558675310"),
        *_GEO,
    ]
).encode()
# An inbound MMS with text and two images (21 fields, 1 KB).
TWILIO_SMS = urlencode(
    [
        ("AccountSid", _AC),
        ("ApiVersion", "2010-04-01"),
        ("Body", "Hi, my order #4521 arrived broken & the box was open. Photos attached."),
        ("From", "+14158675309"),
        ("MediaContentType0", "image/jpeg"),
        ("MediaContentType1", "image/png"),
        ("MediaUrl0", f"https://api.twilio.com/2010-04-01/Accounts/{_AC}/Messages/{_MM}/Media/ME0"),
        ("MediaUrl1", f"https://api.twilio.com/2010-04-01/Accounts/{_AC}/Messages/{_MM}/Media/ME1"),
        ("MessageSid", _MM),
        ("MessagingServiceSid", "MG9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("NumMedia", "2"),
        ("NumSegments", "1"),
        ("SmsMessageSid", _MM),
        ("SmsSid", _MM),
        ("SmsStatus", "received"),
        ("To", "+15558675310"),
        *_GEO,
    ]
).encode()
TWILIO_URL = "https://switchboard.example.com/v1/webhooks/demo/twilio/voice"
TWILIO_TOKEN = "f00dfacef00dfacef00dfacef00dface"

_WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
_MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
# WhatsApp Cloud API: one text message, as Meta's docs show it.
META_WHATSAPP = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [
                                {"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}
                            ],
                            "messages": [
                                {
                                    "from": "16505551234",
                                    "id": _WAMID,
                                    "timestamp": "1749416383",
                                    "type": "text",
                                    "text": {"body": "Does it come in another color?"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
).encode()
# Messenger: one text message from a page's conversation.
META_MESSENGER = json.dumps(
    {
        "object": "page",
        "entry": [
            {
                "id": "112233445566778",
                "time": 1749416383123,
                "messaging": [
                    {
                        "sender": {"id": "7023456789012345"},
                        "recipient": {"id": "112233445566778"},
                        "timestamp": 1749416383000,
                        "message": {
                            "mid": _MID,
                            "text": "Hello, is my refund processed yet?",
                        },
                    }
                ],
            }
        ],
    }
).encode()
META_SECRET = "0123456789abcdef0123456789abcdef"

# Switchboard's own JSON events (formats in adapters/chat.py and adapters/voice.py).
CHAT = json.dumps(
    {
        "type": "chat.message",
        "session_id": "sess-8f3a2c41",
        "event_id": "evt-000117",
        "customer": {"id": "cust-1042", "name": "Bo Jensen", "email": "bo@example.net"},
        "text": "My card has been blocked since this morning, can you help?",
        "language": "en",
        "attributes": {"page": "/help/cards", "plan": "gold"},
    }
).encode()
VOICE_JSON = json.dumps(
    {
        "type": "call.queued",
        "call_id": "1763859000.4211",
        "from": "+34911234567",
        "to": "+34900100200",
        "ivr": {"menu": "2", "lang": "es"},
        "language": "es",
        "attributes": {"trunk": "madrid-1"},
    }
).encode()

# A typical customer mail: multipart/alternative (text + HTML) and a small PDF, 2.3 KB.
_PDF = base64.encodebytes(b"%PDF-1.4\n" + bytes(range(256)) * 3).decode()
EMAIL = (
    "Return-Path: <ana.lima@example.org>\r\n"
    "Received: from mx.example.org (mx.example.org [192.0.2.10])\r\n"
    "\tby mail.switchboard.example.com with ESMTPS id 4Xk2; Sun, 23 Nov 2026 01:10:00 +0000\r\n"
    "From: Ana Lima <ana.lima@example.org>\r\n"
    "To: Support <support@switchboard.example.com>\r\n"
    "Subject: =?utf-8?q?Cart=C3=A3o_bloqueado?= - card blocked after travel\r\n"
    "Date: Sun, 23 Nov 2026 01:09:58 +0000\r\n"
    "Message-ID: <CAF9x2q7Hn0m3kP@mail.example.org>\r\n"
    "In-Reply-To: <case-4521@switchboard.example.com>\r\n"
    "References: <case-4521@switchboard.example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="outer"\r\n'
    "\r\n"
    "--outer\r\n"
    'Content-Type: multipart/alternative; boundary="alt"\r\n'
    "\r\n"
    "--alt\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Hello,\r\n\r\nMy card was blocked after I used it abroad. Can you unblock it?=\r\n"
    " The statement is attached.\r\n\r\nObrigada,\r\nAna\r\n"
    "\r\n"
    "--alt\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><body><p>Hello,</p><p>My card was blocked after I used it abroad. Can you"
    " unblock it? The statement is attached.</p><p>Obrigada,<br>Ana</p></body></html>\r\n"
    "--alt--\r\n"
    "\r\n"
    "--outer\r\n"
    'Content-Type: application/pdf; name="statement.pdf"\r\n'
    'Content-Disposition: attachment; filename="statement.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n" + _PDF.replace("\n", "\r\n") + "--outer--\r\n"
).encode()


# -- cases -----------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    payload_bytes: int
    run: Callable[[], object]  # raw bytes in, Inbound(s) out
    reference_name: str
    reference: Callable[[], object]
    kind: str = "parse"  # "parse" or "signature"


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load(module: str) -> ModuleType | None:
    """The module, or None (with a note when it exists but does not import)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            note(f"{module}: import failed: {exc}")
        return None
    except ImportError as exc:  # e.g. a sibling module mid-edit
        note(f"{module}: import failed: {exc}")
        return None


def first_function(mod: ModuleType, names: Iterable[str]) -> Callable[..., Any] | None:
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def _items(result: object) -> list[Any]:
    return list(result) if isinstance(result, list | tuple) else [result]


def _form(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("utf-8"), keep_blank_values=True)


def twilio_cases() -> list[Case]:
    mod = load("adapters.twilio")
    if mod is None:
        note("skip twilio: adapters/twilio.py not found")
        return []
    pairs = _form(TWILIO_VOICE)
    sig = mod.expected_signature(TWILIO_URL, pairs, TWILIO_TOKEN)
    mod.verify_signature(TWILIO_URL, pairs, sig, TWILIO_TOKEN)
    return [
        Case(
            "twilio voice (incoming call)",
            len(TWILIO_VOICE),
            lambda: mod.parse_voice(dict(_form(TWILIO_VOICE))),
            "parse_qsl",
            lambda: _form(TWILIO_VOICE),
        ),
        Case(
            "twilio sms (MMS, 2 media)",
            len(TWILIO_SMS),
            lambda: mod.parse_sms(dict(_form(TWILIO_SMS))),
            "parse_qsl",
            lambda: _form(TWILIO_SMS),
        ),
        Case(
            "twilio signature (HMAC-SHA1, 2 URL forms)",
            len(TWILIO_VOICE),
            lambda: mod.verify_signature(TWILIO_URL, pairs, sig, TWILIO_TOKEN),
            "parse_qsl",
            lambda: _form(TWILIO_VOICE),
            kind="signature",
        ),
    ]


def mail_cases() -> list[Case]:
    for module in ("adapters.mail", "adapters.email"):
        mod = load(module)
        if mod is not None:
            break
    else:
        note("skip email: neither adapters/mail.py nor adapters/email.py found")
        return []
    parse = first_function(mod, ("parse_message", "parse"))
    if parse is None:
        note(f"skip email: {mod.__name__} has no parse_message()")
        return []
    return [
        Case(
            "email (multipart, text+html+pdf)",
            len(EMAIL),
            lambda: parse(EMAIL),
            "message_from_bytes (compat32)",
            lambda: email.message_from_bytes(EMAIL),
        )
    ]


def meta_cases() -> list[Case]:
    mod = load("adapters.meta")
    if mod is None:
        note("skip meta: adapters/meta.py not found")
        return []
    parse = first_function(mod, ("parse_webhook", "parse"))
    if parse is None:
        note("skip meta: adapters.meta has no parse_webhook()")
        return []
    cases: list[Case] = []
    for label, raw in (("whatsapp text", META_WHATSAPP), ("messenger text", META_MESSENGER)):
        cases.append(
            Case(
                f"meta {label}",
                len(raw),
                lambda raw=raw: parse(json.loads(raw)),  # type: ignore[misc]
                "json.loads",
                lambda raw=raw: json.loads(raw),  # type: ignore[misc]
            )
        )
    verify = first_function(mod, ("verify_signature",))
    if verify is not None:
        header = (
            "sha256=" + hmac.new(META_SECRET.encode(), META_WHATSAPP, hashlib.sha256).hexdigest()
        )
        cases.append(
            Case(
                "meta signature (HMAC-SHA256)",
                len(META_WHATSAPP),
                lambda: verify(META_WHATSAPP, header, META_SECRET),
                "json.loads",
                lambda: json.loads(META_WHATSAPP),
                kind="signature",
            )
        )
    return cases


def json_cases(label: str, module: str, names: tuple[str, ...], sample: bytes) -> list[Case]:
    """Adapters of Switchboard's own JSON formats.

    The built-in sample keeps the figure comparable from run to run; only if the
    adapter refuses it (its format moved on) is the first test fixture
    (`tests/adapters/fixtures/<name>/*.json`) that parses into a MESSAGE used instead.
    """
    mod = load(module)
    if mod is None:
        note(f"skip {label}: {module.replace('.', '/')}.py not found or not importable")
        return []
    parse = first_function(mod, names)
    if parse is None:
        note(f"skip {label}: {module} has none of {', '.join(names)}")
        return []
    folder = FIXTURES / module.rpartition(".")[2]
    candidates = [("built-in sample", sample)]
    candidates += [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.json"))]
    for source, raw in candidates:
        try:
            items = _items(parse(json.loads(raw)))
        except Exception:
            continue
        if any(str(getattr(i, "kind", "")) == "message" for i in items):
            name = label if source == "built-in sample" else f"{label} ({source})"
            return [
                Case(
                    name,
                    len(raw),
                    lambda raw=raw: parse(json.loads(raw)),  # type: ignore[misc]
                    "json.loads",
                    lambda raw=raw: json.loads(raw),  # type: ignore[misc]
                )
            ]
    note(f"skip {label}: neither the built-in sample nor a fixture parses into a MESSAGE")
    return []


def all_cases() -> list[Case]:
    cases = twilio_cases() + mail_cases() + meta_cases()
    cases += json_cases("chat message", "adapters.chat", ("parse_event", "parse"), CHAT)
    cases += json_cases("voice json call.queued", "adapters.voice", ("parse_event",), VOICE_JSON)
    usable: list[Case] = []
    for case in cases:
        try:  # a sample the adapter refuses is a note, not a benchmark figure
            case.run()
            case.reference()
        except Exception as exc:
            note(f"skip {case.name}: the sample raised {type(exc).__name__}: {exc}")
            continue
        usable.append(case)
    return usable


# -- timing ----------------------------------------------------------------------------


def loop_time(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls per loop so that one loop takes about `min_time` seconds."""
    n = 1
    while True:
        took = loop_time(fn, n)
        if took >= min_time / 4:
            return max(1, int(n * min_time / took))
        n *= 4


def measure(case: Case, repeat: int, min_time: float) -> dict[str, Any]:
    n_run = calibrate(case.run, min_time)
    n_ref = calibrate(case.reference, min_time)
    loop_time(case.run, n_run)  # warm-up
    loop_time(case.reference, n_ref)
    best_run = best_ref = float("inf")
    for _ in range(repeat):
        best_run = min(best_run, loop_time(case.run, n_run) / n_run)
        best_ref = min(best_ref, loop_time(case.reference, n_ref) / n_ref)
    return {
        "case": case.name,
        "kind": case.kind,
        "payload_bytes": case.payload_bytes,
        "per_s": round(1 / best_run, 1),
        "us": round(best_run * 1e6, 2),
        "reference": case.reference_name,
        "reference_per_s": round(1 / best_ref, 1),
        "reference_us": round(best_ref * 1e6, 2),
        "cost_x": round(best_run / best_ref, 2),
    }


# -- report ----------------------------------------------------------------------------


def host_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (0 off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'case':<44} {'bytes':>6} {'msgs/s':>10} {'us':>8}  {'reference':<30} {'ref/s':>10}"
    print(head + f" {'cost_x':>7}")
    for r in rows:
        print(
            f"{r['case']:<44} {r['payload_bytes']:>6} {r['per_s']:>10,.0f} {r['us']:>8.2f}  "
            f"{r['reference']:<30} {r['reference_per_s']:>10,.0f} {r['cost_x']:>7.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtests.adapters",
        description="Messages per second each channel adapter parses and normalizes, "
        "with a same-run standard-library reference.",
    )
    ap.add_argument("--repeat", type=int, default=300, help="timed loops per function (best of)")
    ap.add_argument("--min-time", type=float, default=0.002, help="seconds per timed loop")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--json", action="store_true", help="print only one JSON line")
    args = ap.parse_args(argv)

    cases = [c for c in all_cases() if args.only.lower() in c.name.lower()]
    if not cases:
        note("no adapter case to run")
        return 1
    rows = []
    wall, cpu, host = time.perf_counter(), time.process_time(), host_busy_s()
    for case in cases:
        note(f"measuring {case.name} ...")
        rows.append(measure(case, args.repeat, args.min_time))
    wall = time.perf_counter() - wall
    # Cores other processes kept busy meanwhile: near 0 means the figures are clean.
    other = (host_busy_s() - host - (time.process_time() - cpu)) / wall
    out = {
        "benchmark": "adapters",
        "machine": machine_info("adapters"),
        "repeat": args.repeat,
        "min_time_s": args.min_time,
        "wall_s": round(wall, 1),
        "other_cores": round(max(other, 0.0), 2),
        "results": rows,
    }
    if not args.json:
        print_table(rows)
        print(f"other processes used {out['other_cores']} cores during the {wall:.0f} s run")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
