"""The trace and roster formats that replays read and converters and generators write.

Trace: JSONL, one contact per line, in arrival order:
    {"at": 12.5, "id": "c42", "channel": "voice", "queue": "support",
     "skills": {"spanish": 3}, "priority": 1, "language": "es", "handle_s": 184.0,
     "patience_s": 95.0, "customer": {"id": "k17"}}
Only `at`, `id`, `channel`, `queue` and `handle_s` are required. `patience_s`
null (or absent) means the customer never abandons.

Roster: JSON, {"agents": [{"id": "a1", "pool": "inhouse", "skills": {"spanish": 4},
"capacity": {"voice": 1}, "shifts": [[0, 28800]]}]}; an agent without `shifts` is
available the whole time. Other tools write these files, so the field names are
fixed (docs/traces.md). Bad input raises `FormatError` naming the file, line and field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class FormatError(ValueError):
    """A trace or roster that does not follow the format; the message says where."""


@dataclass(frozen=True)
class TraceContact:
    at: float  # seconds from the start of the trace
    id: str
    channel: str
    queue: str
    handle_s: float
    patience_s: float | None = None  # None: never abandons
    skills: dict[str, int] = field(default_factory=dict)
    priority: int = 0
    language: str | None = None
    customer: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "id": self.id,
            "channel": self.channel,
            "queue": self.queue,
            "handle_s": self.handle_s,
            "patience_s": self.patience_s,
        }
        if self.skills:
            out["skills"] = self.skills
        if self.priority:
            out["priority"] = self.priority
        if self.language is not None:
            out["language"] = self.language
        if self.customer is not None:
            out["customer"] = self.customer
        return out


@dataclass(frozen=True)
class RosterAgent:
    id: str
    pool: str
    skills: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    shifts: tuple[tuple[float, float], ...] | None = None  # None: always available

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "pool": self.pool,
            "skills": self.skills,
            "capacity": self.capacity,
        }
        if self.shifts is not None:
            out["shifts"] = [list(s) for s in self.shifts]
        return out


@dataclass(frozen=True)
class Roster:
    agents: tuple[RosterAgent, ...]

    def to_json(self) -> dict[str, Any]:
        return {"agents": [a.to_json() for a in self.agents]}


# -- validation helpers --------------------------------------------------------------


def _where(src: str, line: int | None, key: str) -> str:
    return f"{src}:{line}: {key}" if line is not None else f"{src}: {key}"


def _number(v: Any, where: str, *, ge: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FormatError(f"{where}: must be a number, got {v!r}")
    if v < ge:
        raise FormatError(f"{where}: must be >= {ge:g}, got {v!r}")
    return float(v)


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 200:
        raise FormatError(f"{where}: must be a non-empty string of at most 200 characters")
    return v


def _levels(v: Any, where: str, *, lo: int, hi: int) -> dict[str, int]:
    if not isinstance(v, dict):
        raise FormatError(f"{where}: must be an object of name -> integer")
    out: dict[str, int] = {}
    for k, n in v.items():
        if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
            raise FormatError(f"{where}.{k}: must be an integer {lo}..{hi}, got {n!r}")
        out[str(k)] = n
    return out


_CONTACT_KEYS = {
    "at",
    "id",
    "channel",
    "queue",
    "handle_s",
    "patience_s",
    "skills",
    "priority",
    "language",
    "customer",
}


def parse_contact(obj: Any, src: str = "<trace>", line: int | None = None) -> TraceContact:
    if not isinstance(obj, dict):
        raise FormatError(f"{_where(src, line, 'line')}: must be a JSON object")
    for key in ("at", "id", "channel", "queue", "handle_s"):
        if key not in obj:
            raise FormatError(f"{_where(src, line, key)}: required")

    def w(key: str) -> str:
        return _where(src, line, key)

    patience = obj.get("patience_s")
    priority = obj.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise FormatError(f"{w('priority')}: must be an integer, got {priority!r}")
    language = obj.get("language")
    customer = obj.get("customer")
    if customer is not None and not isinstance(customer, dict):
        raise FormatError(f"{w('customer')}: must be an object")
    return TraceContact(
        at=_number(obj["at"], w("at")),
        id=_text(obj["id"], w("id")),
        channel=_text(obj["channel"], w("channel")),
        queue=_text(obj["queue"], w("queue")),
        handle_s=_number(obj["handle_s"], w("handle_s")),
        patience_s=None if patience is None else _number(patience, w("patience_s")),
        skills=_levels(obj.get("skills", {}), w("skills"), lo=1, hi=5),
        priority=priority,
        language=None if language is None else _text(language, w("language")),
        customer=customer,
    )


def read_trace(path: str | Path) -> Iterator[TraceContact]:
    """The contacts of a JSONL trace, in file order; arrivals must not go backwards."""
    src = str(path)
    last = -math.inf
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{src}:{n}: not JSON: {exc.msg}") from None
            c = parse_contact(obj, src, n)
            if c.at < last:
                raise FormatError(f"{src}:{n}: at: arrivals must be in order ({c.at} < {last})")
            last = c.at
            if c.id in seen:
                raise FormatError(f"{src}:{n}: id: {c.id!r} is already on line {seen[c.id]}")
            seen[c.id] = n
            yield c


def write_trace(path: str | Path, contacts: Iterable[TraceContact]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for c in contacts:
            f.write(json.dumps(c.to_json(), separators=(",", ":")) + "\n")
            n += 1
    return n


def parse_agent(obj: Any, src: str, i: int) -> RosterAgent:
    p = f"{src}: agents[{i}]"
    if not isinstance(obj, dict):
        raise FormatError(f"{p}: must be an object")
    for key in ("id", "pool"):
        if key not in obj:
            raise FormatError(f"{p}.{key}: required")
    shifts = None
    if obj.get("shifts") is not None:
        raw = obj["shifts"]
        if not isinstance(raw, list):
            raise FormatError(f"{p}.shifts: must be a list of [start_s, end_s]")
        out: list[tuple[float, float]] = []
        for j, s in enumerate(raw):
            sp = f"{p}.shifts[{j}]"
            if not isinstance(s, list) or len(s) != 2:
                raise FormatError(f"{sp}: must be [start_s, end_s]")
            start, end = _number(s[0], sp), _number(s[1], sp)
            if end <= start:
                raise FormatError(f"{sp}: end must be after start")
            out.append((start, end))
        shifts = tuple(sorted(out))
    return RosterAgent(
        id=_text(obj["id"], f"{p}.id"),
        pool=_text(obj["pool"], f"{p}.pool"),
        skills=_levels(obj.get("skills", {}), f"{p}.skills", lo=1, hi=5),
        capacity=_levels(obj.get("capacity", {}), f"{p}.capacity", lo=0, hi=100),
        shifts=shifts,
    )


def read_roster(path: str | Path) -> Roster:
    src = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{src}: not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("agents"), list):
        raise FormatError(f'{src}: must be an object with an "agents" list')
    agents = tuple(parse_agent(a, src, i) for i, a in enumerate(doc["agents"]))
    ids = [a.id for a in agents]
    if len(set(ids)) != len(ids):
        dup = next(x for x in ids if ids.count(x) > 1)
        raise FormatError(f"{src}: agents: duplicate id {dup!r}")
    return Roster(agents)


def write_roster(path: str | Path, roster: Roster) -> None:
    Path(path).write_text(json.dumps(roster.to_json(), indent=1) + "\n", encoding="utf-8")
