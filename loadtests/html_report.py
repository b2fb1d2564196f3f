"""The HTML report of a replay: `python -m loadtests.html_report REPORT.json -o OUT.html`.

Turns the JSON report of loadtests/report.py (docs/replay.md) into one static HTML
file that a planner can open anywhere or attach to a ticket: the figures, the tables
per queue and per pool, and three plots drawn here as inline SVG (the distribution
of waits, waiting contacts over time, the service level per interval). The page
loads nothing (no script, no style sheet, no font from anywhere; its CSP says so),
so it looks the same offline and years later. Every string taken from the report
(queue and pool names are user data) is HTML-escaped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any, NoReturn

# Plot area of every chart, in SVG user units (the page scales them to its width).
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 30, 46
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

ANSWERED_COLOR, ABANDONED_COLOR = "#2b6cb0", "#dd6b20"
WAITING_COLOR, SL_COLOR = "#4a5568", "#2f855a"
DASH = "\u2013"  # what a figure that does not exist shows

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;
margin:0 auto;padding:24px;max-width:1000px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4a5568;margin:0 0 16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
.tile{border:1px solid #e2e8f0;border-radius:6px;padding:8px 10px}
.tile .k{color:#4a5568;font-size:12px}.tile .v{font-size:20px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}
th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal;word-break:break-all}
th{font-size:12px;color:#4a5568;font-weight:600}
figure{margin:8px 0 20px}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:#4a5568}
.grid{stroke:#edf2f7}.axis{stroke:#a0aec0}
.note{color:#4a5568;font-size:12px}.errors li{font-family:monospace}
"""

# Only inline styles; nothing else may load (no scripts at all).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class ReportError(ValueError):
    """A report that cannot be drawn: `field` is the path of what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# -- reading the report ------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ReportError(f"{path}{key}", "required")
    return obj[key]


def _dict(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    v = _get(obj, key, path)
    if not isinstance(v, dict):
        raise ReportError(f"{path}{key}", "must be an object")
    return v


def _num(obj: dict[str, Any], key: str, path: str, *, positive: bool = False) -> float:
    v = _get(obj, key, path)
    if not _is_num(v) or (positive and v <= 0):
        raise ReportError(
            f"{path}{key}", "must be a positive number" if positive else "must be a number"
        )
    return float(v)


def _counts(obj: dict[str, Any], key: str, path: str, n: int | None = None) -> list[int]:
    v = _get(obj, key, path)
    if not isinstance(v, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v
    ):
        raise ReportError(f"{path}{key}", "must be a list of counts (integers >= 0)")
    if n is not None and len(v) != n:
        raise ReportError(f"{path}{key}", f"must have {n} entries, has {len(v)}")
    return list(v)


def _opt_num(v: Any, field: str) -> float | None:
    if v is not None and not _is_num(v):
        raise ReportError(field, "must be a number or null")
    return None if v is None else float(v)


def check_report(report: Any) -> None:
    """Raises ReportError naming the first field the page cannot be drawn from."""
    if not isinstance(report, dict):
        raise ReportError("(top level)", "must be a JSON object (a replay report)")
    for key in ("offered", "answered", "abandoned"):
        _num(report, key, "")
    sl = _dict(report, "service_level", "")
    _opt_num(_get(sl, "threshold_s", "service_level."), "service_level.threshold_s")
    _opt_num(_get(sl, "value", "service_level."), "service_level.value")
    for key in ("queues", "pools"):
        table = report.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise ReportError(key, "must be an object of objects")
    for key in ("routing_latency_ms", "ingest_latency_ms"):
        lat = report.get(key)
        if lat is None:
            continue
        if not isinstance(lat, dict):
            raise ReportError(key, "must be an object {p50, p99, max}")
        for q in ("p50", "p99", "max"):
            _opt_num(lat.get(q), f"{key}.{q}")
    plots = _dict(report, "plots", "")
    wh = _dict(plots, "wait_histogram", "plots.")
    edges = _get(wh, "edges_s", "plots.wait_histogram.")
    if not isinstance(edges, list) or not edges or not all(_is_num(e) for e in edges):
        raise ReportError("plots.wait_histogram.edges_s", "must be a non-empty list of numbers")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ReportError("plots.wait_histogram.edges_s", "must be increasing")
    for key in ("answered", "abandoned"):
        _counts(wh, key, "plots.wait_histogram.", len(edges) + 1)
    w = _dict(plots, "waiting", "plots.")
    _num(w, "step_s", "plots.waiting.", positive=True)
    _counts(w, "max", "plots.waiting.")
    iv = _dict(plots, "intervals", "plots.")
    _num(iv, "interval_s", "plots.intervals.", positive=True)
    n = len(_counts(iv, "offered", "plots.intervals."))
    for key in ("answered", "abandoned"):
        _counts(iv, key, "plots.intervals.", n)
    levels = _get(iv, "service_level", "plots.intervals.")
    if not isinstance(levels, list) or len(levels) != n:
        raise ReportError("plots.intervals.service_level", f"must be a list of {n} entries")
    for i, v in enumerate(levels):
        x = _opt_num(v, f"plots.intervals.service_level[{i}]")
        if x is not None and not 0 <= x <= 1:
            raise ReportError(f"plots.intervals.service_level[{i}]", "must be between 0 and 1")


# -- formatting ----------------------------------------------------------------------


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _n(v: Any) -> str:
    """A count or other plain number, with thousands separators (two decimals at most)."""
    if not _is_num(v):
        return DASH
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.2f}".rstrip("0")


def _pct(v: Any) -> str:
    return DASH if not _is_num(v) else f"{v * 100:.1f}%"


def _secs(v: Any) -> str:
    return DASH if not _is_num(v) else f"{v:,.1f} s"


def _ms(v: Any) -> str:
    return DASH if not _is_num(v) else f"{v:,.2f} ms"


def _sl(sl: Any) -> str:
    """`{threshold_s, value}` as "85.0% in 20 s"."""
    if not isinstance(sl, dict):
        return DASH
    t = sl.get("threshold_s")
    where = f" in {_n(t)} s" if _is_num(t) else ""
    return f"{_pct(sl.get('value'))}{where}"


def _f(v: float) -> str:
    """An SVG coordinate: two decimals, no trailing zeros."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1-2-5 step that cuts `span` into about `ticks` parts."""
    raw = max(span, 1e-9) / ticks
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)


