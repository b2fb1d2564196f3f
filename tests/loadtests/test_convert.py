"""The converters: Anonymous Bank rules on a hand-written excerpt and on the real month,
and the generic CSV converter's column mapping and errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from loadtests.convert import SLOT_S, main
from loadtests.trace import read_roster, read_trace

MONTH = Path("/work/shared/data/anonymous-bank-1999-08.csv.gz")
HEADER = (
    "vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,"
    "q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server"
)
Z = "0:00:00"
ROWS = [
    # line 2: served after a 40 s wait
    "AA01,11,123,2,PS,1999-08-01,9:00:00,9:00:30,30,9:00:30,9:01:10,40,AGENT,9:01:10,9:04:10,180,ANNA",
    # line 3: served at once, no customer id
    f"AA01,12,0,0,NW,1999-08-01,9:09:50,9:10:00,10,{Z},{Z},0,AGENT,9:10:01,9:12:01,120,BEN",
    # line 4: hung up in the agent queue after 95 s
    f"AA01,13,0,1,IN,1999-08-01,9:19:00,9:20:00,60,9:20:00,9:21:35,95,HANG,{Z},{Z},0,NO_SERVER",
    # line 5: hung up in the voice menu
    f"AA01,14,0,0,PS,1999-08-01,9:30:00,9:30:20,20,{Z},{Z},0,HANG,{Z},{Z},0,NO_SERVER",
    # line 6: phantom
    f"AA01,15,0,0,PS,1999-08-01,9:31:00,9:31:05,5,{Z},{Z},0,PHANTOM,{Z},{Z},0,NO_SERVER",
    # line 7: malformed (too few columns)
    "AA01,16,0,0,PS,1999-08-01,9:32:00",
    # line 8: malformed (bad clock time)
    "AA01,17,0,0,PS,1999-08-01,9:33:00,9:3x:00,20,9:33:20,9:34:00,40,AGENT,9:34:00,9:35:00,60,ANNA",
    # line 9: served by ANNA again, 9:40-9:45 (joins the 9:00-9:30 slot into one shift)
    "AA01,18,77,0,PS,1999-08-01,9:39:00,9:39:50,50,9:39:50,9:40:00,10,AGENT,9:40:00,9:45:00,300,ANNA",
    # line 10: negative menu time (entry after exit, as in the real log): arrives before line 9
    "AA01,19,0,0,PS,1999-08-01,9:39:40,9:38:00,-100,9:38:00,9:38:30,30,AGENT,9:38:30,9:39:00,30,NO_SERVER",
    # line 11: next day, NE, service 8:25-8:35 spans two half hours
    "AA01,11,0,0,NE,1999-08-02,8:24:00,8:24:50,50,8:24:50,8:25:00,10,AGENT,8:25:00,8:35:00,600,ANNA",
]
DAY = 86400


def _write(tmp_path: Path, rows: list[str], name: str = "bank.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    src = _write(tmp_path, ROWS)
    code = main(
        [
            "anonymous-bank",
            "--input",
            str(src),
            "--trace",
            str(tmp_path / "t.jsonl"),
            "--roster",
            str(tmp_path / "r.json"),
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_bank_inclusion_and_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys)
    assert code == 0
    assert "in the trace: 6 (served 5, abandoned in queue 1)" in out
    assert "left out: PHANTOM 1, hung up in the voice menu 1" in out
    assert "malformed rows skipped: 2" in out
    assert "bank.csv:7: 7 columns, expected 17" in out
    assert "bank.csv:8: vru_exit: not a H:MM:SS time" in out
    trace = list(read_trace(tmp_path / "t.jsonl"))
    by_id = {c.id: c for c in trace}
    assert [c.id for c in trace] == [
        "1999-08-01-11",
        "1999-08-01-12",
        "1999-08-01-13",
        "1999-08-01-19",
        "1999-08-01-18",
        "1999-08-02-11",
    ]
    served = by_id["1999-08-01-11"]
    assert served.at == 9 * 3600 + 30  # vru_exit, from the first day's midnight
    assert (served.handle_s, served.patience_s) == (180.0, None)  # ser_time; censored
    assert (served.queue, served.channel, served.priority) == ("PS", "voice", 2)
    assert served.customer == {"id": "123"} and served.skills == {"PS": 1}
    assert by_id["1999-08-01-12"].customer is None
    gone = by_id["1999-08-01-13"]
    assert (gone.at, gone.patience_s, gone.handle_s, gone.queue, gone.priority) == (
        9 * 3600 + 1200,
        95.0,
        0.0,
        "IN",
        1,
    )
    assert by_id["1999-08-01-19"].at == 9 * 3600 + 38 * 60
    assert by_id["1999-08-02-11"].at == DAY + 8 * 3600 + 24 * 60 + 50

    agents = {a.id: a for a in read_roster(tmp_path / "r.json").agents}
    assert set(agents) == {"ANNA", "BEN"}  # the NO_SERVER call is not an agent
    anna = agents["ANNA"]
    assert anna.pool == "inhouse" and anna.capacity == {"voice": 1}
    assert anna.skills == {"NE": 3, "PS": 3}
    assert anna.shifts == ((9 * 3600, 10 * 3600), (DAY + 8 * 3600, DAY + 9 * 3600))
    assert agents["BEN"].shifts == ((9 * 3600, 9 * 3600 + SLOT_S),)
    assert agents["BEN"].skills == {"NW": 3}


def test_bank_fitted_patience(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, "--patience", "fitted", "--seed", "7")
    assert code == 0
    # censored exponential MLE: all waits (40+0+95+10+30+10) over 1 abandonment
    assert "fitted patience: exponential, mean 185.0 s" in out
    first = (tmp_path / "t.jsonl").read_text()
    waits = {"1999-08-01-11": 40, "1999-08-01-12": 0, "1999-08-01-18": 10, "1999-08-01-19": 30}
    for c in read_trace(tmp_path / "t.jsonl"):
        if c.id in waits:
            assert c.patience_s is not None and c.patience_s > waits[c.id]
        else:
            assert c.id != "1999-08-01-13" or c.patience_s == 95.0
    _run(tmp_path, capsys, "--patience", "fitted", "--seed", "7")
    assert (tmp_path / "t.jsonl").read_text() == first
    _run(tmp_path, capsys, "--patience", "fitted", "--seed", "8")
    assert (tmp_path / "t.jsonl").read_text() != first


def test_bank_date_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, "--from", "1999-08-02", "--to", "1999-08-02")
    assert code == 0
    assert "outside --from/--to 8" in out
    [only] = list(read_trace(tmp_path / "t.jsonl"))
    assert only.at == 8 * 3600 + 24 * 60 + 50  # counted from the --from day


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "/nonexistent.csv"], "/nonexistent.csv: no such file"),
        (["--from", "1999-13-01"], "--from: not a YYYY-MM-DD date"),
        (["--from", "1999-08-03", "--to", "1999-08-02"], "--to: must not be before --from"),
    ],
)
def test_bank_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    src = _write(tmp_path, ROWS)
    base = ["anonymous-bank", "--input", str(src), "--trace", str(tmp_path / "t.jsonl")]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bank_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "x.csv"
    src.write_text("call_id,date\n1,1999-08-01\n")
    assert main(["anonymous-bank", "--input", str(src), "--trace", str(tmp_path / "t")]) == 2
    assert "x.csv:1: missing column(s) vru+line" in capsys.readouterr().err


def test_real_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole month converts quickly and agrees with a count made here with csv."""
    outcome: Counter[str] = Counter()
    queues: Counter[str] = Counter()
    handle = 0
    servers = set()
    with gzip.open(MONTH, "rt", newline="") as f:
        for row in csv.DictReader(f):
            kind = row["outcome"]
            if kind == "HANG":
                kind = "HANG-menu" if row["q_start"] == "0:00:00" else "HANG-queue"
            outcome[kind] += 1
            if kind in ("AGENT", "HANG-queue"):
                queues[row["type"]] += 1
            if kind == "AGENT":
                handle += int(row["ser_time"])
                if row["server"] != "NO_SERVER":
                    servers.add(row["server"])
    t0 = time.monotonic()
    code = main(
        [
            "anonymous-bank",
            "--input",
            str(MONTH),
            "--trace",
            str(tmp_path / "t.jsonl"),
            "--roster",
            str(tmp_path / "r.json"),
        ]
    )
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\nreal month in {elapsed:.1f} s:\n{out}independent count: {dict(outcome)}")
    assert code == 0 and elapsed < 30
    assert sum(outcome.values()) == 42078  # the README's figure
    served, abandoned = outcome["AGENT"], outcome["HANG-queue"]
    assert (served, abandoned) == (31402, 7309)
    assert (
        f"in the trace: {served + abandoned} (served {served}, abandoned in queue {abandoned})"
        in out
    )
    assert f"PHANTOM {outcome['PHANTOM']}, hung up in the voice menu {outcome['HANG-menu']}" in out
    assert "malformed rows skipped: 0" in out
    trace = list(read_trace(tmp_path / "t.jsonl"))
    assert len(trace) == served + abandoned
    assert len({c.id for c in trace}) == len(trace)
    assert Counter(c.queue for c in trace) == queues
    assert sum(c.handle_s for c in trace) == handle
    assert sum(1 for c in trace if c.patience_s is not None) == abandoned
    assert 30 * DAY <= trace[-1].at < 32 * DAY
    roster = read_roster(tmp_path / "r.json")
    assert {a.id for a in roster.agents} == servers
    hours = sum(e - s for a in roster.agents for s, e in a.shifts or ()) / 3600
    assert 1000 < hours < 31 * 24 * len(servers)


