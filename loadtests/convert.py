"""Converters from call-center logs to the trace and roster formats (docs/traces.md).

    python -m loadtests.convert anonymous-bank --input FILE --trace OUT.jsonl --roster OUT.json
    python -m loadtests.convert csv --input FILE --trace OUT.jsonl --map at=COL,id=COL,...

Each subcommand streams its input and prints a one-screen summary. Bad input is a
one-line error naming the file, line and column (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import math
import random
import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from loadtests.trace import (
    FormatError,
    Roster,
    RosterAgent,
    TraceContact,
    parse_contact,
    write_roster,
    write_trace,
)

SLOT_S = 1800  # the roster is staffed per half hour
DAY_S = 86400
AB_COLUMNS = (
    "vru+line",
    "call_id",
    "customer_id",
    "priority",
    "type",
    "date",
    "vru_entry",
    "vru_exit",
    "vru_time",
    "q_start",
    "q_exit",
    "q_time",
    "outcome",
    "ser_start",
    "ser_exit",
    "ser_time",
    "server",
)
AB_TYPES = ("PS", "PE", "IN", "NE", "NW", "TT")
_NOT_QUEUED = "0:00:00"
_BAD_ID = re.compile(r"[^A-Za-z0-9_.\-]")


# what a corrupt or non-text input raises while it is read
_UNREADABLE = (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error)


class UsageError(Exception):
    """Bad input or options: printed as one line, exit status 2."""


def open_text(path: str | Path) -> IO[str]:
    """A text stream over a plain or gzip-compressed file (by its magic bytes)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    with open(p, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return open(p, encoding="utf-8", newline="")


def hms(text: str) -> int:
    """Seconds from midnight of an H:MM:SS clock time."""
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(x.isdigit() for x in parts):
        raise ValueError(f"not a H:MM:SS time: {text!r}")
    h, m, s = (int(x) for x in parts)
    if h > 23 or m > 59 or s > 59:
        raise ValueError(f"not a clock time: {text!r}")
    return h * 3600 + m * 60 + s


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: not a YYYY-MM-DD date: {text!r}") from None


# -- Anonymous Bank ----------------------------------------------------------------


@dataclass
class _Call:
    """One call that enters the trace, before ids, patience and ordering are final."""

    at: float
    wait: float
    handle: float
    abandoned: bool
    type: str
    priority: int
    customer: str
    key: str
    server: str | None
    served: tuple[float, float] | None  # service interval in trace seconds


@dataclass
class BankSummary:
    rows: int = 0
    served: int = 0
    abandoned: int = 0
    phantom: int = 0
    vru_hangups: int = 0
    outside_dates: int = 0
    malformed: int = 0
    malformed_lines: list[str] = field(default_factory=list)
    by_queue: Counter[str] = field(default_factory=Counter)
    agents: int = 0
    patience_mean_s: float | None = None
    first_day: str = ""
    last_day: str = ""

    def lines(self) -> list[str]:
        out = [
            f"rows read: {self.rows} (days {self.first_day} .. {self.last_day})",
            f"in the trace: {self.served + self.abandoned} "
            f"(served {self.served}, abandoned in queue {self.abandoned})",
            f"left out: PHANTOM {self.phantom}, hung up in the voice menu {self.vru_hangups}"
            + (f", outside --from/--to {self.outside_dates}" if self.outside_dates else ""),
            f"malformed rows skipped: {self.malformed}",
        ]
        out += [f"  {m}" for m in self.malformed_lines]
        if self.malformed > len(self.malformed_lines):
            out.append(f"  ... and {self.malformed - len(self.malformed_lines)} more")
        out.append("per queue: " + ", ".join(f"{q} {n}" for q, n in sorted(self.by_queue.items())))
        out.append(f"roster: {self.agents} agents")
        if self.patience_mean_s is not None:
            out.append(f"fitted patience: exponential, mean {self.patience_mean_s:.1f} s")
        return out


def read_bank(
    stream: IO[str],
    src: str,
    summary: BankSummary,
    date_from: dt.date | None,
    date_to: dt.date | None,
) -> tuple[list[_Call], dt.date | None]:
    """The calls that enter the trace (unordered) and the day `at` counts from."""
    reader = csv.reader(stream)
    try:
        head = next(reader)
    except StopIteration:
        raise UsageError(f"{src}: empty file") from None
    missing = [c for c in AB_COLUMNS if c not in head]
    if missing:
        raise UsageError(f"{src}:1: missing column(s) {', '.join(missing)}")
    header = {name: head.index(name) for name in AB_COLUMNS}
    width = len(head)
    calls: list[_Call] = []
    day0 = date_from
    last: dt.date | None = None
    for row in reader:
        summary.rows += 1
        line = reader.line_num
        if not row:
            continue
        try:
            if len(row) != width:
                raise ValueError(f"{len(row)} columns, expected {width}")
            r = {k: row[i].strip() for k, i in header.items()}
            day = dt.date.fromisoformat(r["date"])
            outcome = r["outcome"]
            if outcome not in ("AGENT", "HANG", "PHANTOM"):
                raise ValueError(f"outcome: unknown {outcome!r}")
            if (date_from and day < date_from) or (date_to and day > date_to):
                summary.outside_dates += 1
                continue
            if outcome == "PHANTOM":
                summary.phantom += 1
                continue
            if outcome == "HANG" and r["q_start"] == _NOT_QUEUED:
                summary.vru_hangups += 1
                continue
            call = _bank_call(r, day, outcome)
        except ValueError as exc:
            summary.malformed += 1
            if len(summary.malformed_lines) < 20:
                summary.malformed_lines.append(f"{src}:{line}: {exc}")
            continue
        if day0 is None or day < day0:
            day0 = day
        last = day if last is None or day > last else last
        calls.append(call)
    summary.first_day = day0.isoformat() if day0 else ""
    summary.last_day = last.isoformat() if last else ""
    return calls, day0


def _int(r: dict[str, str], col: str) -> int:
    try:
        v = int(r[col])
    except ValueError:
        raise ValueError(f"{col}: not an integer: {r[col]!r}") from None
    return v


def _clock(r: dict[str, str], col: str) -> int:
    try:
        return hms(r[col])
    except ValueError as exc:
        raise ValueError(f"{col}: {exc}") from None


def _bank_call(r: dict[str, str], day: dt.date, outcome: str) -> _Call:
    qtype = r["type"]
    if not qtype or _BAD_ID.search(qtype):
        raise ValueError(f"type: not a queue name: {qtype!r}")
    entry, exit_ = _clock(r, "vru_entry"), _clock(r, "vru_exit")
    arrive = exit_ + (DAY_S if entry - exit_ > DAY_S // 2 else 0)  # menu crossed midnight
    wait = _int(r, "q_time")
    if wait < 0:
        raise ValueError(f"q_time: negative: {wait}")
    priority = _int(r, "priority")
    customer = r["customer_id"]
    base = day.toordinal() * DAY_S  # made relative to the first day by the caller
    served: tuple[float, float] | None = None
    server: str | None = None
    handle = 0.0
    if outcome == "AGENT":
        handle = float(_int(r, "ser_time"))
        if handle < 0:
            raise ValueError(f"ser_time: negative: {handle:g}")
        start, end = _clock(r, "ser_start"), _clock(r, "ser_exit")
        if start < arrive - DAY_S // 2:  # service began after midnight
            start += DAY_S
        if end < start:
            end += DAY_S
        served = (float(base + start), float(base + end))
        # a few served calls name no agent: they stay in the trace, not in the roster
        server = r["server"] if r["server"] not in ("", "NO_SERVER") else None
    return _Call(
        at=float(base + arrive),
        wait=float(wait),
        handle=handle,
        abandoned=outcome == "HANG",
        type=qtype,
        priority=priority,
        customer=customer if customer not in ("", "0") else "",
        key=f"{day.isoformat()}-{r['call_id']}",
        server=server,
        served=served,
    )


def fit_exponential(calls: Sequence[_Call]) -> float:
    """Mean patience by the exponential MLE with right-censoring.

    Abandoned calls are observed patiences; served calls only tell that patience
    exceeded their wait. MLE mean = (sum of all waits) / (number of abandonments).
    """
    abandons = sum(1 for c in calls if c.abandoned)
    if abandons == 0:
        raise UsageError("--patience fitted: no abandoned calls to fit")
    return sum(c.wait for c in calls) / abandons


def bank_contacts(
    calls: list[_Call], day0: dt.date, patience: str, seed: int
) -> Iterator[TraceContact]:
    origin = day0.toordinal() * DAY_S
    calls.sort(key=lambda c: (c.at, c.key))
    rng = random.Random(seed)
    mean = fit_exponential(calls) if patience == "fitted" else 0.0
    seen: Counter[str] = Counter()
    for c in calls:
        seen[c.key] += 1
        cid = c.key if seen[c.key] == 1 else f"{c.key}-{seen[c.key]}"
        if c.abandoned:
            pat: float | None = c.wait
        elif patience == "fitted":
            # memoryless: patience | patience > wait  ==  wait + Exp(mean)
            pat = round(c.wait + max(rng.expovariate(1.0 / mean), 1e-3), 3)
        else:
            pat = None
        yield TraceContact(
            at=c.at - origin,
            id=cid,
            channel="voice",
            queue=c.type,
            handle_s=c.handle,
            patience_s=pat,
            skills={c.type: 1},
            priority=c.priority,
            customer={"id": c.customer} if c.customer else None,
        )


def bank_roster(calls: Sequence[_Call], day0: dt.date) -> Roster:
    """Each agent works the half-hour slots in which it served, merged into shifts."""
    origin = day0.toordinal() * DAY_S
    slots: defaultdict[str, set[int]] = defaultdict(set)
    types: defaultdict[str, set[str]] = defaultdict(set)
    for c in calls:
        if c.server is None or c.served is None:
            continue
        start, end = c.served[0] - origin, c.served[1] - origin
        first = int(start // SLOT_S)
        last = max(first, math.ceil(end / SLOT_S) - 1)
        slots[c.server].update(range(first, last + 1))
        types[c.server].add(c.type)
    agents = []
    for name in sorted(slots):
        shifts: list[tuple[float, float]] = []
        for s in sorted(slots[name]):
            if shifts and shifts[-1][1] == s * SLOT_S:
                shifts[-1] = (shifts[-1][0], float((s + 1) * SLOT_S))
            else:
                shifts.append((float(s * SLOT_S), float((s + 1) * SLOT_S)))
        agents.append(
            RosterAgent(
                id=_BAD_ID.sub("_", name)[:64],
                pool="inhouse",
                skills={t: 3 for t in sorted(types[name])},
                capacity={"voice": 1},
                shifts=tuple(shifts),
            )
        )
    return Roster(tuple(agents))


def convert_bank(args: argparse.Namespace) -> BankSummary:
    date_from = _date(args.date_from, "--from") if args.date_from else None
    date_to = _date(args.date_to, "--to") if args.date_to else None
    if date_from and date_to and date_to < date_from:
        raise UsageError("--to: must not be before --from")
    summary = BankSummary()
    with open_text(args.input) as stream:
        try:
            calls, day0 = read_bank(stream, str(args.input), summary, date_from, date_to)
        except _UNREADABLE as exc:
            raise UsageError(f"{args.input}: unreadable: {exc}") from None
    if day0 is None or not calls:
        raise UsageError(f"{args.input}: no calls enter the trace")
    summary.served = sum(1 for c in calls if not c.abandoned)
    summary.abandoned = len(calls) - summary.served
    summary.by_queue = Counter(c.type for c in calls)
    if args.patience == "fitted":
        summary.patience_mean_s = fit_exponential(calls)
    write_trace(args.trace, bank_contacts(calls, day0, args.patience, args.seed))
    if args.roster:
        roster = bank_roster(calls, day0)
        summary.agents = len(roster.agents)
        write_roster(args.roster, roster)
    return summary


# -- generic CSV -------------------------------------------------------------------

CSV_FIELDS = (
    "at",
    "id",
    "channel",
    "queue",
    "handle_s",
    "patience_s",
    "priority",
    "language",
    "customer",
    "skills",
)


def parse_map(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        name, sep, col = part.partition("=")
        name, col = name.strip(), col.strip()
        if not sep or not name or not col:
            raise UsageError(f"--map: expected FIELD=COLUMN, got {part!r}")
        if name not in CSV_FIELDS:
            raise UsageError(f"--map: unknown field {name!r} (one of {', '.join(CSV_FIELDS)})")
        if name in out:
            raise UsageError(f"--map: field {name!r} given twice")
        out[name] = col
    return out


def parse_time(text: str, fmt: str, origin: list[float]) -> float:
    """Seconds for one `at` cell; iso times count from the first row's (kept in origin)."""
    if fmt == "seconds":
        v = float(text)
    elif fmt == "hms":
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"not H:MM:SS: {text!r}")
        v = int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    else:
        t = dt.datetime.fromisoformat(text)
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        stamp = t.timestamp()
        if not origin:
            origin.append(stamp)
        v = stamp - origin[0]
    if not math.isfinite(v):
        raise ValueError(f"not a finite time: {text!r}")
    return v


def _cell_number(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {text!r}")
    return v


def csv_contacts(args: argparse.Namespace, counts: Counter[str]) -> Iterator[TraceContact]:
    cols = parse_map(args.map)
    for req in ("at", "id", "handle_s"):
        if req not in cols:
            raise UsageError(f"--map: {req}=COLUMN is required")
    if "channel" not in cols and not args.channel:
        raise UsageError("--map: give channel=COLUMN or --channel NAME")
    if "queue" not in cols and not args.queue:
        raise UsageError("--map: give queue=COLUMN or --queue NAME")
    src = str(args.input)
    origin: list[float] = []
    last = -math.inf
    with open_text(args.input) as stream:
        reader = csv.DictReader(stream, delimiter=args.delimiter)
        fields = reader.fieldnames or []
        for name, col in cols.items():
            if col not in fields:
                raise UsageError(
                    f"{src}:1: no column {col!r} (for {name}); columns: {', '.join(fields)}"
                )
        for row in reader:
            line = reader.line_num
            obj: dict[str, Any] = {}
            if "channel" not in cols:
                obj["channel"] = args.channel
            if "queue" not in cols:
                obj["queue"] = args.queue
            for name, col in cols.items():
                cell = (row.get(col) or "").strip()
                where = f"{src}:{line}: column {col!r} ({name})"
                try:
                    if not cell and name in ("at", "id", "channel", "queue", "handle_s"):
                        raise ValueError("empty")
                    if name == "at":
                        obj["at"] = parse_time(cell, args.time_format, origin)
                    elif name in ("handle_s", "patience_s"):
                        if name == "patience_s" and cell.lower() in ("", "null", "none"):
                            obj[name] = None
                        else:
                            obj[name] = _cell_number(cell)
                    elif name == "priority":
                        obj[name] = int(cell) if cell else 0
                    elif name == "customer":
                        if cell:
                            obj[name] = {"id": cell}
                    elif name == "skills":
                        obj[name] = _skills(cell)
                    elif cell:
                        obj[name] = cell
                except ValueError as exc:
                    raise UsageError(f"{where}: {exc}") from None
            try:
                c = parse_contact(obj, src, line)
            except FormatError as exc:
                raise UsageError(str(exc)) from None
            if c.at < last:
                raise UsageError(
                    f"{src}:{line}: column {cols['at']!r} (at): rows must be in arrival order "
                    f"({c.at:g} < {last:g})"
                )
            last = c.at
            counts[c.queue] += 1
            yield c


def _skills(cell: str) -> dict[str, int]:
    """`spanish:3;billing:2` -> {"spanish": 3, "billing": 2}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        name, _, level = part.partition(":")
        out[name.strip()] = int(level) if level else 1
    return out


def convert_csv(args: argparse.Namespace) -> list[str]:
    counts: Counter[str] = Counter()
    try:
        n = write_trace(args.trace, csv_contacts(args, counts))
    except _UNREADABLE as exc:
        raise UsageError(f"{args.input}: unreadable: {exc}") from None
    per = ", ".join(f"{q} {k}" for q, k in sorted(counts.items()))
    return [f"contacts written: {n}", f"per queue: {per}"]


# -- command line ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.convert",
        description="Convert call-center logs into a trace (and roster). See docs/traces.md.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "anonymous-bank",
        help="the Anonymous Bank call-by-call log (gzip or plain CSV)",
        description="Served calls and callers who hung up in the agent queue become "
        "contacts; PHANTOM calls and hang-ups in the voice menu are left out.",
    )
    b.add_argument("--input", required=True, help="the log, e.g. anonymous-bank-1999-08.csv.gz")
    b.add_argument("--trace", required=True, help="output trace (JSONL)")
    b.add_argument("--roster", help="output roster (JSON), staffed per half hour")
    b.add_argument(
        "--patience",
        choices=("censored", "fitted"),
        default="censored",
        help="served calls' patience: null (censored, default) or drawn from the fitted "
        "exponential, conditioned on exceeding the call's wait",
    )
    b.add_argument("--seed", type=int, default=0, help="seed for --patience fitted (default 0)")
    b.add_argument("--from", dest="date_from", metavar="DATE", help="first day kept (YYYY-MM-DD)")
    b.add_argument("--to", dest="date_to", metavar="DATE", help="last day kept (YYYY-MM-DD)")
    c = sub.add_parser(
        "csv",
        help="any CSV with configurable columns",
        description="Map CSV columns to trace fields. Rows must be in arrival order.",
    )
    c.add_argument("--input", required=True, help="CSV file (gzip allowed), with a header row")
    c.add_argument("--trace", required=True, help="output trace (JSONL)")
    c.add_argument(
        "--map",
        required=True,
        help="FIELD=COLUMN,...; fields: " + ", ".join(CSV_FIELDS) + " (at, id, handle_s required)",
    )
    c.add_argument("--time-format", choices=("seconds", "iso", "hms"), default="seconds")
    c.add_argument("--channel", help="channel of every row when no channel column is mapped")
    c.add_argument("--queue", help="queue of every row when no queue column is mapped")
    c.add_argument("--delimiter", default=",", help="field delimiter (default ,)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "anonymous-bank":
            lines = convert_bank(args).lines()
        else:
            lines = convert_csv(args)
    except (UsageError, FormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
