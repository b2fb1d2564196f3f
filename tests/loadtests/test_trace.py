"""Trace and roster files: round trips, and errors that say where the input is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.trace import (
    FormatError,
    Roster,
    RosterAgent,
    TraceContact,
    read_roster,
    read_trace,
    write_roster,
    write_trace,
)

CONTACTS = [
    TraceContact(at=0.0, id="c1", channel="voice", queue="support", handle_s=184.0),
    TraceContact(
        at=12.5,
        id="c42",
        channel="voice",
        queue="support",
        handle_s=184.0,
        patience_s=95.0,
        skills={"spanish": 3},
        priority=1,
        language="es",
        customer={"id": "k17"},
    ),
    TraceContact(at=12.5, id="c43", channel="chat", queue="sales", handle_s=0.0, patience_s=None),
]


def test_trace_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    assert write_trace(path, CONTACTS) == 3
    assert list(read_trace(path)) == CONTACTS
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {
        "at": 0.0,
        "id": "c1",
        "channel": "voice",
        "queue": "support",
        "handle_s": 184.0,
        "patience_s": None,
    }


def test_roster_round_trip(tmp_path: Path) -> None:
    roster = Roster(
        (
            RosterAgent("a1", "inhouse", {"spanish": 4}, {"voice": 1}),
            RosterAgent("a2", "vendor", {}, {"chat": 3}, shifts=((0.0, 1800.0), (3600.0, 7200.0))),
        )
    )
    path = tmp_path / "r.json"
    write_roster(path, roster)
    assert read_roster(path) == roster
    doc = json.loads(path.read_text())
    assert "shifts" not in doc["agents"][0]
    assert doc["agents"][1]["shifts"] == [[0.0, 1800.0], [3600.0, 7200.0]]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"at": 1, "id": "c1", "channel": "voice", "queue": "q"}'],
            "t.jsonl:1: handle_s: required",
        ),
        (["{}", "not json"], "t.jsonl:1: at: required"),
        (
            ['{"at": 1, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1}', "not json"],
            "t.jsonl:2: not JSON",
        ),
        (
            ['{"at": -1, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1}'],
            "t.jsonl:1: at: must be >= 0",
        ),
        (
            ['{"at": 1, "id": "c1", "channel": "voice", "queue": "q", "handle_s": "x"}'],
            "t.jsonl:1: handle_s: must be a number",
        ),
        (
            [
                '{"at": 5, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1}',
                '{"at": 4, "id": "c2", "channel": "voice", "queue": "q", "handle_s": 1}',
            ],
            "t.jsonl:2: at: arrivals must be in order",
        ),
        (
            [
                '{"at": 1, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1}',
                '{"at": 2, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1}',
            ],
            "t.jsonl:2: id: 'c1' is already on line 1",
        ),
        (
            [
                '{"at": 1, "id": "c1", "channel": "voice", "queue": "q", "handle_s": 1, "skills": {"x": 9}}'
            ],
            "t.jsonl:1: skills.x: must be an integer 1..5",
        ),
    ],
)
def test_trace_errors_name_line_and_field(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as err:
        list(read_trace(path))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("[]", 'must be an object with an "agents" list'),
        ("{", "not JSON"),
        ('{"agents": [{"id": "a1"}]}', "agents[0].pool: required"),
        ('{"agents": [{"id": "a1", "pool": "p"}, {"id": "a1", "pool": "p"}]}', "duplicate id 'a1'"),
        (
            '{"agents": [{"id": "a1", "pool": "p", "shifts": [[10, 5]]}]}',
            "shifts[0]: end must be after start",
        ),
        ('{"agents": [{"id": "a1", "pool": "p", "capacity": {"voice": -1}}]}', "capacity.voice"),
        ('{"agents": [{"id": "a1", "pool": "p", "capacity": {"voice": 101}}]}', "capacity.voice"),
    ],
)
def test_roster_errors(tmp_path: Path, doc: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(doc)
    with pytest.raises(FormatError) as err:
        read_roster(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
