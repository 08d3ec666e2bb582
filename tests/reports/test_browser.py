"""Browser tests of the supervisor pages with Playwright on the system's Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from contactcenter.routing.engine import commit_and_settle, ensure_agent, set_presence
from contactcenter.routing.models import RoutingItem
from contactcenter.routing.policy import default_policy
from contactcenter.tickets.intake import ingest_inbound
from tests.factories import PASSWORD, make_contact, make_inbox, make_queue, make_user

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervisor-{name}.png"), full_page=True)


def tile_figures(page: Any, queue_id: int, kind: str) -> dict[str, Any]:
    raw = page.get_attribute(f"article[data-queue='{queue_id}'][data-kind='{kind}']",
                             "data-figures")
    return json.loads(raw or "{}")


def test_wallboard_updates_on_arrival_and_agent_state(page: Any, session: Any, settings: Any,
                                                       client: Any) -> None:
    queue = make_queue(session, "support")
    inbox = make_inbox(session, queue)
    make_user(session, "supervisor", email="boss@example.test")
    agent = make_user(session, "agent", email="anna@example.test", queues=(queue,))
    policy = default_policy()
    now = dt.datetime.now(dt.UTC)
    ensure_agent(session, agent.id, now, policy)
    session.commit()
    page.set_viewport_size({"width": 1600, "height": 900})
    sign_in(page, "boss@example.test")
    page.goto("/supervisor")
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.wait_for_selector(f"tr[data-agent='{agent.id}'][data-state=offline]")

    result = ingest_inbound(session, make_contact(inbox_id=inbox.id, subject="Router dead"),
                            settings=settings)
    session.commit()
    assert result.ticket_id is not None
    tile = f"article[data-queue='{queue.id}'][data-kind='ticket']"
    selector = f"{tile} [data-field=waiting_now] .sv-value"
    expect(page.locator(selector)).to_have_text("1", timeout=10_000)

    set_presence(session, agent.id, "available", dt.datetime.now(dt.UTC), policy)
    commit_and_settle(session, dt.datetime.now(dt.UTC), policy)
    # Available, then offered the waiting ticket: on contact (an offer counts as load).
    page.wait_for_selector(f"tr[data-agent='{agent.id}'][data-state=on_contact]",
                           timeout=10_000)

    # Snapshot plus events equals a fresh snapshot.
    fresh = page.evaluate("fetch('/api/v1/supervisor/wallboard').then(r => r.json())")
    tile = next(t for t in fresh["tiles"] if (t["queue_id"], t["kind"]) == (queue.id, "ticket"))
    live = tile_figures(page, queue.id, "ticket")
    assert live["waiting_now"] == tile["waiting_now"] == 1
    for key in ("answered", "abandoned", "service_level"):
        assert live["today"][key] == tile["today"][key]
    state = next(a for a in fresh["agents"] if a["id"] == agent.id)["state"]
    assert page.get_attribute(f"tr[data-agent='{agent.id}']", "data-state") == state
    shot(page, "wallboard")


def socket_as(live_url: str, email: str) -> tuple[Any, list[dict[str, Any]]]:
    """Sign in over HTTP and open the /agent socket with that session; record its events."""
    import requests
    import socketio

    http = requests.Session()
    form = http.get(f"{live_url}/login", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    http.post(f"{live_url}/login", data={"email": email, "password": PASSWORD,
                                         "csrf_token": token.group(1)}, timeout=5)
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    received: list[dict[str, Any]] = []
    client = socketio.Client()

    @client.on("event", namespace="/agent")
    def on_event(data: dict[str, Any]) -> None:
        received.append(data)

    client.connect(live_url, namespaces=["/agent"], transports=["websocket"],
                   headers={"Cookie": cookie}, wait_timeout=5)
    return client, received


def test_reassign_from_at_risk_reaches_the_new_agent(page: Any, session: Any, settings: Any,
                                                     live_url: str) -> None:
    queue = make_queue(session, "vip")
    inbox = make_inbox(session, queue)
    make_user(session, "supervisor", email="boss@example.test")
    anna = make_user(session, "agent", email="anna@example.test", queues=(queue,))
    boris = make_user(session, "agent", email="boris@example.test", queues=(queue,))
    policy = default_policy()
    now = dt.datetime.now(dt.UTC)
    for user in (anna, boris):
        ensure_agent(session, user.id, now, policy)
    session.commit()
    result = ingest_inbound(session, make_contact(inbox_id=inbox.id, subject="Contract renewal"),
                            settings=settings)
    session.commit()
    item = session.scalars(select(RoutingItem).where(
        RoutingItem.ticket_id == result.ticket_id)).one()
    item.due_at = now + dt.timedelta(minutes=10)
    session.commit()

    client, received = socket_as(live_url, "boris@example.test")
    try:
        sign_in(page, "boss@example.test")
        page.goto("/supervisor/at-risk")
        row = page.locator(f"tr[data-ticket='{result.ticket_id}']")
        row.wait_for(timeout=10_000)
        row.locator("select").select_option(str(boris.id))
        shot(page, "at-risk")
        row.locator("button.sv-reassign").click()
        expect(page.locator("#risk-status")).to_contain_text("reassigned", timeout=10_000)
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while dt.datetime.now() < deadline and not any(
                e["type"] == "ticket.assigned" for e in received):
            threading.Event().wait(0.1)
        assigned = [e for e in received if e["type"] == "ticket.assigned"]
        assert assigned, [e["type"] for e in received]
        assert f"agent:{boris.id}" in assigned[-1]["rooms"]
        assert assigned[-1]["payload"]["assignee_id"] == boris.id
    finally:
        ws = client.eio.ws
        if ws is not None:  # skip the websocket close handshake's 3 s wait (RECIPES.md)
            close = ws.close
            ws.close = lambda *a, **k: close(timeout=0.1)
        client.disconnect()


def test_report_renders_its_charts(page: Any, session: Any) -> None:
    from tests.reports.dataset import build

    build(session)
    make_user(session, "supervisor", email="boss@example.test")
    session.commit()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1400, "height": 1000})
    sign_in(page, "boss@example.test")
    page.goto("/supervisor/reports")
    page.wait_for_selector("body[data-report=ready]", timeout=10_000)
    page.fill("input[name=start]", "2026-03-02")
    page.fill("input[name=end]", "2026-03-02")
    page.evaluate("document.body.dataset.report = ''")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("body[data-report=ready]", timeout=10_000)
    charts = page.evaluate("""['chart-hour', 'chart-day', 'chart-times', 'chart-tiers']
        .map(id => { const c = Chart.getChart(document.getElementById(id));
                     return c ? c.data.datasets[0].data.reduce((a, b) => a + (b || 0), 0) : null; })""")
    assert charts[0] == 5 and charts[1] == 5 and all(c is not None for c in charts)
    assert "Service level by queue" in page.inner_text("#report-tables")
    href = page.get_attribute("#csv", "href")
    assert href is not None and "format=csv" in href
    shot(page, "reports")
    page.goto("/supervisor/staffing")
    page.click("#staffing-form button[type=submit]")
    page.wait_for_selector("dd[data-field='Agents needed']")
    assert page.inner_text("dd[data-field='Agents needed']") == "14"
    assert page.inner_text("dd[data-field='Scheduled headcount']") == "20"
    shot(page, "staffing")
    assert errors == []
