"""The desk in a real Chromium: sign in, live socket over WebSocket, live events, no XSS.

The app is served by werkzeug's threaded ``make_server`` (``tests/browser_support.py``);
Flask-SocketIO runs in ``threading`` mode, where simple-websocket takes over the
connection through ``environ["werkzeug.socket"]``, so real WebSockets work.
Engine.IO checks the ``Origin`` of a WebSocket against ``cors_allowed_origins``, which
the app sets to ``public_url``: the server therefore listens on a port chosen before the
app is built, and ``public_url`` names it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent_ui.conftest import Desk, ingest
from tests.browser_support import (  # noqa: F401 - fixtures, also imported from here
    collect_errors,
    live_port,
    live_url,
    settings,
    sign_in,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def dialogs(page: Any) -> list[str]:
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


@pytest.fixture
def console_errors(page: Any) -> list[str]:
    """Script errors, CSP violations and failed loads (the browser's own favicon probe aside)."""
    return collect_errors(page)


def test_sign_in_and_see_tickets(page: Any, desk: Desk, console_errors: list[str]) -> None:
    sign_in(page)
    assert page.url.endswith("/")
    rows = page.locator("#tickets tr[data-ticket]")
    assert rows.count() == 1
    assert "Invoice is wrong" in rows.first.inner_text()
    assert "Secret other queue" not in page.content()
    assert console_errors == []


def test_wrong_password_stays_on_the_form(page: Any, desk: Desk) -> None:
    page.goto("/login")
    page.fill("input[name=email]", "agent@example.test")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "Wrong email or password." in page.inner_text("[role=alert]")
    assert "/login" in page.url


def test_live_indicator_and_live_events(page: Any, desk: Desk, session: Any, settings: Any,
                                        console_errors: list[str]) -> None:
    websockets: list[str] = []
    page.on("websocket", lambda ws: websockets.append(ws.url))
    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    assert page.inner_text("#live") == "live"
    assert any("/socket.io/" in url and "transport=websocket" in url for url in websockets)

    page.evaluate("window.__marker = 'not reloaded'")
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Live from the test")
    item = page.locator("#events li", has_text="Live from the test")
    item.wait_for(timeout=10_000)
    assert f"#{ticket.number}" in item.inner_text()
    assert page.evaluate("window.__marker") == "not reloaded"

    # An event of another queue never reaches this agent.
    ingest(session, settings, inbox_id=desk.inbox_b.id, subject="Other queue live")
    ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Second live one")
    page.locator("#events li", has_text="Second live one").wait_for(timeout=10_000)
    assert "Other queue live" not in page.inner_text("#events")
    assert console_errors == []


def test_markup_in_a_customer_subject_is_text(page: Any, desk: Desk, session: Any,
                                              settings: Any, dialogs: list[str]) -> None:
    payload = "<img src=x onerror=alert(1)>"
    ingest(session, settings, inbox_id=desk.inbox_a.id, subject=payload, text="hi",
           name="<b>Mallory</b>")
    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    row = page.locator("#tickets tr[data-ticket]", has_text="onerror")
    assert row.count() == 1
    assert payload in row.inner_text()
    assert "<b>Mallory</b>" in row.inner_text()

    # The same payload arriving live is rendered as text in the events list too.
    ingest(session, settings, inbox_id=desk.inbox_a.id, subject=payload + " again",
           sender="eve@example.com")
    live = page.locator("#events li", has_text="again")
    live.wait_for(timeout=10_000)
    assert payload in live.inner_text()
    assert page.locator("#desk img").count() == 0
    assert page.locator("#desk b").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_sign_out(page: Any, desk: Desk) -> None:
    sign_in(page)
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url
