"""Config: calendars, SLA policies (warn_at, first response, resolution, per priority,
escalation) and queue hours, with one exact message per rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from router import sla
from router.config import load_config
from router.config.model import ClosedAction, EscalationAction, SlaKind
from router.errors import QueueClosed

from .test_loader import SRC, doc, error_of, load, queue

CAL = """
[calendars.office]
timezone = "Europe/Madrid"
hours = { mon = ["08:00-14:00", "15:00-19:00"], tue = ["08:00-19:00"], sat = ["00:00-24:00"] }
holidays = ["2026-12-25", 2027-01-01]
"""


def cal(body: str) -> str:
    return f"\n[calendars.c]\n{body}\n"


def test_calendar_policy_and_hours_load() -> None:
    tail = """
[queues.q1.sla]
threshold_s = 20
target = "90%"
warn_at = 0.5
first_response_s = 3600
resolution_s = 86400
calendar = "office"

[[queues.q1.sla.priority]]
min = 5
threshold_s = 10

[[queues.q1.sla.priority]]
min = 1
first_response_s = 600

[[queues.q1.sla.escalation]]
on = "warning"
action = "raise_priority"
by = 3

[[queues.q1.sla.escalation]]
on = "breach"
sla = "resolution"
action = "notify"
webhook = "ops"

