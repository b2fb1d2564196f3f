"""The HTML report: figures, plot geometry, escaping, the command line, and the page in
headless Chromium. Reports are built by loadtests.report.build_report from hand-made
outcomes, so every expected number below is worked out from those outcomes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from loadtests.html_report import PLOT_H, TOP, main, render_html
from loadtests.report import Outcome, build_report
from loadtests.trace import RosterAgent

from ..dashboard.conftest import Tab, browser, tab

__all__ = ["browser", "tab"]  # Chromium fixtures, shared with the dashboard tests

ROOT = Path(__file__).resolve().parents[2]
BASE = TOP + PLOT_H  # the y of a plot's zero line
EVIL = 'sales <script>alert("x")</script>'  # queue names are user data
POOL = "in<house>"


def _o(queue: str, at_s: float, *, wait_s: float | None = None, gave_up_s: float | None = None,
       agent: str = "a1") -> Outcome:  # fmt: skip
    at = round(at_s * 1000)
    return Outcome(
        queue=queue,
        channel="voice",
        arrived_ms=at,
        handle_ms=60_000,
        answered_ms=None if wait_s is None else at + round(wait_s * 1000),
        abandoned_ms=None if gave_up_s is None else at + round(gave_up_s * 1000),
        agent=agent,
    )


def outcomes() -> dict[str, Outcome]:
    """Seven 15-minute intervals; arrivals in 0, 1, 3, 4 and 6 only."""
    return {
        "o1": _o(EVIL, 0, wait_s=0),  # interval 0: 2 of 4 within 20 s
        "o2": _o(EVIL, 10, wait_s=3),
        "o3": _o(EVIL, 20, wait_s=25),
        "o4": _o("support & co", 30, gave_up_s=8),
        "o5": _o("support & co", 1000, wait_s=4, agent="a2"),  # interval 1: 2 of 2
        "o6": _o("support & co", 1100, wait_s=2, agent="a2"),
        "o7": _o(EVIL, 3000, gave_up_s=2000),  # interval 3: 0 of 1
        "o8": _o(EVIL, 4000, wait_s=0),  # interval 4: 1 of 1
        "o9": _o("support & co", 6000),  # interval 6: still waiting at the end (0 of 1)
    }


EXPECTED_SL = [0.5, 1.0, None, 0.0, 1.0, None, 0.0]
# buckets: 0, <=5, <=10, <=20, <=30, ..., >1200 (14)
EXPECTED_ANSWERED = [2, 3, 0, 0, 1] + [0] * 9
EXPECTED_ABANDONED = [0, 0, 1] + [0] * 10 + [1]


def built(**extra: Any) -> dict[str, Any]:
    rep = build_report(
        mode="virtual",
        tenant="t-html",
        seed=7,
        outcomes=outcomes(),
        queue_counts={},
        pool_counts={},
        agents=[RosterAgent("a1", POOL), RosterAgent("a2", "vendor")],
        rejected={},
        sl_threshold_s=20,
        grace_ms=0,
        start_ms=0,
        end_ms=6_300_000,
        wall_s=1.5,
    )
    rep.update(extra)
    return rep


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each `.v` tile value."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def find(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and cls in a.get("class", "").split()]


def points(attr: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in attr.split())]


def tile(page: str, name: str) -> str:
    m = re.search(rf'data-figure="{name}"><div class="k">[^<]*</div><div class="v">([^<]*)<', page)
    assert m, name
    return m.group(1)


def test_the_report_the_page_is_drawn_from() -> None:
    plots = built()["plots"]
    assert plots["intervals"]["interval_s"] == 900
    assert plots["intervals"]["service_level"] == EXPECTED_SL
    assert plots["wait_histogram"]["answered"] == EXPECTED_ANSWERED
    assert plots["wait_histogram"]["abandoned"] == EXPECTED_ABANDONED
    assert max(plots["waiting"]["max"]) == 2  # o3 and o4, between 30 s and 38 s


def test_figures_and_tables() -> None:
    page = render_html(built())
    assert tile(page, "offered") == "9"
    assert tile(page, "answered") == "6"
    assert tile(page, "abandoned") == "2"
    assert tile(page, "still waiting") == "1"
    assert tile(page, "service level") == "55.6%"  # 5 within 20 s of 9
    assert '<div class="k">service level (within 20 s)</div>' in page
    assert tile(page, "abandon rate") == "22.2%"
    assert tile(page, "ASA") == "5.7 s"  # (0 + 3 + 25 + 4 + 2 + 0) / 6
    rows = re.findall(r'<tr data-queue="([^"]*)"><td>([^<]*)</td><td class="offered">(\d+)<', page)
    esc = "sales &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert rows == [(esc, esc, "5"), ("support &amp; co", "support &amp; co", "4")]
    assert '<tr data-pool="in&lt;house&gt;"><td>in&lt;house&gt;</td>' in page
    assert '<td class="answered">4</td>' in page  # the pool's: o1, o2, o3, o8
    assert "Latency" not in page and "Errors" not in page  # virtual: nothing to show


def test_nothing_is_loaded_and_user_strings_are_escaped() -> None:
    page = render_html(built(tenant='<img src=x onerror="alert(1)">'))
    tags = Elements(page).tags
    assert {t for t, _ in tags} & {"script", "img", "link", "iframe", "object"} == set()
    assert [a for _, attrs in tags for a in attrs if a in {"src", "href", "style"}] == []
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"] * 3
    assert "tenant &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "Content-Security-Policy\" content=\"default-src 'none'" in page


def test_the_bars_are_as_tall_as_their_counts() -> None:
    el = Elements(render_html(built()))
    for kind, expected in (("answered", EXPECTED_ANSWERED), ("abandoned", EXPECTED_ABANDONED)):
        bars = sorted(el.find("rect", kind), key=lambda a: int(a["data-bucket"]))
        assert [int(b["data-count"]) for b in bars] == expected
        for b, n in zip(bars, expected, strict=True):
            h = float(b["height"])
            assert float(b["y"]) + h == pytest.approx(BASE, abs=0.01)  # standing on the axis
            # the axis goes up to 3 (the tallest bar), so each contact is a third of it
            assert h == pytest.approx(n / 3 * PLOT_H, abs=0.01), (kind, b["data-bucket"])
    tallest = max(float(b["height"]) for b in el.find("rect", "bar"))
    assert tallest == pytest.approx(PLOT_H, abs=0.01)


def test_the_waiting_area_reaches_the_peak() -> None:
    rep = built()
    el = Elements(render_html(rep))
    (area,) = el.find("polygon", "waiting")
    assert area["data-max"] == "2"
    ys = [y for _, y in points(area["points"])]
    assert min(ys) == pytest.approx(TOP, abs=0.01)  # 2 on an axis that ends at 2
    steps = len(rep["plots"]["waiting"]["max"])
    assert len(ys) == 2 * steps + 2  # a flat top for each step, closed on the axis


def test_service_level_line_breaks_where_intervals_are_empty() -> None:
    el = Elements(render_html(built()))
    lines = el.find("polyline", "sl-line")
    assert [(a["data-from"], a["data-to"]) for a in lines] == [("0", "1"), ("3", "4")]
    (dot,) = el.find("circle", "sl-point")
    assert dot["data-interval"] == "6"
    # y: 0 at the axis, 1 at the top; x: the middle of the interval
    assert [y for _, y in points(lines[0]["points"])] == pytest.approx([TOP + PLOT_H / 2, TOP])
    assert [y for _, y in points(lines[1]["points"])] == pytest.approx([BASE, TOP])
    assert float(dot["cy"]) == pytest.approx(BASE)
    x0, x1 = (x for x, _ in points(lines[0]["points"]))
    assert float(dot["cx"]) - x1 == pytest.approx(5 * (x1 - x0), abs=0.05)  # 6.5 vs 1.5


def test_the_threshold_is_in_the_title() -> None:
    page = render_html(built())
    assert (
        "<figcaption>Service level per 15-minute interval: answered within 20 s, "
        "by arrival</figcaption>" in page
    )


def test_realtime_latency_and_errors_are_shown_when_present() -> None:
    page = render_html(
        built(
            mode="realtime",
            routing_latency_ms={"p50": 1.25, "p99": 4.5, "max": 12.0},
            ingest_latency_ms={"p50": 2.0, "p99": None, "max": 9.0},
            errors={"POST /v1/contacts: 503": 3, "<timeout>": 1},
        )
    )
    assert "<h1>Replay report (realtime)</h1>" in page
    row = re.search(r'<tr data-latency="routing_latency_ms">(.*?)</tr>', page)
    assert row and re.findall(r">([^<]+)</td>", row.group(1)) == [
        "routing (enqueue to offer)",
        "1.25 ms",
        "4.50 ms",
        "12.00 ms",
    ]
    assert '<td class="p99">\u2013</td>' in page  # the ingest p99 that is null
    assert "<li>POST /v1/contacts: 503: 3</li><li>&lt;timeout&gt;: 1</li>" in page


def _write(tmp_path: Path, rep: Any) -> Path:
    p = tmp_path / "r.json"
    p.write_text(json.dumps(rep))
    return p


def _broken(path: str, value: Any) -> dict[str, Any]:
    rep = copy.deepcopy(built())
    *parents, last = path.split(".")
    obj = rep
    for k in parents:
        obj = obj[k]
    if value is KeyError:
        del obj[last]
    else:
        obj[last] = value
    return rep


@pytest.mark.parametrize(
    ("rep", "message"),
    [
        ([1, 2], "(top level): must be a JSON object (a replay report)"),
        (_broken("plots.waiting.step_s", KeyError), "plots.waiting.step_s: required"),
        (_broken("plots.waiting.step_s", 0), "plots.waiting.step_s: must be a positive number"),
        (
            _broken("plots.wait_histogram.answered", [1, 2, 3]),
            "plots.wait_histogram.answered: must have 14 entries, has 3",
        ),
        (
            _broken("plots.intervals.service_level", [1.5, 1, None, 0, 1, None, 0]),
            "plots.intervals.service_level[0]: must be between 0 and 1",
        ),
        (_broken("offered", "9"), "offered: must be a number"),
        (
            _broken("routing_latency_ms", {"p50": "fast"}),
            "routing_latency_ms.p50: must be a number or null",
        ),
    ],
)
def test_cli_names_the_file_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rep: Any, message: str
) -> None:
    src = _write(tmp_path, rep)
    assert main([str(src), "-o", str(tmp_path / "out.html")]) == 2
    assert capsys.readouterr().err == f"html_report: error: {src}: {message}\n"
    assert not (tmp_path / "out.html").exists()


def test_cli_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main([str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"html_report: error: {missing}: No such file or directory\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"offered": 1,\n  oops}')
    assert main([str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"html_report: error: {bad}: line 2 column 3: not JSON: "
        "Expecting property name enclosed in double quotes\n"
    )


def test_cli_writes_the_page(tmp_path: Path) -> None:
    src = _write(tmp_path, built())
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.html_report", str(src)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = tmp_path / "r.html"  # by default, beside the report
    assert out.read_text() == render_html(built())
    assert run.stderr.startswith(f"html_report: wrote {out} (")
    usage = subprocess.run(
        [sys.executable, "-m", "loadtests.html_report", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert usage.returncode == 0 and "-o OUT, --out OUT" in usage.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "loadtests.html_report"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines()[-1].startswith("html_report: error: the following")


async def test_the_page_in_chromium(tab: Tab, tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(built(mode="realtime", errors=["HTTP 503 on ingest"])))
    requested: list[str] = []
    tab.page.on("request", lambda r: requested.append(r.url))
    await tab.page.goto(page_file.as_uri())
    assert await tab.page.title() == "Replay report (realtime)"
    charts = await tab.page.eval_on_selector_all(
        "svg.chart",
        "cs => cs.map(c => [c.getAttribute('class'), c.getBoundingClientRect().width,"
        " c.getBoundingClientRect().height])",
    )
    assert [c[0] for c in charts] == ["chart waits", "chart waiting", "chart service-level"]
    assert all(w > 600 and h > 150 for _, w, h in charts), charts
    # laid out: the tallest bar is drawn as tall as the plot (scaled to the page)
    heights = await tab.page.eval_on_selector_all(
        "rect.bar", "rs => rs.map(r => r.getBoundingClientRect().height)"
    )
    assert len(heights) == 28 and max(heights) > 100
    assert await tab.page.text_content("tr[data-queue='support & co'] td.offered") == "4"
    assert requested == [page_file.as_uri()]  # nothing else was fetched
    await tab.screenshot(tmp_path, "replay-report.png")
    assert tab.errors == [], tab.errors
