"""The dashboard end to end: headless Chromium on a real `python -m router serve`,
in real time, reading the real metrics stream while contacts arrive over the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import LiveServer, Tab

WAITING = "document.querySelector(\"tr[data-queue='chat'] td.waiting\")"


@pytest.mark.slow
async def test_the_wall_display_follows_contacts_and_highlights_the_breach(
    tab: Tab, live: LiveServer, tmp_path: Path
) -> None:
    await tab.page.goto(f"{live.base}/dashboard#token={live.token('supervisor')}")
    assert tab.page.url == f"{live.base}/dashboard/"  # redirected, and the token taken away
    await tab.wait_for(f"() => {WAITING} && {WAITING}.textContent === '0'")
    assert await tab.page.text_content("#conn") == "live"
    assert await tab.page.text_content("tr[data-queue='chat'] .qname") == "Chat support"
    pools = await tab.page.eval_on_selector_all(
        "#pools tbody tr", "rs => rs.map(r => r.dataset.pool)"
    )
    assert pools == ["inhouse", "near"]
    runby = await tab.page.text_content("tr[data-pool='near'] td.runby")
    assert runby == "Near Co, nearshore"  # the vendor's name

    for _ in range(3):
        await live.post_contact("chat")
    await tab.wait_for(f"() => {WAITING}.textContent === '3'")
    # no agents: nothing is answered, so the service level (0 of 3) is below its 80 %
    await tab.wait_for(
        "() => document.querySelector(\"tr[data-queue='chat']\").classList.contains('below-target')"
    )
    assert await tab.page.text_content("tr[data-queue='chat'] td.sl") == "0%"
    assert await tab.page.text_content("tr[data-queue='chat'] td.target") == "80% in 1 s"
    # the 1 s threshold passes: the SLA timers breach, and the page says so at once
    await tab.wait_for(
        "() => document.querySelector(\"tr[data-queue='chat']\").classList.contains('breach')",
        timeout_s=15,
    )
    assert await tab.page.text_content("tr[data-queue='chat'] .badge") == "SLA breach"
    await tab.wait_for("() => document.querySelectorAll('#alert-feed li.breach').length === 3")
    feed = await tab.page.text_content("#alert-feed li.breach")
    assert feed is not None and "Chat support: answer SLA" in feed
    order = await tab.page.eval_on_selector_all(
        "#queues tbody tr", "rs => rs.map(r => r.dataset.queue)"
    )
    assert order[0] == "chat"  # the most urgent on top
    await tab.wait_for(f"() => {WAITING}.textContent === '3'")
    await tab.screenshot(tmp_path)
    assert tab.errors == [], tab.errors


@pytest.mark.slow
async def test_a_token_the_server_refuses_sends_the_page_back_to_sign_in(
    tab: Tab, live: LiveServer
) -> None:
    await tab.page.goto(f"{live.base}/dashboard/")
    assert await tab.page.is_visible("#signin")
    await tab.page.fill("#token", "not-a-token")
    await tab.page.press("#token", "Enter")
    await tab.wait_for("() => document.getElementById('signin-error').textContent !== ''")
    assert await tab.page.text_content("#signin-error") == (
        "The token was refused: the bearer token is not valid"
    )
    # a real token of another role: the server says which role the page needs
    await tab.page.fill("#token", live.token("ingest"))
    await tab.page.press("#token", "Enter")
    await tab.wait_for("() => document.getElementById('signin-error').textContent.includes('role')")
    assert await tab.page.is_visible("#signin") and not await tab.page.is_visible("#board")
    # a vendor's supervisor token works, and shows its pool and the queues it serves
    await tab.page.fill("#token", live.token("near-supervisor"))
    await tab.page.press("#token", "Enter")
    await tab.wait_for("() => document.getElementById('conn').textContent === 'live'")
    rows = "rs => rs.map(r => r.dataset.queue || r.dataset.pool)"
    assert await tab.page.eval_on_selector_all("#pools tbody tr", rows) == ["near"]
    assert await tab.page.eval_on_selector_all("#queues tbody tr", rows) == ["chat"]
    assert all(" 401 " in e or " 403 " in e for e in tab.errors), tab.errors