[[queues.q1.sla.escalation]]
on = "breach"
action = "move_queue"
queue = "q2"
"""
    text = doc(
        top=CAL,
        queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q2"', tail=tail)
        + queue("q2", sla="{ threshold_s = 30 }"),
    )
    t = load(text).tenants["t1"]
    c = t.calendars["office"]
    assert c.timezone == "Europe/Madrid"
    assert c.hours[0] == ((480, 840), (900, 1140))
    assert c.hours[1] == ((480, 1140),)
    assert c.hours[5] == ((0, 1440),)
    assert c.hours[6] == ()
    assert c.holidays == {date(2026, 12, 25), date(2027, 1, 1)}
    q1 = t.queues["q1"]
    assert (q1.hours, q1.when_closed, q1.closed_queue) == ("office", ClosedAction.OVERFLOW, "q2")
    s = q1.sla
    assert (s.threshold_s, s.target, s.warn_at, s.first_response_s, s.resolution_s) == (
        20,
        0.9,
        0.5,
        3600,
        86400,
    )
    assert s.calendar == "office" and s.timed
    assert [p.min for p in s.priority] == [1, 5]  # sorted
    assert [(e.on, e.action, e.sla) for e in s.escalation] == [
        ("warning", EscalationAction.RAISE_PRIORITY, None),
        ("breach", EscalationAction.NOTIFY, SlaKind.RESOLUTION),
        ("breach", EscalationAction.MOVE_QUEUE, None),
    ]
    assert s.escalation[0].by == 3 and s.escalation[1].webhook == "ops"
    assert s.escalation[2].queue == "q2"
    # the inline form keeps working, and a queue without sla has no timers
    assert t.queues["q2"].sla.threshold_s == 30 and t.queues["q2"].sla.timed
    untimed = load(doc()).tenants["t1"].queues["q1"]
    assert not untimed.sla.timed and untimed.hours is None


def test_calendar_timezone_defaults_to_the_tenant() -> None:
    text = doc(
        tenant='id = "t1"\ntimezone = "America/Bogota"',
        top=cal('hours = { mon = ["09:00-17:00"] }'),
    )
    assert load(text).tenants["t1"].calendars["c"].timezone == "America/Bogota"


Q = "queues.q1"
CASES: list[tuple[str, str, str]] = [
    (
        "calendar unknown key",
        doc(top=cal('hours = { mon = ["09:00-17:00"] }\nzone = "UTC"')),
        "calendars.c.zone: unknown key; allowed keys: holidays, hours, timezone",
    ),
    (
        "calendar without hours",
        doc(top=cal('timezone = "UTC"')),
        'calendars.c.hours: required: e.g. { mon = ["09:00-17:00"], ... }',
    ),
    (
        "unknown weekday",
        doc(top=cal('hours = { monday = ["09:00-17:00"] }')),
        "calendars.c.hours.monday: unknown weekday 'monday'; use mon, tue, wed, thu, fri, sat, sun",
    ),
    (
        "bad range",
        doc(top=cal('hours = { mon = ["9-17"] }')),
        "calendars.c.hours.mon[0]: bad range '9-17': use \"HH:MM-HH:MM\" with HH:MM from 00:00 to 24:00",
    ),
    (
        "range past midnight",
        doc(top=cal('hours = { mon = ["08:00-24:30"] }')),
        "calendars.c.hours.mon[0]: bad range '08:00-24:30': use \"HH:MM-HH:MM\" with HH:MM from 00:00 to 24:00",
    ),
    (
        "minutes",
        doc(top=cal('hours = { mon = ["08:60-12:00"] }')),
        "calendars.c.hours.mon[0]: bad range '08:60-12:00': use \"HH:MM-HH:MM\" with HH:MM from 00:00 to 24:00",
    ),
    (
        "empty range",
        doc(top=cal('hours = { mon = ["12:00-12:00"] }')),
        "calendars.c.hours.mon[0]: bad range '12:00-12:00': the end must be after the start",
    ),
    (
        "overlap",
        doc(top=cal('hours = { tue = ["13:00-19:00", "08:00-14:00"] }')),
        "calendars.c.hours.tue: ranges overlap: 08:00-14:00 and one starting 13:00",
    ),
    (
        "never open",
        doc(top=cal("hours = { mon = [] }")),
        "calendars.c.hours: has no open hours on any day; a calendar must open at some time",
    ),
    (
        "bad date",
        doc(top=cal('hours = { mon = ["09:00-17:00"] }\nholidays = ["25/12/2026"]')),
        "calendars.c.holidays[0]: bad date '25/12/2026': use \"YYYY-MM-DD\"",
    ),
    (
        "no such day",
        doc(top=cal('hours = { mon = ["09:00-17:00"] }\nholidays = ["2026-02-30"]')),
        "calendars.c.holidays[0]: bad date '2026-02-30': no such day",
    ),
    (
        "unknown zone",
        doc(top=cal('timezone = "Mars/Olympus"\nhours = { mon = ["09:00-17:00"] }')),
        "calendars.c.timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Madrid'",
    ),
    (
        "bad calendar id",
        doc(top='[calendars."a b"]\nhours = { mon = ["09:00-17:00"] }'),
        "calendars.\"a b\": invalid calendar id 'a b': must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit",
    ),
    # sla policy
    (
        "warn_at of 1",
        doc(queues=queue(sla="{ warn_at = 1 }")),
        f'{Q}.sla.warn_at: must be in (0, 1) or a percentage like "80%"',
    ),
    (
        "warn_at percent",
        doc(queues=queue(sla='{ warn_at = "x%" }')),
        f"{Q}.sla.warn_at: must be in (0, 1) or a percentage like \"80%\", got 'x%'",
    ),
    (
        "first_response_s zero",
        doc(queues=queue(sla="{ first_response_s = 0 }")),
        f"{Q}.sla.first_response_s: must be > 0",
    ),
    (
        "unknown sla calendar",
        doc(queues=queue(sla='{ calendar = "nope" }')),
        f"{Q}.sla.calendar: unknown calendar 'nope'; defined calendars: (none)",
    ),
    (
        "priority without min",
        doc(queues=queue(tail="[[queues.q1.sla.priority]]\nthreshold_s = 5\n")),
        f"{Q}.sla.priority[0].min: required: the lowest contact priority these targets apply to",
    ),
    (
        "priority without target",
        doc(queues=queue(tail="[[queues.q1.sla.priority]]\nmin = 5\n")),
        f"{Q}.sla.priority[0]: sets no target: give threshold_s, first_response_s or resolution_s",
    ),
    (
        "priority twice",
        doc(
            queues=queue(
                tail="[[queues.q1.sla.priority]]\nmin = 5\nthreshold_s = 5\n"
                "[[queues.q1.sla.priority]]\nmin = 5\nthreshold_s = 4\n"
            )
        ),
        f"{Q}.sla.priority[1].min: min = 5 is listed twice",
    ),
    (
        "escalation without on",
        doc(queues=queue(tail='[[queues.q1.sla.escalation]]\naction = "next_stage"\n')),
        f'{Q}.sla.escalation[0].on: required: "warning" or "breach"',
    ),
    (
        "escalation bad on",
        doc(
            queues=queue(tail='[[queues.q1.sla.escalation]]\non = "late"\naction = "next_stage"\n')
        ),
        f"{Q}.sla.escalation[0].on: must be one of warning, breach, got 'late'",
    ),
    (
        "escalation bad action",
        doc(queues=queue(tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "page"\n')),
        f"{Q}.sla.escalation[0].action: must be one of raise_priority, next_stage, "
        "move_queue, notify, got 'page'",
    ),
    (
        "escalation bad sla",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\nsla = "talk"\naction = "next_stage"\n'
            )
        ),
        f"{Q}.sla.escalation[0].sla: must be one of answer, first_response, resolution, got 'talk'",
    ),
    (
        "resolution escalation without resolution_s",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\nsla = "resolution"\naction = "next_stage"\n'
            )
        ),
        f'{Q}.sla.escalation[0].sla: "resolution" needs resolution_s in this sla table',
    ),
    (
        "by with notify",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "notify"\nwebhook = "w"\nby = 2\n'
            )
        ),
        f'{Q}.sla.escalation[0].by: only allowed with action = "raise_priority"',
    ),
    (
        "move_queue without queue",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "move_queue"\n'
            )
        ),
        f'{Q}.sla.escalation[0].queue: required with action = "move_queue"',
    ),
    (
        "move_queue unknown",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "move_queue"\nqueue = "zz"\n'
            )
        ),
        f"{Q}.sla.escalation[0].queue: unknown queue 'zz'; defined queues: q1",
    ),
    (
        "move_queue channel",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "move_queue"\nqueue = "q2"\n'
            )
            + queue("q2", channel='"chat"')
        ),
        f"{Q}.sla.escalation[0].queue: queue 'q2' does not serve channel 'voice'",
    ),
    (
        "notify without webhook",
        doc(queues=queue(tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "notify"\n')),
        f'{Q}.sla.escalation[0].webhook: required with action = "notify": a webhook subscription id',
    ),
    (
        "raise by zero",
        doc(
            queues=queue(
                tail='[[queues.q1.sla.escalation]]\non = "breach"\naction = "raise_priority"\nby = 0\n'
            )
        ),
        f"{Q}.sla.escalation[0].by: must be in 1..1000",
    ),
    # queue hours
    (
        "unknown hours calendar",
        doc(queues=queue(hours='"office"')),
        f"{Q}.hours: unknown calendar 'office'; defined calendars: (none)",
    ),
    (
        "when_closed without hours",
        doc(queues=queue(when_closed='"refuse"')),
        f"{Q}.when_closed: has no effect without hours",
    ),
    (
        "bad when_closed",
        doc(top=CAL, queues=queue(hours='"office"', when_closed='"drop"')),
        f"{Q}.when_closed: must be one of wait, overflow, refuse, got 'drop'",
    ),
    (
        "overflow without closed_queue",
        doc(top=CAL, queues=queue(hours='"office"', when_closed='"overflow"')),
        f'{Q}.closed_queue: required when when_closed = "overflow"',
    ),
    (
        "closed_queue with wait",
        doc(
            top=CAL,
            queues=queue(hours='"office"', closed_queue='"q2"', channel='"email"')
            + queue("q2", channel='"email"'),
        ),
        f'{Q}.closed_queue: only allowed when when_closed = "overflow"',
    ),
    (
        "live channel held by default",
        doc(top=CAL, queues=queue(hours='"office"')),
        f'{Q}.when_closed: defaults to "wait", but the queue serves the live channel '
        "'voice': a caller cannot be held until the opening; use \"overflow\" "
        '(with closed_queue) or "refuse"',
    ),
    (
        "live channel held explicitly",
        doc(
            top=CAL,
            queues=queue(
                hours='"office"', when_closed='"wait"', channels='["email", "chat"]'
            ).replace('channel = "voice"\n', ""),
        ),
        f"{Q}.when_closed: is \"wait\", but the queue serves the live channel 'chat': a "
        'caller cannot be held until the opening; use "overflow" (with closed_queue) or "refuse"',
    ),
    (
        "closed_queue itself",
        doc(top=CAL, queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q1"')),
        f"{Q}.closed_queue: must name another queue, not 'q1' itself",
    ),
    (
        "closed_queue channel",
        doc(
            top=CAL,
            queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q2"')
            + queue("q2", channel='"chat"'),
        ),
        f"{Q}.closed_queue: queue 'q2' does not serve channel 'voice'",
    ),
    (
        "closed_queue cycle of live queues",
        doc(
            top=CAL,
            queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q2"')
            + queue("q2", hours='"office"', when_closed='"overflow"', closed_queue='"q1"'),
        ),
        f"{Q}.closed_queue: closed_queue cycle: q1 -> q2 -> q1; the last queue of a chain "
        'must hold ("wait", not for live channels), refuse, or have no hours',
    ),
    (
        "closed_queue cycle behind the first queue",
        doc(
            top=CAL,
            queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q2"')
            + queue("q2", hours='"office"', when_closed='"overflow"', closed_queue='"q3"')
            + queue("q3", hours='"office"', when_closed='"overflow"', closed_queue='"q2"'),
        ),
        "queues.q2.closed_queue: closed_queue cycle: q2 -> q3 -> q2; the last queue of a "
        'chain must hold ("wait", not for live channels), refuse, or have no hours',
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sla_config_errors(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


def test_demo_has_calendar_hours_and_policies() -> None:
    demo = load_config(Path(__file__).resolve().parents[2] / "config" / "demo.toml")
    t = demo.tenants["demo"]
    assert t.calendars["madrid_office"].timezone == "Europe/Madrid"
    email = t.queues["support_email"]
    assert (email.hours, email.when_closed) == ("madrid_office", ClosedAction.WAIT)
    assert email.sla.calendar == "madrid_office" and email.sla.first_response_s == 14400
    assert {e.action for e in email.sla.escalation} == {
        EscalationAction.RAISE_PRIORITY,
        EscalationAction.NEXT_STAGE,
        EscalationAction.NOTIFY,
    }
    voice = t.queues["billing_voice"]
    assert (voice.when_closed, voice.closed_queue) == (
        ClosedAction.OVERFLOW,
        "billing_voice_vendor",
    )
    assert t.queues["support_voice_es"].when_closed is ClosedAction.REFUSE
    assert t.queues["support_chat"].hours is None  # the quickstart's queue is always open


TWILIO = '\n[providers.twilio]\nauth_token_env = "TW_TOKEN"\n'


def test_twilio_closed_message() -> None:
    """What a caller hears before the hang-up when the call's queue is closed."""
    default = load(doc(queues=queue() + TWILIO)).tenants["t1"].twilio
    assert default is not None and default.closed_message.startswith("Sorry, we are closed")
    own = load(doc(queues=queue() + TWILIO + 'closed_message = "Closed until 9"\n'))
    assert own.tenants["t1"].twilio is not None
    assert own.tenants["t1"].twilio.closed_message == "Closed until 9"
    assert error_of(doc(queues=queue() + TWILIO + 'closed_message = " "\n')) == (
        f"{SRC}: providers.twilio.closed_message: must be 1-1000 characters"
    )


