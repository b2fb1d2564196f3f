"""The synthetic generator: determinism, and rates, mixes and durations within
statistical tolerances computed here (4 standard errors, so a correct generator
fails about once in 15,000 runs per check, and the seeds are fixed anyway)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from loadtests.generate import DAILY_PROFILE, main
from loadtests.trace import TraceContact, read_roster, read_trace

Z = 4.0  # standard errors allowed


def _gen(tmp_path: Path, *argv: str, name: str = "t.jsonl") -> list[TraceContact]:
    out = tmp_path / name
    assert main(["--out", str(out), *argv]) == 0
    return list(read_trace(out))


def test_same_seed_same_file_other_seed_differs(tmp_path: Path) -> None:
    args: tuple[str, ...] = (
        "--hours",
        "2",
        "--rate",
        "300",
        "--profile",
        "daily",
        "--patience",
        "exp:60",
    )
    args += ("--mix", "voice=0.5,chat=0.5", "--handle", "lognormal:200:80")
    _gen(tmp_path, *args, "--seed", "1", name="a.jsonl")
    _gen(tmp_path, *args, "--seed", "1", name="b.jsonl")
    _gen(tmp_path, *args, "--seed", "2", name="c.jsonl")
    a, b, c = ((tmp_path / f"{x}.jsonl").read_bytes() for x in "abc")
    assert a == b and a != c and a


def test_flat_rate_within_poisson_tolerance(tmp_path: Path) -> None:
    rate, hours = 600.0, 40.0
    trace = _gen(tmp_path, "--hours", str(hours), "--rate", str(rate), "--seed", "3")
    expected = rate * hours
    assert abs(len(trace) - expected) <= Z * math.sqrt(expected), (len(trace), expected)
    assert all(0 <= c.at < hours * 3600 for c in trace)
    assert [c.at for c in trace] == sorted(c.at for c in trace)
    # the second half has as many as the first (homogeneous)
    half = sum(1 for c in trace if c.at < hours * 1800)
    assert abs(half - expected / 2) <= Z * math.sqrt(expected / 2)


def test_daily_profile_follows_the_curve(tmp_path: Path) -> None:
    rate, days = 400.0, 3
    trace = _gen(
        tmp_path,
        "--hours",
        str(24 * days),
        "--rate",
        str(rate),
        "--profile",
        "daily",
        "--seed",
        "4",
    )
    expected_total = rate * 24 * days
    assert abs(len(trace) - expected_total) <= Z * math.sqrt(expected_total)
    per_hour = Counter(int(c.at // 3600) % 24 for c in trace)
    mean = sum(DAILY_PROFILE) / 24
    for hour, weight in enumerate(DAILY_PROFILE):
        expected = rate * weight / mean * days
        assert abs(per_hour[hour] - expected) <= Z * math.sqrt(expected) + 1, (hour, per_hour[hour])
    assert per_hour[10] > 10 * per_hour[3]


def test_burst_multiplies_the_rate(tmp_path: Path) -> None:
    rate = 360.0
    trace = _gen(
        tmp_path, "--hours", "4", "--rate", str(rate), "--burst", "3600:1800:5", "--seed", "5"
    )
    inside = sum(1 for c in trace if 3600 <= c.at < 5400)
    outside = len(trace) - inside
    exp_in, exp_out = rate * 0.5 * 5, rate * 3.5
    assert abs(inside - exp_in) <= Z * math.sqrt(exp_in)
    assert abs(outside - exp_out) <= Z * math.sqrt(exp_out)


def test_mix_and_queue_shares(tmp_path: Path) -> None:
    shares = {"voice": 0.6, "chat": 0.3, "email": 0.1}
    trace = _gen(
        tmp_path,
        "--hours", "20", "--rate", "500", "--seed", "6",
        "--mix", "voice=0.6,chat=0.3,email=0.1", "--queues", "sales=1,care=3",
    )  # fmt: skip
    n = len(trace)
    channels = Counter(c.channel for c in trace)
    for ch, p in shares.items():
        assert abs(channels[ch] / n - p) <= Z * math.sqrt(p * (1 - p) / n), (ch, channels[ch] / n)
    care = sum(1 for c in trace if c.queue == "care") / n
    assert abs(care - 0.75) <= Z * math.sqrt(0.75 * 0.25 / n)


@pytest.mark.parametrize(
    ("spec", "mean", "sd"),
    [("exp:180", 180.0, 180.0), ("lognormal:240:120", 240.0, 120.0)],
)
def test_handle_means(tmp_path: Path, spec: str, mean: float, sd: float) -> None:
    trace = _gen(tmp_path, "--hours", "20", "--rate", "500", "--handle", spec, "--seed", "7")
    n = len(trace)
    got = sum(c.handle_s for c in trace) / n
    assert abs(got - mean) <= Z * sd / math.sqrt(n), got
    var = sum((c.handle_s - got) ** 2 for c in trace) / (n - 1)
    assert 0.8 * sd < math.sqrt(var) < 1.2 * sd
    assert all(c.patience_s is None for c in trace)  # default: never abandon


def test_exponential_patience(tmp_path: Path) -> None:
    trace = _gen(tmp_path, "--hours", "20", "--rate", "500", "--patience", "exp:90", "--seed", "8")
    pats = [c.patience_s for c in trace]
    assert all(p is not None and p >= 0 for p in pats)
    n = len(pats)
    got = sum(p for p in pats if p is not None) / n
    assert abs(got - 90) <= Z * 90 / math.sqrt(n), got


def test_roster_pools(tmp_path: Path) -> None:
    roster = tmp_path / "r.json"
    _gen(
        tmp_path, "--hours", "1", "--rate", "10", "--seed", "1", "--roster", str(roster),
        "--pools", "inhouse:3,vendor:2", "--mix", "voice=0.7,chat=0.3",
    )  # fmt: skip
    agents = read_roster(roster).agents
    assert [(a.id, a.pool) for a in agents] == [
        ("inhouse-1", "inhouse"),
        ("inhouse-2", "inhouse"),
        ("inhouse-3", "inhouse"),
        ("vendor-1", "vendor"),
        ("vendor-2", "vendor"),
    ]
    assert all(a.capacity == {"chat": 1, "voice": 1} and a.shifts is None for a in agents)


def test_profile_file(tmp_path: Path) -> None:
    prof = tmp_path / "p.txt"
    prof.write_text("0\n1\n")  # nothing before noon
    trace = _gen(tmp_path, "--hours", "24", "--rate", "100", "--profile", str(prof), "--seed", "9")
    assert trace and all(c.at >= 43200 for c in trace)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--handle", "gamma:3"], "--handle: expected exp:MEAN, lognormal:MEAN:SD"),
        (["--handle", "exp:-1"], "--handle: expected"),
        (["--patience", "lognormal:5:1"], "--patience: expected exp:MEAN or none"),
        (["--mix", "voice=x"], "--mix: voice: weight must be a number"),
        (["--mix", "voice=0"], "--mix: weights must not all be 0"),
        (["--burst", "10:20"], "--burst: expected AT_S:DURATION_S:FACTOR"),
        (["--burst", "10:0:2"], "--burst: need AT_S >= 0, DURATION_S > 0"),
        (["--profile", "weekly"], "--profile: expected flat, daily or a file"),
        (["--rate", "-1"], "--rate: must be >= 0"),
        (["--hours", "0"], "--hours: must be > 0"),
        (["--roster", "r.json"], "--roster: give --agents N or --pools"),
        (["--roster", "r.json", "--pools", "inhouse"], "--pools: expected POOL:N"),
    ],
)
def test_bad_options_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = {"--hours": "1", "--rate": "10", "--seed": "1"}
    for i in range(0, len(argv), 2):
        base[argv[i]] = argv[i + 1]
    if "--roster" in base:
        base["--roster"] = str(tmp_path / base["--roster"])
    flat = [x for kv in base.items() for x in kv]
    assert main(["--out", str(tmp_path / "t.jsonl"), *flat]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_help() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
