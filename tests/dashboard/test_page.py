"""The dashboard page in headless Chromium, fed by a scripted metrics stream that
follows the snapshot contract (tests/dashboard/test_live.py runs it against a real
server). What a supervisor sees: sign-in, the figures, SLA highlights, and a page
that stays the same size however long it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import GOOD_TOKEN, StubSite, Tab, pool_figures, queue_figures, snapshot

UNKNOWN = "\u2013"  # an en dash: what the page shows for a figure it does not have


QUEUE_COLUMNS = ("waiting", "longest", "sl", "target", "asa", "abandoned", "agents", "breaches")


def cell(queue: str, column: str) -> str:
    return f"tr[data-queue='{queue}'] td.{column}"


async def text(tab: Tab, selector: str) -> str:
    return (await tab.page.text_content(selector) or "").strip()


async def open_signed_in(tab: Tab, stub: StubSite) -> None:
    await tab.page.goto(f"{stub.url}#token={GOOD_TOKEN}")
    await stub.stream.wait_clients(1)


async def test_the_page_loads_without_errors_and_asks_for_a_token(tab: Tab, stub: StubSite) -> None:
    await tab.page.goto(stub.url)
    assert await tab.page.title() == "Switchboard dashboard"
    assert await tab.page.is_visible("#signin")
    assert not await tab.page.is_visible("#board")
    assert await text(tab, "#conn") == "signed out"
    assert stub.stream.connects == 0
    assert tab.errors == []


async def test_a_bad_token_is_refused_with_a_message(tab: Tab, stub: StubSite) -> None:
    await tab.page.goto(stub.url)
    await tab.page.fill("#token", "not-a-token")
    await tab.page.click("#signin-form button[type=submit]")
    await tab.wait_for(
        "() => document.getElementById('signin-error').textContent.includes('refused')"
    )
    assert await text(tab, "#signin-error") == (
        "The token was refused: the bearer token is not valid"
    )
    assert await tab.page.is_visible("#signin") and not await tab.page.is_visible("#board")
    assert await tab.page.evaluate("sessionStorage.length") == 0
    # the browser reports the 401 itself; nothing else may go wrong
    assert all("401" in e for e in tab.errors), tab.errors


async def test_a_wall_display_starts_from_the_url_and_hides_the_token(
    tab: Tab, stub: StubSite
) -> None:
    stub.stream.send(snapshot({"chat": queue_figures(waiting=2)}))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.querySelector(\"tr[data-queue='chat']\")")
    assert not await tab.page.is_visible("#signin")
    assert GOOD_TOKEN not in tab.page.url and tab.page.url == stub.url
    assert await text(tab, "#conn") == "live"
    # a reload keeps the session (the tab's sessionStorage), sign-out ends it
    await tab.page.reload()
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    await tab.page.click("#signout")
    assert await tab.page.is_visible("#signin")
    assert await text(tab, "#signin-error") == "Signed out."
    assert await tab.page.evaluate("sessionStorage.getItem('switchboard.dashboard.token')") is None
    assert await tab.page.locator("tr[data-queue]").count() == 0
    # a token typed into the address bar of an open page takes effect too
    await tab.page.evaluate(f"location.hash = '#token={GOOD_TOKEN}'")
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    assert await tab.page.locator("tr[data-queue]").count() == 1
    assert tab.page.url == stub.url
    assert tab.errors == []


async def test_figures_update_in_place_and_read_as_people_read_them(
    tab: Tab, stub: StubSite
) -> None:
    q = queue_figures(
        title="Billing chat",
        waiting=3,
        longest_wait_s=12.5,
        offered=10,
        answered=7,
        abandoned=1,
        service_level={"threshold_s": 20, "value": 0.85},
        asa_s=8.1,
        abandon_rate=0.1,
        agents_available=4,
    )
    vendor = pool_figures("outsourced", "Far Co", title="Far Co, Manila", occupancy=0.655)
    stub.stream.send(snapshot({"billing": q}, {"inhouse": pool_figures(), "far": vendor}))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.querySelector(\"tr[data-queue='billing']\")")
    row = {c: await text(tab, cell("billing", c)) for c in QUEUE_COLUMNS}
    assert row == {
        "waiting": "3",
        "longest": "13 s",
        "sl": "85%",
        "target": "80% in 20 s",
        "asa": "8.1 s",
        "abandoned": "1 (10%)",
        "agents": "4",
        "breaches": "0",
    }
    assert await text(tab, "tr[data-queue='billing'] .qname") == "Billing chat"
    far = [
        await text(tab, f"tr[data-pool='far'] td.{c}") for c in ("runby", "occupancy", "handled")
    ]
    assert far == ["Far Co, offshore", "65.5%", "5"]
    assert await text(tab, "tr[data-pool='inhouse'] td.runby") == "in-house"
    pools = await tab.page.eval_on_selector_all(
        "#pools tbody tr", "rs => rs.map(r => r.dataset.pool)"
    )
    assert pools == ["inhouse", "far"]  # in-house first, then the vendors

    # the next frame updates the same row element
    await tab.page.evaluate(
        "document.querySelector(\"tr[data-queue='billing']\").dataset.mark = 'x'"
    )
    q.update(
        waiting=7, longest_wait_s=187, asa_s=None, service_level={"threshold_s": 20, "value": None}
    )
    stub.stream.send(snapshot({"billing": q}))
    await tab.wait_for(
        f"() => document.querySelector(\"{cell('billing', 'waiting')}\").textContent === '7'"
    )
    assert await text(tab, cell("billing", "longest")) == "3:07"
    assert await text(tab, cell("billing", "asa")) == UNKNOWN
    assert await text(tab, cell("billing", "sl")) == UNKNOWN
    assert await tab.page.locator("tr[data-queue='billing'][data-mark='x']").count() == 1
    assert await tab.page.locator("tr[data-pool='far']").count() == 0  # gone from the snapshot
    assert tab.errors == []


def breach(queue: str, contact: str, at: int, kind: str = "sla.breached") -> dict[str, Any]:
    return {"type": kind, "contact": contact, "queue": queue, "sla": "answer", "at": at}


async def test_sla_breaches_and_warnings_are_highlighted_as_they_happen(
    tab: Tab, stub: StubSite, tmp_path: Path
) -> None:
    at = 1_700_000_000_000
    queues = {
        "calm": queue_figures(waiting=0, service_level={"threshold_s": 20, "value": 0.95}),
        "slow": queue_figures(waiting=5, service_level={"threshold_s": 20, "value": 0.5}),
        "hot": queue_figures(waiting=1, service_level={"threshold_s": 20, "value": 0.9}),
    }
    stub.stream.send(snapshot(queues, at=at))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.querySelectorAll('tr[data-queue]').length === 3")
    slow = tab.page.locator("tr[data-queue='slow']")
    assert "below-target" in (await slow.get_attribute("class") or "")
    assert await text(tab, "tr[data-queue='slow'] .badge") == "below target"
    assert "below-target" not in (
        await tab.page.get_attribute("tr[data-queue='calm']", "class") or ""
    )
    assert await text(tab, "#alert-feed") == ""

    alerts = [breach("hot", "c2", at + 900), breach("hot", "c1", at + 500, "sla.warning")]
    stub.stream.send(snapshot(queues, alerts=alerts, at=at + 1000))
    await tab.wait_for(
        "() => document.querySelector(\"tr[data-queue='hot']\").classList.contains('breach')"
    )
    hot_class = await tab.page.get_attribute("tr[data-queue='hot']", "class") or ""
    assert "flash" in hot_class
    assert await text(tab, "tr[data-queue='hot'] .badge") == "SLA breach"
    items = await tab.page.eval_on_selector_all(
        "#alert-feed li", "ls => ls.map(l => l.className + ': ' + l.textContent)"
    )
    assert len(items) == 2
    assert items[0].startswith("breach: ") and "Breach hot: answer SLA, contact c2" in items[0]
    assert items[1].startswith("warning: ") and "Warning hot: answer SLA, contact c1" in items[1]
    assert await tab.page.get_attribute("#alert-feed", "aria-live") == "polite"
    # by urgency, the breached queue comes first, then the one below target
    order = await tab.page.eval_on_selector_all(
        "#queues tbody tr", "rs => rs.map(r => r.dataset.queue)"
    )
    assert order == ["hot", "slow", "calm"]
    await tab.page.select_option("#sort", "name")
    order = await tab.page.eval_on_selector_all(
        "#queues tbody tr", "rs => rs.map(r => r.dataset.queue)"
    )
    assert order == ["calm", "hot", "slow"]

    # the same alerts again are not news; two minutes on (server time) the mark goes
    stub.stream.send(snapshot(queues, alerts=alerts, at=at + 2000))
    await tab.page.wait_for_timeout(300)
    assert await tab.page.locator("#alert-feed li").count() == 2
    stub.stream.send(snapshot(queues, alerts=alerts, at=at + 200_000))
    await tab.wait_for(
        "() => !document.querySelector(\"tr[data-queue='hot']\").classList.contains('breach')"
    )
    await tab.screenshot(tmp_path, "dashboard-alerts.png")

    # a vendor-scoped token gets alerts without the contact id: none is made up
    scoped = {**breach("hot", "x", at + 200_500), "contact": None}
    stub.stream.send(snapshot(queues, alerts=[scoped, *alerts], at=at + 201_000))
    await tab.wait_for("() => document.querySelectorAll('#alert-feed li').length === 3")
    first = await text(tab, "#alert-feed li:first-child")
    assert first.endswith("Breach hot: answer SLA"), first
    assert tab.errors == []


async def test_fifty_queues_and_ten_pools_stay_readable(
    tab: Tab, stub: StubSite, tmp_path: Path
) -> None:
    at = 1_700_000_000_000
    queues = {
        f"q{i:02d}": queue_figures(
            title=f"Queue {i:02d}",
            waiting=i % 7,
            longest_wait_s=float(i * 3),
            service_level={"threshold_s": 20, "value": (i % 10) / 10},
            agents_available=i % 4,
        )
        for i in range(50)
    }
    pools = {"inhouse": pool_figures()} | {
        f"v{i}": pool_figures("outsourced", f"Vendor {i}") for i in range(9)
    }
    alerts = [breach("q07", f"c{i}", at - i) for i in range(3)]
    stub.stream.send(snapshot(queues, pools, alerts, at=at))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.querySelectorAll('#queues tbody tr').length === 50")
    assert await tab.page.locator("#pools tbody tr").count() == 10
    assert await text(tab, "#queue-count") == "(50)" and await text(tab, "#pool-count") == "(10)"
    order = await tab.page.eval_on_selector_all(
        "#queues tbody tr", "rs => rs.map(r => r.dataset.queue)"
    )
    assert order[0] == "q07"  # breached first
    below = [q for q, f in queues.items() if f["service_level"]["value"] < 0.8]
    assert set(order[1 : 1 + len(below) - 1]) == set(below) - {"q07"}
    # the chart follows the selected queue
    await tab.page.click("tr[data-queue='q42'] .qname")
    assert await tab.page.input_value("#chart-queue") == "q42"
    assert await tab.page.locator("#chart-queue option").count() == 50
    # the table scrolls under a sticky header
    assert (
        await tab.page.eval_on_selector("#queues thead th", "th => getComputedStyle(th).position")
        == "sticky"
    )
    await tab.page.fill("#filter", "Queue 1")
    assert await tab.page.locator("#queues tbody tr:visible").count() == 10
    await tab.page.fill("#filter", "")
    await tab.screenshot(tmp_path, "dashboard-50-queues.png")
    assert tab.errors == []


@pytest.mark.slow
async def test_hours_on_the_wall_leave_nothing_growing(tab: Tab, stub: StubSite) -> None:
    """Many frames with fresh alerts and queues coming and going, then hours of the
    page's own (fake) time: the DOM, the feed, the alert memory and the chart rings
    stay bounded. (Hours, not a day: each tick of the fake clock costs the test time,
    and the rings wrap every 30 minutes.)"""
    await tab.page.clock.install()
    at = 1_700_000_000_000
    base = {f"q{i}": queue_figures(waiting=i) for i in range(20)}
    stub.stream.send(snapshot(base, at=at))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.querySelectorAll('#queues tbody tr').length === 20")
    count_nodes = "() => document.getElementsByTagName('*').length"
    nodes_before = await tab.page.evaluate(count_nodes)
    alerts: list[dict[str, Any]] = []
    for n in range(200):
        alerts = [breach(f"q{n % 20}", f"c{n}-{k}", at + n * 1000 + k) for k in range(3)] + alerts
        alerts = alerts[:50]
        queues = dict(base)
        queues[f"extra{n}"] = queue_figures(waiting=n)  # one queue comes, the last one goes
        stub.stream.send(snapshot(queues, alerts=alerts, at=at + n * 1000))
    await tab.wait_for("() => document.querySelector(\"tr[data-queue='extra199']\")", timeout_s=30)
    stub.stream.send(snapshot(base, alerts=alerts, at=at + 500_000))
    await tab.wait_for("() => !document.querySelector(\"tr[data-queue='extra199']\")")
    await tab.page.clock.run_for("04:00:00")  # ticks, chart points, a stalled stream
    stub.stream.send(snapshot(base, alerts=alerts, at=at + 15_000_000))
    await tab.page.wait_for_timeout(200)
    stats = await tab.page.evaluate("window.switchboardDashboard.stats()")
    assert stats == {
        "queues": 20,
        "pools": 1,
        "feed": 50,
        "seenAlerts": 50,
        "maxPoints": 360,
        "scorecards": 0,
        "live": True,
    }
    # the same elements as before the 200 frames, plus the feed's 50 items (4 nodes each)
    assert await tab.page.evaluate(count_nodes) == nodes_before + 50 * 4
    assert tab.errors == []


async def test_the_stream_reconnects_and_the_window_can_change(tab: Tab, stub: StubSite) -> None:
    stub.stream.send(snapshot({"chat": queue_figures(waiting=1)}))
    await open_signed_in(tab, stub)
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    stub.stream.drop_all()  # as a restarting server does
    await tab.wait_for(
        "() => document.getElementById('conn').textContent.startsWith('reconnecting')"
    )
    await stub.stream.wait_clients(1)
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    assert stub.stream.connects == 2
    await tab.page.select_option("#window", "1h")
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    assert stub.stream.windows == ["15m", "15m", "1h"]
    stub.stream.comment()  # keepalive comments are not frames
    await tab.page.wait_for_timeout(100)
    assert await text(tab, cell("chat", "waiting")) == "1"
    assert tab.errors == []
