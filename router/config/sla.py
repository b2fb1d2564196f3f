"""Loading `[calendars.<id>]`, a queue's `sla` policy and its hours.

Kept apart from `loader.py`; it uses the same `_Loader` primitives, so every
error still reads `<file>: <key path>: <problem>`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from . import metrics as metrics_section
from .model import (
    LIVE_CHANNELS,
    CalendarConfig,
    ClosedAction,
    Escalation,
    EscalationAction,
    SlaKind,
    SlaPriority,
    SlaTarget,
)

if TYPE_CHECKING:
    from .loader import _Loader

CALENDAR_KEYS = ("timezone", "hours", "holidays")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLA_KEYS = (
    "threshold_s",
    "target",
    "warn_at",
    "first_response_s",
    "resolution_s",
    "calendar",
    "priority",
    "escalation",
)
PRIORITY_KEYS = ("min", "threshold_s", "first_response_s", "resolution_s")
ESCALATION_KEYS = ("on", "sla", "action", "by", "queue", "webhook")
LEVELS = ("warning", "breach")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*\Z")
_RANGE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+\Z")


def _key(path: str, key: str) -> str:
    """Append a key the way TOML would spell it (quoted when not bare), like loader.py."""
    part = key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
    return f"{path}.{part}" if path else part


def _hhmm(h: str, m: str) -> int:
    return int(h) * 60 + int(m)


def calendars(
    ld: _Loader, value: object, path: str, default_zone: str
) -> dict[str, CalendarConfig]:
    out: dict[str, CalendarConfig] = {}
    for raw_id, raw in ld.table(value, path).items():
        p = _key(path, raw_id)
        cid = ld.ident(raw_id, p, "calendar")
        out[cid] = calendar(ld, cid, raw, p, default_zone)
    return out


def calendar(ld: _Loader, cid: str, value: object, path: str, default_zone: str) -> CalendarConfig:
    t = ld.table(value, path)
    ld.keys(t, path, CALENDAR_KEYS)
    zone = default_zone
    if "timezone" in t:
        zone = metrics_section.zone(ld, t["timezone"], _key(path, "timezone"))
    hpath = _key(path, "hours")
    if "hours" not in t:
        ld.fail(hpath, 'required: e.g. { mon = ["09:00-17:00"], ... }')
    week: list[tuple[tuple[int, int], ...]] = [()] * 7
    for day, ranges in ld.table(t["hours"], hpath).items():
        dpath = _key(hpath, day)
        if day not in WEEKDAYS:
            ld.fail(dpath, f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        week[WEEKDAYS.index(day)] = day_ranges(ld, ranges, dpath)
    if not any(week):
        ld.fail(hpath, "has no open hours on any day; a calendar must open at some time")
    holidays: set[date] = set()
    if "holidays" in t:
        ppath = _key(path, "holidays")
        for i, item in enumerate(ld.array(t["holidays"], ppath)):
            holidays.add(holiday(ld, item, f"{ppath}[{i}]"))
    return CalendarConfig(cid, zone, tuple(week), frozenset(holidays))


def day_ranges(ld: _Loader, value: object, path: str) -> tuple[tuple[int, int], ...]:
    """["08:00-14:00", "15:00-19:00"]: sorted, not overlapping; 24:00 ends the day."""
    out: list[tuple[int, int]] = []
    for i, item in enumerate(ld.array(value, path)):
        p = f"{path}[{i}]"
        text = ld.string(item, p)
        m = _RANGE.match(text.strip())
        bad = f'bad range {text!r}: use "HH:MM-HH:MM" with HH:MM from 00:00 to 24:00'
        if m is None:
            ld.fail(p, bad)
        h1, m1, h2, m2 = m.groups()
        if int(m1) > 59 or int(m2) > 59 or int(h1) > 24 or int(h2) > 24:
            ld.fail(p, bad)
        a, b = _hhmm(h1, m1), _hhmm(h2, m2)
        if a > 1440 or b > 1440:
            ld.fail(p, bad)
        if b <= a:
            ld.fail(p, f"bad range {text!r}: the end must be after the start")
        out.append((a, b))
    ordered = sorted(out)
    for (a1, b1), (a2, _) in itertools.pairwise(ordered):
        if a2 < b1:
            first = f"{a1 // 60:02d}:{a1 % 60:02d}-{b1 // 60:02d}:{b1 % 60:02d}"
            ld.fail(path, f"ranges overlap: {first} and one starting {a2 // 60:02d}:{a2 % 60:02d}")
    return tuple(ordered)


def holiday(ld: _Loader, value: object, path: str) -> date:
    if isinstance(value, date):  # a TOML date literal: 2026-12-25
        return value
    text = ld.string(value, path)
    if _DATE.match(text) is None:
        ld.fail(path, f'bad date {text!r}: use "YYYY-MM-DD"')
    try:
        return date.fromisoformat(text)
    except ValueError:
        ld.fail(path, f"bad date {text!r}: no such day")


def share(ld: _Loader, raw: object, path: str, *, allow_one: bool) -> float:
    """A share in (0, 1] (or (0, 1)), as a number or a percentage string like "80%"."""
    from .loader import _expected

    top = "1]" if allow_one else "1)"
    rule = f'must be in (0, {top} or a percentage like "80%"'
    if isinstance(raw, str):
        match = _PERCENT.match(raw)
        if match is None:
            ld.fail(path, f"{rule}, got {raw!r}")
        value = float(match.group(1)) / 100.0
    elif isinstance(raw, bool) or not isinstance(raw, int | float):
        ld.fail(path, _expected(f'number in (0, {top} or percentage string like "80%"', raw))
    else:
        value = ld.number(raw, path)
    if not (0.0 < value <= 1.0 if allow_one else 0.0 < value < 1.0):
        ld.fail(path, rule)
    return value


def opt_duration(ld: _Loader, t: Mapping[str, object], path: str, key: str) -> float | None:
    return ld.opt_number(t, path, key, 0.0, gt=0) if key in t else None


def sla(
    ld: _Loader,
    value: object,
    path: str,
    queue_ids: tuple[str, ...],
    calendar_ids: Mapping[str, CalendarConfig],
    qid: str,
) -> SlaTarget:
    """A queue's policy: the inline `{ threshold_s, target }` form, or a table with
    warn_at, first_response_s, resolution_s, calendar, priority and escalation."""
    t = ld.table(value, path)
    ld.keys(t, path, SLA_KEYS)
    d = SlaTarget()
    target = d.target
    if "target" in t:
        target = share(ld, t["target"], _key(path, "target"), allow_one=True)
    warn_at = d.warn_at
    if "warn_at" in t:
        warn_at = share(ld, t["warn_at"], _key(path, "warn_at"), allow_one=False)
    cal: str | None = None
    if "calendar" in t:
        cp = _key(path, "calendar")
        cal = ld.string(t["calendar"], cp)
        if cal not in calendar_ids:
            known = ", ".join(calendar_ids) or "(none)"
            ld.fail(cp, f"unknown calendar {cal!r}; defined calendars: {known}")
    prios: list[SlaPriority] = []
    if "priority" in t:
        pp = _key(path, "priority")
        for i, raw in enumerate(ld.array(t["priority"], pp)):
            prios.append(priority(ld, raw, f"{pp}[{i}]"))
            if any(p.min == prios[-1].min for p in prios[:-1]):
                ld.fail(f"{pp}[{i}].min", f"min = {prios[-1].min} is listed twice")
    escs: list[Escalation] = []
    if "escalation" in t:
        ep = _key(path, "escalation")
        for i, raw in enumerate(ld.array(t["escalation"], ep)):
            escs.append(escalation(ld, raw, f"{ep}[{i}]", queue_ids, qid))
    resolution = opt_duration(ld, t, path, "resolution_s")
    for i, e in enumerate(escs):
        if e.sla is SlaKind.RESOLUTION and resolution is None:
            ld.fail(
                f"{_key(path, 'escalation')}[{i}].sla",
                '"resolution" needs resolution_s in this sla table',
            )
    return SlaTarget(
        threshold_s=ld.opt_number(t, path, "threshold_s", d.threshold_s, gt=0),
        target=target,
        warn_at=warn_at,
        first_response_s=opt_duration(ld, t, path, "first_response_s"),
        resolution_s=resolution,
        calendar=cal,
        priority=tuple(sorted(prios, key=lambda p: p.min)),
        escalation=tuple(escs),
        timed=True,
    )


def priority(ld: _Loader, value: object, path: str) -> SlaPriority:
    t = ld.table(value, path)
    ld.keys(t, path, PRIORITY_KEYS)
    mp = _key(path, "min")
    if "min" not in t:
        ld.fail(mp, "required: the lowest contact priority these targets apply to")
    low = ld.integer(t["min"], mp)
    if not -1000 <= low <= 1000:
        ld.fail(mp, "must be in -1000..1000")
    out = SlaPriority(
        min=low,
        threshold_s=opt_duration(ld, t, path, "threshold_s"),
        first_response_s=opt_duration(ld, t, path, "first_response_s"),
        resolution_s=opt_duration(ld, t, path, "resolution_s"),
    )
    if out.threshold_s is None and out.first_response_s is None and out.resolution_s is None:
        ld.fail(path, "sets no target: give threshold_s, first_response_s or resolution_s")
    return out


def escalation(
    ld: _Loader, value: object, path: str, queue_ids: tuple[str, ...], qid: str
) -> Escalation:
    t: dict[str, Any] = ld.table(value, path)
    ld.keys(t, path, ESCALATION_KEYS)
    op = _key(path, "on")
    if "on" not in t:
        ld.fail(op, 'required: "warning" or "breach"')
    on = ld.string(t["on"], op)
    if on not in LEVELS:
        ld.fail(op, f"must be one of warning, breach, got {on!r}")
    ap = _key(path, "action")
    if "action" not in t:
        ld.fail(ap, f"required: one of {', '.join(a.value for a in EscalationAction)}")
    action = ld.choice(t["action"], ap, EscalationAction)
    kind = ld.choice(t["sla"], _key(path, "sla"), SlaKind) if "sla" in t else None
    needs = {
        "by": EscalationAction.RAISE_PRIORITY,
        "queue": EscalationAction.MOVE_QUEUE,
        "webhook": EscalationAction.NOTIFY,
    }
    for key, owner in needs.items():
        if key in t and action is not owner:
            ld.fail(_key(path, key), f'only allowed with action = "{owner.value}"')
    by = 1
    if "by" in t:
        by = ld.integer(t["by"], _key(path, "by"))
        if not 1 <= by <= 1000:
            ld.fail(_key(path, "by"), "must be in 1..1000")
    queue: str | None = None
    if action is EscalationAction.MOVE_QUEUE:
        qp = _key(path, "queue")
        if "queue" not in t:
            ld.fail(qp, 'required with action = "move_queue"')
        queue = ld.string(t["queue"], qp)
        if queue == qid:
            ld.fail(qp, f"must name another queue, not {qid!r} itself")
        if queue not in queue_ids:
            ld.fail(qp, f"unknown queue {queue!r}; defined queues: {', '.join(queue_ids)}")
    webhook: str | None = None
    if action is EscalationAction.NOTIFY:
        wp = _key(path, "webhook")
        if "webhook" not in t:
            ld.fail(wp, 'required with action = "notify": a webhook subscription id')
        webhook = ld.ident(t["webhook"], wp, "webhook")
    return Escalation(on=on, action=action, sla=kind, by=by, queue=queue, webhook=webhook)


def hours(
    ld: _Loader,
    t: Mapping[str, object],
    path: str,
    qid: str,
    queue_ids: tuple[str, ...],
    calendar_ids: Mapping[str, CalendarConfig],
    channels: tuple[str, ...] = (),
) -> tuple[str | None, ClosedAction, str | None]:
    """A queue's `hours`, `when_closed` and `closed_queue`. A queue with hours that
    serves a live channel (voice, chat) may not hold contacts until the opening: a
    caller or chat visitor cannot wait all night."""
    cal: str | None = None
    hp = _key(path, "hours")
    if "hours" in t:
        cal = ld.string(t["hours"], hp)
        if cal not in calendar_ids:
            known = ", ".join(calendar_ids) or "(none)"
            ld.fail(hp, f"unknown calendar {cal!r}; defined calendars: {known}")
    when = ClosedAction.WAIT
    wp = _key(path, "when_closed")
    if "when_closed" in t:
        if cal is None:
            ld.fail(wp, "has no effect without hours")
        when = ld.choice(t["when_closed"], wp, ClosedAction)
    live = [ch for ch in channels if ch in LIVE_CHANNELS]
    if cal is not None and when is ClosedAction.WAIT and live:
        said = 'is "wait"' if "when_closed" in t else 'defaults to "wait"'
        ld.fail(
            wp,
            f"{said}, but the queue serves the live channel {live[0]!r}: a caller cannot "
            'be held until the opening; use "overflow" (with closed_queue) or "refuse"',
        )
    closed: str | None = None
    cp = _key(path, "closed_queue")
    if when is ClosedAction.OVERFLOW:
        if "closed_queue" not in t:
            ld.fail(cp, 'required when when_closed = "overflow"')
        closed = ld.string(t["closed_queue"], cp)
        if closed == qid:
            ld.fail(cp, f"must name another queue, not {qid!r} itself")
        if closed not in queue_ids:
            ld.fail(cp, f"unknown queue {closed!r}; defined queues: {', '.join(queue_ids)}")
    elif "closed_queue" in t:
        ld.fail(cp, 'only allowed when when_closed = "overflow"')
    return cal, when, closed