def test_live_channel_with_hours_may_refuse_or_overflow() -> None:
    t = load(
        doc(
            top=CAL,
            queues=queue(hours='"office"', when_closed='"refuse"')
            + queue("q2", hours='"office"', when_closed='"overflow"', closed_queue='"q1"')
            + queue("q3", channel='"email"', hours='"office"'),
        )
    ).tenants["t1"]
    assert [t.queues[q].when_closed for q in ("q1", "q2", "q3")] == [
        ClosedAction.REFUSE,
        ClosedAction.OVERFLOW,
        ClosedAction.WAIT,
    ]


SUNDAY_3 = int(datetime(2026, 11, 22, 3, tzinfo=UTC).timestamp() * 1000)  # office closed


def test_a_live_contact_is_refused_where_the_closed_chain_would_hold_it() -> None:
    """The loader keeps live queues from holding; a config built around it (a loop of
    closed queues, a "wait" queue reached by a live contact) still never holds a
    caller: admit refuses, naming the queue asked for and its opening."""
    t = load(
        doc(
            top=CAL,
            queues=queue(hours='"office"', when_closed='"overflow"', closed_queue='"q2"')
            + queue("q2", hours='"office"', when_closed='"refuse"'),
        )
    ).tenants["t1"]
    q2 = replace(t.queues["q2"], when_closed=ClosedAction.OVERFLOW, closed_queue="q1")
    looped = replace(t, queues={**t.queues, "q2": q2})
    with pytest.raises(QueueClosed) as info:
        sla.admit(looped, looped.queues["q1"], SUNDAY_3, "voice")
    assert info.value.details["queue"] == "q1"
    assert info.value.details["opens_at"] == "2026-11-23T07:00:00.000Z"  # Monday 08:00 Madrid
    # a contact of another channel is held in the first queue seen twice, as before
    assert sla.admit(looped, looped.queues["q1"], SUNDAY_3, "email")[0].id == "q1"
    mail = load(doc(top=CAL, queues=queue(hours='"office"', channel='"email"'))).tenants["t1"]
    with pytest.raises(QueueClosed):
        sla.admit(mail, mail.queues["q1"], SUNDAY_3, "chat")
    q, held = sla.admit(mail, mail.queues["q1"], SUNDAY_3, "email")
    assert (q.id, held) == ("q1", int(datetime(2026, 11, 23, 7, tzinfo=UTC).timestamp() * 1000))