# -- generic CSV -------------------------------------------------------------------


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


def _convert_csv(tmp_path: Path, src: Path, *extra: str) -> int:
    return main(["csv", "--input", str(src), "--trace", str(tmp_path / "t.jsonl"), *extra])


def test_csv_columns_and_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _csv(
        tmp_path,
        "when,ref,dur,wait,prio,cust\n0:00:05,a1,120,30,2,k1\n0:01:00,a2,60.5,,0,\n",
    )
    mapping = "at=when,id=ref,handle_s=dur,patience_s=wait,priority=prio,customer=cust"
    code = _convert_csv(
        tmp_path,
        src,
        "--map",
        mapping,
        "--time-format",
        "hms",
        "--channel",
        "chat",
        "--queue",
        "help",
    )
    assert code == 0
    assert "contacts written: 2" in capsys.readouterr().out
    a, b = read_trace(tmp_path / "t.jsonl")
    assert (a.at, a.id, a.channel, a.queue, a.handle_s, a.patience_s, a.priority) == (
        5.0,
        "a1",
        "chat",
        "help",
        120.0,
        30.0,
        2,
    )
    assert a.customer == {"id": "k1"} and b.customer is None
    assert (b.at, b.handle_s, b.patience_s) == (60.0, 60.5, None)


def test_csv_iso_times_and_queue_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _csv(
        tmp_path,
        "t,id,q,ch,h\n2024-03-01T10:00:00,x,sales,voice,10\n2024-03-01T10:00:02.5,y,care,email,20\n",
    )
    code = _convert_csv(
        tmp_path, src, "--map", "at=t,id=id,queue=q,channel=ch,handle_s=h", "--time-format", "iso"
    )
    assert code == 0
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(x["at"], x["queue"], x["channel"]) for x in lines] == [
        (0.0, "sales", "voice"),
        (2.5, "care", "email"),
    ]


