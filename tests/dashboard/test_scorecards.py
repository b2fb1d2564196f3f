"""Vendor scorecards on the dashboard, in headless Chromium: one card per vendor
of the pools in the stream, fetched with the page's token, read as people read
them; and end to end against a real server (strict CSP, a pool-scoped token)."""

from __future__ import annotations

import pytest

from .conftest import (
    GOOD_TOKEN,
    LiveServer,
    StubSite,
    Tab,
    pool_figures,
    queue_figures,
    scorecard_figures,
    snapshot,
)

UNKNOWN = "\u2013"
FIELDS = ("answered", "commitment", "sl", "asa", "aht", "abandoned", "csat", "nps", "cost")
FIELDS += ("breaches",)


async def card(tab: Tab, vendor: str) -> dict[str, str]:
    """The card's figures: field -> text."""
    got: dict[str, str] = await tab.page.eval_on_selector_all(
        f"article[data-vendor='{vendor}'] dd",
        "ds => Object.fromEntries(ds.map(d => [d.dataset.field, d.textContent]))",
    )
    return got


async def vendors_shown(tab: Tab) -> list[str]:
    shown: list[str] = await tab.page.eval_on_selector_all(
        "#cards article", "cs => cs.map(c => c.dataset.vendor)"
    )
    return shown


async def test_one_scorecard_per_vendor_of_the_pools_in_the_stream(
    tab: Tab, stub: StubSite
) -> None:
    stub.scorecards.cards["two-co"] = scorecard_figures(
        "two-co",
        name="Two Co",
        volume={
            "answered": 1812,
            "handled": 1800,
            "days": 30,
            "cap": 3000,
            "commitment": 2000,
            "commitment_met": False,
        },
        service_level={"threshold_s": None, "value": 0.5},
        service_level_target=0.8,
        asa_s=40.0,
        aht_s=187.0,
        abandoned=1,
        abandon_rate=0.3333,
        csat=3.5,
        nps=12.5,
        cost={"amount": 1234.5, "currency": "USD"},
        sla_breaches=2,
    )
    stub.scorecards.cards["pc-co"] = scorecard_figures(
        "pc-co",
        volume={
            "answered": 2,
            "handled": 2,
            "days": 30,
            "cap": None,
            "commitment": 1,
            "commitment_met": True,
        },
        service_level={"threshold_s": None, "value": 0.9},
        service_level_target=0.8,
        nps=-20.0,
        cost={"amount": 4.0, "currency": "EUR"},
    )
    pools = {
        "inhouse": pool_figures(),
        "ta": pool_figures("outsourced", "two-co"),
        "tb": pool_figures("outsourced", "two-co"),
        "pc1": pool_figures("outsourced", "pc-co"),
    }
    stub.stream.send(snapshot({"chat": queue_figures()}, pools))
    await tab.page.goto(f"{stub.url}#token={GOOD_TOKEN}")
    await tab.wait_for("() => document.querySelectorAll('#cards article h3 span').length >= 4")
    await tab.wait_for(
        "() => document.querySelector(\"article[data-vendor='pc-co'] [data-field=cost]\")"
        ".textContent !== '\u2013'"
    )
    assert await tab.page.is_visible("#scorecards")
    assert await vendors_shown(tab) == ["pc-co", "two-co"]  # one per vendor, by id
    assert sorted(set(stub.scorecards.asked)) == ["pc-co", "two-co"]  # not in-house
    assert await tab.page.text_content("#scorecard-count") == "(2)"
    assert await tab.page.text_content("article[data-vendor='two-co'] h3") == "Two Cotwo-co"
    assert await card(tab, "two-co") == {
        "answered": "1,812 of 3,000 cap",
        "commitment": "2,000 · not met yet",
        "sl": "50% (target 80%)",
        "asa": "40 s",
        "aht": "3:07",
        "abandoned": "1 (33.3%)",
        "csat": "3.50",
        "nps": "+12.5",
        "cost": "USD 1,234.50",
        "breaches": "2",
    }
    below = "article[data-vendor='two-co'] [data-field=sl]"
    assert await tab.page.eval_on_selector(below, "d => d.classList.contains('bad')")
    pc = await card(tab, "pc-co")
    assert (pc["answered"], pc["commitment"], pc["sl"]) == ("2", "1 · met", "90% (target 80%)")
    assert (pc["nps"], pc["cost"], pc["csat"], pc["asa"]) == ("-20.0", "EUR 4.00", UNKNOWN, UNKNOWN)

    # a vendor leaves the stream (config reload): its card goes; the other stays in place
    await tab.page.evaluate("document.querySelector(\"article[data-vendor='two-co']\").id = 'x'")
    del pools["pc1"]
    stub.stream.send(snapshot({"chat": queue_figures()}, pools))
    await tab.wait_for("() => document.querySelectorAll('#cards article').length === 1")
    assert await tab.page.locator("article#x[data-vendor='two-co']").count() == 1
    assert await tab.page.evaluate("switchboardDashboard.stats().scorecards") == 1

    # sign-out takes the cards away
    await tab.page.click("#signout")
    assert await tab.page.locator("#cards article").count() == 0
    assert not await tab.page.is_visible("#scorecards")
    assert tab.errors == []