def _y_scale(top: float) -> tuple[float, list[float]]:
    """The axis maximum (>= top, >= 1) and its ticks, for counts."""
    step = max(1.0, _nice_step(max(top, 1)))
    hi = step * math.ceil(max(top, 1) / step)
    return hi, [step * k for k in range(round(hi / step) + 1)]


def _time_axis(span_s: float) -> tuple[float, Callable[[float], str], str]:
    """Tick step (s), a label for a tick, and the unit, for a time axis over span_s."""
    steps: tuple[int, ...]
    if span_s <= 300:
        steps, div, unit = (5, 10, 15, 30, 60), 1, "s"
    elif span_s <= 2 * 3600:
        steps, div, unit = (60, 120, 300, 600, 900, 1800, 3600), 60, "min"
    elif span_s <= 3 * 86_400:
        steps, div, unit = (3600, 7200, 10_800, 21_600, 43_200, 86_400), 3600, "h"
    else:
        steps, div, unit = (86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400), 86_400, "days"
    step = next((s for s in steps if span_s / s <= 8), steps[-1])
    while span_s / step > 8:
        step *= 2
    return float(step), lambda t: f"{t / div:g}", unit


def _svg_open(label: str, cls: str) -> list[str]:
    return [
        f'<svg class="chart {cls}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(label)}</title>",
    ]


def _y_axis(hi: float, ticks: Sequence[float], fmt: Callable[[float], str]) -> list[str]:
    out = []
    for t in ticks:
        y = TOP + PLOT_H - t / hi * PLOT_H
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{_f(y)}" y2="{_f(y)}"/>'
            f'<text x="{LEFT - 6}" y="{_f(y + 4)}" text-anchor="end">{_e(fmt(t))}</text>'
        )
    base = TOP + PLOT_H
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{base}" y2="{base}"/>')
    return out


def _x_time_axis(span_s: float) -> list[str]:
    step, label, unit = _time_axis(span_s)
    out = []
    t = 0.0
    while t <= span_s + 1e-9:
        x = LEFT + t / span_s * PLOT_W
        out.append(
            f'<line class="axis" x1="{_f(x)}" x2="{_f(x)}" y1="{TOP + PLOT_H}" '
            f'y2="{TOP + PLOT_H + 4}"/><text x="{_f(x)}" y="{TOP + PLOT_H + 16}" '
            f'text-anchor="middle">{_e(label(t))}</text>'
        )
        t += step
    out.append(
        f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"time from the start ({unit})</text>"
    )
    return out


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    x = LEFT + PLOT_W
    for name, color in reversed(items):
        x -= 8 + 7 * len(name) + 18
        out.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="17">{_e(name)}</text>'
        )
    return out


