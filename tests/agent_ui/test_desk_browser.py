"""The desk in a real Chromium with two agents signed in at once.

Covers the issue's flow: an email arrives and pops on the right agent's screen;
accept, reply, solve; the customer's history across channels; the second agent
is seen viewing and typing; a dropped socket recovers and replays what it missed;
financial data is masked in the page and in the socket payloads.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contactcenter.customers.models import Product, Purchase
from contactcenter.tickets.models import QueueMember, Ticket
from contactcenter.tickets.service import change_status
from tests.agent_ui.conftest import Desk, ingest
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    dialogs,
    live_port,
    live_url,
    settings,
    sign_in,
)
from tests.browser_support import wait_until  # noqa: F401 - also imported from here
from tests.factories import make_user

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def second(browser: Any, live_url: str) -> Any:
    context = browser.new_context(base_url=live_url)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def colleague(session: Any, desk: Desk) -> Any:
    user = make_user(session, "agent", email="second@example.test")
    user.name = "Petr Second"
    session.add(QueueMember(queue_id=desk.queue_a.id, user_id=user.id))
    session.commit()
    return user


def test_offer_accept_reply_solve_with_a_colleague_watching(
        page: Any, second: Any, desk: Desk, colleague: Any, session: Any, settings: Any,
        console_errors: list[str]) -> None:  # noqa: F811
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    # Olga wrote before by chat, and bought something (masked for agents).
    earlier = ingest(session, settings, inbox_id=desk.inbox_a.id, channel="chat",
                     sender="olga@example.com", subject="Chat about delivery",
                     thread_on_open_ticket=False)
    product = Product(sku="SEC-1", name="Secret Router", price=Decimal("731.00"))
    session.add(product)
    session.flush()
    session.add(Purchase(external_id="p-secret", customer_id=earlier.customer_id,
                         product_id=product.id, amount=Decimal("731.00"),
                         purchased_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC)))
    # Nothing else waits in the queue, so the new email is the one offered.
    change_status(session, earlier, "solved", None)
    change_status(session, session.get(Ticket, desk.mine.id), "solved", None)
    session.commit()

    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    sign_in(second, "second@example.test")
    second.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.select_option("#presence", "available")
    page.wait_for_timeout(300)

    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, sender="olga@example.com",
                    subject="Router dead after storm", thread_on_open_ticket=False,
                    channel="email")
    # The offer pops for the available agent only.
    page.wait_for_selector("#offer:not([hidden])", timeout=10_000)
    assert "Olga Smirnova" in page.inner_text("#offer-who")
    assert "Router dead after storm" in page.inner_text("#offer-what")
    assert second.locator("#offer").is_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "desk-offer.png"))
    page.click("#offer-accept")
    page.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    wait_until(page, "document.querySelector('#ws-title').textContent.includes('Router dead')")

    # The customer's story across channels, with money masked.
    history = page.inner_text("#history")
    assert f"#{earlier.number}" in history and "chat" in history
    assert "•••" in page.inner_text("#purchases")
    assert "731" not in page.inner_text("#side")

    # The colleague opens the same ticket: both see each other; typing shows.
    second.goto(f"/#ticket-{ticket.number}")
    second.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    page.locator("#ws-viewers", has_text="Petr Second is viewing").wait_for(timeout=10_000)
    second.locator("#reply-text").press_sequentially("Let me check")
    page.locator("#ws-viewers", has_text="Petr Second is typing").wait_for(timeout=10_000)

    # Reply and solve.
    page.fill("#reply-text", "We are sending a technician.")
    page.click("#reply-send")
    page.locator("#timeline li.outbound", has_text="sending a technician").wait_for(timeout=10_000)
    page.select_option("#ws-status", "solved")
    wait_until(page, "document.querySelector('#ws-status').value === 'solved'")
    page.screenshot(path=str(SCREENSHOTS / "desk-workspace.png"))
    for _ in range(100):  # the PATCH lands a moment after the select changes
        session.expire_all()
        stored = session.get(Ticket, ticket.id)
        if stored.status == "solved":
            break
        page.wait_for_timeout(100)
    assert stored.status == "solved" and stored.assignee_id == desk.agent.id

    # The reply reaches the colleague's open timeline live; since it came after they began
    # typing, they are warned before sending theirs.
    second.locator("#timeline li.outbound", has_text="sending a technician").wait_for(
        timeout=10_000)
    second.click("#reply-send")
    second.locator("#collision", has_text="replied while you were typing").wait_for(timeout=10_000)

    # Nothing financial ever travelled over the agent's socket.
    assert frames and not any("731" in f for f in frames)
    assert console_errors == []


def test_dropped_socket_replays_what_it_missed_and_keeps_the_draft(
        page: Any, desk: Desk, session: Any, settings: Any) -> None:
    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.click(f"#tickets tr[data-number='{desk.mine.number}']")
    page.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    page.fill("#reply-text", "Half-written answer")
    page.locator("#draft-state", has_text="draft saved").wait_for(timeout=10_000)

    # Cut the socket and keep it down while an email arrives.
    page.evaluate("window.deskSocket.io.reconnection(false); window.deskSocket.io.engine.close()")
    page.wait_for_selector("#live[data-state=offline]", timeout=10_000)
    assert page.locator("#banner").is_visible()
    ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Arrived while offline")
    page.wait_for_timeout(300)
    assert "Arrived while offline" not in page.inner_text("#events")
    page.evaluate("window.deskSocket.io.reconnection(true); window.deskSocket.connect()")
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.locator("#events li", has_text="Arrived while offline").wait_for(timeout=10_000)
    assert page.locator("#banner").is_hidden()
    page.locator("#tickets tr", has_text="Arrived while offline").wait_for(timeout=10_000)

    # A reload (or a crashed browser) brings the draft back from the server.
    page.reload()
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.click(f"#tickets tr[data-number='{desk.mine.number}']")
    wait_until(page, "document.querySelector('#reply-text').value === 'Half-written answer'")
    assert json.dumps(page.inner_text("#draft-state"))