async def test_no_vendor_pools_no_scorecards(tab: Tab, stub: StubSite) -> None:
    stub.stream.send(snapshot({"chat": queue_figures(waiting=1)}))
    await tab.page.goto(f"{stub.url}#token={GOOD_TOKEN}")
    await tab.wait_for("() => document.querySelector(\"tr[data-queue='chat']\")")
    assert not await tab.page.is_visible("#scorecards")
    assert stub.scorecards.asked == []
    assert tab.errors == []


async def test_scorecards_refresh_once_a_minute(tab: Tab, stub: StubSite) -> None:
    await tab.page.clock.install()
    pools = {"inhouse": pool_figures(), "ta": pool_figures("outsourced", "two-co")}
    stub.stream.send(snapshot({"chat": queue_figures()}, pools))
    await tab.page.goto(f"{stub.url}#token={GOOD_TOKEN}")
    sel = "article[data-vendor='two-co'] [data-field=breaches]"
    await tab.wait_for(f"() => document.querySelector(\"{sel}\")?.textContent === '0'")
    assert stub.scorecards.asked == ["two-co"]
    stub.scorecards.cards["two-co"] = scorecard_figures("two-co", sla_breaches=3)
    await tab.page.clock.run_for("00:30")
    assert stub.scorecards.asked == ["two-co"]  # not yet
    stub.stream.comment()  # keep the stream from stalling in the fake time
    await tab.page.clock.run_for("00:31")
    await tab.wait_for(f"() => document.querySelector(\"{sel}\").textContent === '3'")
    assert stub.scorecards.asked == ["two-co", "two-co"]
    assert tab.errors == []


@pytest.mark.slow
async def test_a_real_server_serves_the_scorecards_to_the_page(tab: Tab, live: LiveServer) -> None:
    """The real route, through the page's strict CSP (a violation is a console error)."""
    await tab.page.goto(f"{live.base}/dashboard#token={live.token('supervisor')}")
    sel = "article[data-vendor='near-co'] [data-field=answered]"
    await tab.wait_for(f"() => document.querySelector(\"{sel}\")?.textContent === '0'")
    got = await card(tab, "near-co")
    assert got == {
        "answered": "0",
        "commitment": UNKNOWN,
        "sl": UNKNOWN,
        "asa": UNKNOWN,
        "aht": UNKNOWN,
        "abandoned": "0 (\u2013)",
        "csat": UNKNOWN,
        "nps": UNKNOWN,
        "cost": UNKNOWN,
        "breaches": "0",
    }
    assert await tab.page.text_content("article[data-vendor='near-co'] h3") == "Near Conear-co"
    assert "updated" in (await tab.page.text_content("#scorecards-updated") or "")
    # a vendor's own supervisor token: its own card
    await tab.page.evaluate(f"location.hash = '#token={live.token('near-supervisor')}'")
    await tab.wait_for(f"() => document.querySelector(\"{sel}\")?.textContent === '0'")
    assert await vendors_shown(tab) == ["near-co"]
    assert tab.errors == [], tab.errors