# -- the three plots ---------------------------------------------------------------


def wait_histogram_svg(wh: dict[str, Any]) -> tuple[str, str]:
    """Answered and abandoned contacts per wait bucket, side by side."""
    edges: list[float] = wh["edges_s"]
    answered: list[int] = wh["answered"]
    abandoned: list[int] = wh["abandoned"]
    labels = ["0" if e == 0 else f"\u2264{e:g}" for e in edges] + [f">{edges[-1]:g}"]
    hi, ticks = _y_scale(max([*answered, *abandoned, 0]))
    title = "Distribution of waits: answered vs abandoned contacts"
    out = _svg_open(title, "waits")
    out += _y_axis(hi, ticks, lambda t: f"{t:g}")
    slot = PLOT_W / len(labels)
    bar = slot * 0.38
    base = TOP + PLOT_H
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.12
        for j, (kind, counts, color) in enumerate(
            (("answered", answered, ANSWERED_COLOR), ("abandoned", abandoned, ABANDONED_COLOR))
        ):
            h = counts[i] / hi * PLOT_H
            out.append(
                f'<rect class="bar {kind}" data-bucket="{i}" data-count="{counts[i]}" '
                f'x="{_f(x0 + j * bar)}" y="{_f(base - h)}" width="{_f(bar)}" height="{_f(h)}" '
                f'fill="{color}"><title>{_e(label)} s: {counts[i]:,} {kind}</title></rect>'
            )
        out.append(
            f'<text x="{_f(LEFT + (i + 0.5) * slot)}" y="{base + 16}" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
    out.append(
        f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 6}" text-anchor="middle">wait (s)</text>'
    )
    out.append(
        f'<text x="12" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + PLOT_H / 2})">contacts</text>'
    )
    out += _legend((("answered", ANSWERED_COLOR), ("abandoned", ABANDONED_COLOR)))
    out.append("</svg>")
    return title, "\n".join(out)


def waiting_svg(w: dict[str, Any]) -> tuple[str, str]:
    """The most contacts waiting at once per step, as a stepped area."""
    step = float(w["step_s"])
    peaks: list[int] = w["max"]
    n = max(1, len(peaks))
    span = step * n
    hi, ticks = _y_scale(max([*peaks, 0]))
    title = f"Waiting contacts over time (the most waiting at once in each {step:g} s)"
    out = _svg_open(title, "waiting")
    out += _y_axis(hi, ticks, lambda t: f"{t:g}")
    base = TOP + PLOT_H

    def xy(t: float, v: float) -> str:
        return f"{_f(LEFT + t / span * PLOT_W)},{_f(base - v / hi * PLOT_H)}"

    pts = [xy(0, 0)]
    for k, v in enumerate(peaks):
        pts += [xy(k * step, v), xy((k + 1) * step, v)]
    pts.append(xy(len(peaks) * step, 0))
    out.append(
        f'<polygon class="area waiting" data-max="{max(peaks, default=0)}" '
        f'points="{" ".join(pts)}" fill="{WAITING_COLOR}" fill-opacity="0.35" '
        f'stroke="{WAITING_COLOR}" stroke-width="1"/>'
    )
    out += _x_time_axis(span)
    out.append(
        f'<text x="12" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + PLOT_H / 2})">waiting</text>'
    )
    out.append("</svg>")
    return title, "\n".join(out)