@pytest.mark.parametrize(
    ("text", "mapping", "message"),
    [
        (
            "a,b,c\n1,x,5\n2,y,oops\n",
            "at=a,id=b,handle_s=c",
            "in.csv:3: column 'c' (handle_s): could not convert",
        ),
        ("a,b,c\n1,x,5\n", "at=a,id=b,handle_s=zz", "in.csv:1: no column 'zz' (for handle_s)"),
        ("a,b,c\n1,x,-5\n", "at=a,id=b,handle_s=c", "in.csv:2: handle_s: must be >= 0"),
        (
            "a,b,c\n5,x,1\n4,y,1\n",
            "at=a,id=b,handle_s=c",
            "in.csv:3: column 'a' (at): rows must be in arrival order",
        ),
        ("a,b,c\n1,x,1\n", "at=a,id=b", "--map: handle_s=COLUMN is required"),
        ("a,b,c\n1,x,1\n", "at=a,id=b,handle_s=c,bogus=a", "--map: unknown field 'bogus'"),
        ("a,b,c\n1,,1\n", "at=a,id=b,handle_s=c", "in.csv:2: column 'b' (id): empty"),
    ],
)
def test_csv_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, mapping: str, message: str
) -> None:
    src = _csv(tmp_path, text)
    assert _convert_csv(tmp_path, src, "--map", mapping, "--channel", "voice", "--queue", "q") == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1


def test_csv_needs_channel_and_queue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _csv(tmp_path, "a,b,c\n1,x,1\n")
    assert _convert_csv(tmp_path, src, "--map", "at=a,id=b,handle_s=c", "--queue", "q") == 2
    assert "channel=COLUMN or --channel" in capsys.readouterr().err


def test_help_exits_zero() -> None:
    for argv in (["--help"], ["anonymous-bank", "--help"], ["csv", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0


def test_gzip_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as g:
        g.write(("\n".join([HEADER, *ROWS]) + "\n").encode())
    src = tmp_path / "bank.csv.gz"
    src.write_bytes(buf.getvalue())
    assert main(["anonymous-bank", "--input", str(src), "--trace", str(tmp_path / "t.jsonl")]) == 0
    assert "in the trace: 6" in capsys.readouterr().out


def test_fitted_patience_exceeds_long_waits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Long waits with a short fitted mean: only the conditioning keeps patience > wait."""
    rows = [
        f"AA01,{i},0,0,PS,1999-08-01,10:00:00,10:00:{i:02d},{i},10:00:{i:02d},10:00:{i + 1:02d},1,"
        f"HANG,{Z},{Z},0,NO_SERVER"
        for i in range(40)
    ]
    rows += [
        f"AA01,{100 + i},0,0,PS,1999-08-01,11:00:00,11:00:00,0,11:00:00,11:20:00,1200,"
        f"AGENT,11:20:00,11:21:00,60,ANNA"
        for i in range(10)
    ]
    src = _write(tmp_path, rows)
    out = tmp_path / "t.jsonl"
    argv = ["anonymous-bank", "--input", str(src), "--trace", str(out), "--patience", "fitted"]
    assert main(argv) == 0
    assert "mean 301.0 s" in capsys.readouterr().out  # (40 * 1 + 10 * 1200) / 40
    served = [c for c in read_trace(out) if c.handle_s > 0]
    assert len(served) == 10
    assert all(c.patience_s is not None and c.patience_s > 1200 for c in served)