def service_level_svg(
    iv: dict[str, Any], threshold_s: float | None, overall: float | None
) -> tuple[str, str]:
    """The service level of each interval's arrivals, 0..1; no line across nulls."""
    size = float(iv["interval_s"])
    levels: list[float | None] = iv["service_level"]
    n = max(1, len(levels))
    span = size * n
    within = f"answered within {threshold_s:g} s" if threshold_s is not None else "answered"
    title = f"Service level per {_duration(size)} interval: {within}, by arrival"
    out = _svg_open(title, "service-level")
    out += _y_axis(1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0], lambda t: f"{t * 100:.0f}%")
    base = TOP + PLOT_H

    def xy(i: int, v: float) -> tuple[float, float]:
        return LEFT + (i + 0.5) * size / span * PLOT_W, base - v * PLOT_H

    if overall is not None:
        y = base - overall * PLOT_H
        out.append(
            f'<line class="overall" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{SL_COLOR}" stroke-dasharray="4 4" stroke-opacity="0.6"/>'
            f'<text x="{LEFT + PLOT_W - 4}" y="{_f(y - 4)}" text-anchor="end">'
            f"whole run {overall * 100:.1f}%</text>"
        )
    runs: list[list[int]] = []
    for i, v in enumerate(levels):
        if v is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        vals = [float(levels[i] or 0) for i in run]
        if len(run) == 1:
            x, y = xy(run[0], vals[0])
            out.append(
                f'<circle class="sl-point" data-interval="{run[0]}" cx="{_f(x)}" cy="{_f(y)}" '
                f'r="2.5" fill="{SL_COLOR}"/>'
            )
            continue
        pts = " ".join(
            f"{_f(x)},{_f(y)}" for x, y in (xy(i, v) for i, v in zip(run, vals, strict=True))
        )
        out.append(
            f'<polyline class="sl-line" data-from="{run[0]}" data-to="{run[-1]}" points="{pts}" '
            f'fill="none" stroke="{SL_COLOR}" stroke-width="1.8"/>'
        )
    out += _x_time_axis(span)
    out.append("</svg>")
    return title, "\n".join(out)


def _duration(s: float) -> str:
    if s % 86_400 == 0:
        return f"{s / 86_400:g}-day"
    if s % 3600 == 0:
        return f"{s / 3600:g}-hour"
    if s % 60 == 0:
        return f"{s / 60:g}-minute"
    return f"{s:g}-second"


# -- the page ------------------------------------------------------------------------


def _tiles(report: dict[str, Any]) -> str:
    tiles = [
        ("offered", _n(report.get("offered"))),
        ("answered", _n(report.get("answered"))),
        ("abandoned", _n(report.get("abandoned"))),
        ("still waiting", _n(report.get("still_waiting"))),
        ("service level", _pct(report["service_level"].get("value"))),
        ("P(wait)", _pct(report.get("p_wait"))),
        ("ASA", _secs(report.get("asa_s"))),
        ("AHT", _secs(report.get("aht_s"))),
        ("abandon rate", _pct(report.get("abandon_rate"))),
        ("occupancy", _pct(report.get("occupancy"))),
        ("throughput", f"{_n(report.get('throughput_per_s'))} /s"),
        ("wall time", _secs(report.get("wall_s"))),
    ]
    if _is_num(report.get("simulated_s")):
        tiles.append(("simulated", _secs(report.get("simulated_s"))))
    t = report["service_level"].get("threshold_s")
    labels = {"service level": f"service level (within {_n(t)} s)" if _is_num(t) else ""}
    out = ['<div class="tiles">']
    for key, value in tiles:
        out.append(
            f'<div class="tile" data-figure="{_e(key)}"><div class="k">'
            f"{_e(labels.get(key) or key)}</div>"
            f'<div class="v">{_e(value)}</div></div>'
        )
    out.append("</div>")
    return "\n".join(out)


def _table(
    kind: str, rows: dict[str, Any], columns: Sequence[tuple[str, str, Callable[[Any], str]]]
) -> str:
    if not rows:
        return f'<p class="note">No {kind}s in this report.</p>'
    head = "".join(f"<th>{_e(title)}</th>" for _, title, _ in columns)
    out = [f'<table class="{kind}s"><thead><tr><th>{kind}</th>{head}</tr></thead><tbody>']
    for name, figures in rows.items():
        cells = "".join(
            f'<td class="{key}">{_e(fmt(figures.get(key)))}</td>' for key, _, fmt in columns
        )
        out.append(f'<tr data-{kind}="{_e(name)}"><td>{_e(name)}</td>{cells}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


QUEUE_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("offered", "offered", _n),
    ("answered", "answered", _n),
    ("abandoned", "abandoned", _n),
    ("still_waiting", "still waiting", _n),
    ("service_level", "service level", _sl),
    ("asa_s", "ASA", _secs),
    ("aht_s", "AHT", _secs),
    ("abandon_rate", "abandon rate", _pct),
]
POOL_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("answered", "answered", _n),
    ("handled", "handled", _n),
    ("occupancy", "occupancy", _pct),
    ("asa_s", "ASA", _secs),
    ("aht_s", "AHT", _secs),
    ("service_level", "service level", _sl),
]


def _latency(report: dict[str, Any]) -> str:
    rows = []
    for key, name in (
        ("routing_latency_ms", "routing (enqueue to offer)"),
        ("ingest_latency_ms", "ingest (POST /v1/contacts)"),
    ):
        lat = report.get(key)
        if isinstance(lat, dict):
            rows.append(
                f'<tr data-latency="{key}"><td>{_e(name)}</td>'
                + "".join(
                    f'<td class="{q}">{_e(_ms(lat.get(q)))}</td>' for q in ("p50", "p99", "max")
                )
                + "</tr>"
            )
    if not rows:
        return ""
    return (
        '<h2>Latency</h2>\n<table class="latency"><thead><tr><th>latency</th><th>p50</th>'
        "<th>p99</th><th>max</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _errors(report: dict[str, Any]) -> str:
    """`errors` (realtime) and `rejected`, whatever their shape: a count, an object of
    counts or texts, or a list."""
    parts = []
    for key, title in (("rejected", "Rejected contacts"), ("errors", "Errors")):
        v = report.get(key)
        if v in (None, {}, [], 0):
            continue
        if isinstance(v, dict):
            items = [f"{_e(k)}: {_e(_n(x) if _is_num(x) else x)}" for k, x in v.items()]
        elif isinstance(v, list):
            items = [_e(x if isinstance(x, str) else json.dumps(x)) for x in v[:100]]
            if len(v) > 100:
                items.append(f"&hellip; and {len(v) - 100:,} more")
        else:
            items = [_e(_n(v) if _is_num(v) else v)]
        lis = "".join(f"<li>{x}</li>" for x in items)
        parts.append(f'<h2>{title}</h2>\n<ul class="errors {key}">{lis}</ul>')
    return "\n".join(parts)


def _figure(fid: str, chart: tuple[str, str], note: str) -> str:
    title, svg = chart
    text = f'<p class="note">{_e(note)}</p>' if note else ""
    return f'<figure id="{fid}"><figcaption>{_e(title)}</figcaption>\n{svg}\n{text}</figure>'


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a replay report; raises ReportError when a field it needs
    is missing or malformed."""
    check_report(report)
    plots = report["plots"]
    sl = report["service_level"]
    threshold = sl.get("threshold_s")
    mode = report.get("mode", "?")
    meta = ", ".join(
        f"{k} {_e(report[k])}" for k in ("mode", "tenant", "seed") if report.get(k) is not None
    )
    title = f"Replay report ({mode})"
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Switchboard replay: {meta}. Figures as defined in docs/metrics.md; '
        "the report's fields are described in docs/replay.md.</p>",
        _tiles(report),
        _latency(report),
        _errors(report),
        "<h2>Plots</h2>",
        _figure(
            "waits",
            wait_histogram_svg(plots["wait_histogram"]),
            "How long contacts waited before an agent accepted them (answered) or they "
            "left (abandoned); the last bucket holds longer waits.",
        ),
        _figure("waiting", waiting_svg(plots["waiting"]), ""),
        _figure(
            "service-level",
            service_level_svg(plots["intervals"], threshold, sl.get("value")),
            "Of the contacts that arrived in each interval; no point where an interval "
            "had no contacts to count. The dashed line is the whole run's.",
        ),
        "<h2>Queues</h2>",
        _table("queue", report.get("queues", {}), QUEUE_COLUMNS),
        "<h2>Pools</h2>",
        _table("pool", report.get("pools", {}), POOL_COLUMNS),
        "</body></html>",
    ]
    return "\n".join(x for x in body if x) + "\n"


# -- command line --------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other bad input of these commands."""

    def error(self, message: str) -> NoReturn:
        name = self.prog.rsplit(".", 1)[-1]  # "python -m loadtests.replay" -> "replay"
        self.exit(2, f"{name}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m loadtests.html_report",
        description="Render a replay's JSON report (python -m loadtests.replay --report) "
        "as one self-contained HTML page with plots.",
    )
    p.add_argument("report", help="the JSON report")
    p.add_argument(
        "-o", "--out", help="where to write the HTML (default: the report's name with .html)"
    )
    return p


def _fail(msg: str) -> int:
    print(f"html_report: error: {msg}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    src = Path(args.report)
    out = Path(args.out) if args.out else src.with_suffix(".html")
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(f"{src}: {exc.strerror}")
    except UnicodeDecodeError:
        return _fail(f"{src}: not UTF-8 text")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        return _fail(f"{src}: line {exc.lineno} column {exc.colno}: not JSON: {exc.msg}")
    try:
        page = render_html(report)
    except ReportError as exc:
        return _fail(f"{src}: {exc}")
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        return _fail(f"{out}: {exc.strerror}")
    print(f"html_report: wrote {out} ({len(page.encode()):,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
