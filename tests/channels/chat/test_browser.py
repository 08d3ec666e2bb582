"""The chat in a real Chromium: a visitor's widget on a site page and an agent on the real desk.

The visitor opens the widget, sees a knowledge article suggested while typing, starts
a chat; the agent (presence available) gets the offer card, accepts, and talks to the
visitor in the chat panel mounted in the workspace, with typing indicators both ways.
The visitor's network drops and comes back: nothing sent on either side is lost or
shown twice. The agent ends the chat and the conversation is the ticket's. Payloads
typed by the visitor (pre-chat name, messages) never run on either page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.channels.chat.models import ChatSession
from contactcenter.channels.chat.ratelimit import reset_memory_limiters
from contactcenter.config import Settings
from contactcenter.tickets.models import Direction, Message, Ticket
from tests.browser_support import (  # noqa: F401 - fixtures
    browser_settings,
    live_port,
    serve,
    sign_in,
    wait_until,
    watch,
)
from tests.factories import make_queue, make_user

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "Hi <script>alert(2)</script> there"
XSS_LINK = '<a href="javascript:alert(3)">click me</a>'


@pytest.fixture
def settings(tmp_path: Path, live_port: int) -> Settings:  # noqa: F811
    return browser_settings(tmp_path, live_port,
                            routing_offer_timeouts="call=20,chat=60,ticket=120",
                            chat_messages_per_minute=100)


@pytest.fixture
def live_url(app: Any, live_port: int) -> Iterator[str]:  # noqa: F811
    reset_memory_limiters()
    with serve(app, live_port) as url:
        yield url


@pytest.fixture
def visitor_context(browser: Any, live_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=live_url)
    yield context
    context.close()


@pytest.fixture
def agent(session: Any) -> Any:
    queue = make_queue(session, "chat")
    user = make_user(session, "agent", email="agent@example.test", queues=(queue,))
    user.name = "Maria Agent"
    session.commit()
    return user


@pytest.fixture
def article(session: Any, settings: Settings, agent: Any) -> Iterator[Any]:
    """One published public article in the knowledge base, indexed."""
    from contactcenter.knowledge import service
    from contactcenter.knowledge.index import drop_index
    from contactcenter.knowledge.indexing import index_for, index_path, rebuild_index

    content = service.clean_input({
        "title": "Router does not connect to Wi-Fi",
        "body": "Restart the router, then hold the reset button for ten seconds to restore "
                "the Wi-Fi settings. The router connects again within two minutes.",
        "language": "en", "visibility": "public"})
    row = service.create_article(session, content, agent.id)
    service.transition(session, row, "publish", agent.id, review_required=False)
    session.commit()
    rebuild_index(session, index_for(settings))
    session.commit()  # the rebuild records what it indexed: end its write transaction
    yield row
    drop_index(index_path(settings))


def widget_texts(visitor: Any, who: str) -> list[str]:
    return [t.strip() for t in visitor.locator(f"li.msg.{who} .text").all_inner_texts()]


def test_visitor_and_agent_chat_through_a_dropped_network_until_the_agent_ends_it(
        page: Any, visitor_context: Any, agent: Any, article: Any, session: Any) -> None:
    agent_problems = watch(page)
    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.select_option("#presence", "available")
    page.wait_for_timeout(300)

    # The visitor opens the widget on the shop's page and starts typing a question.
    visitor = visitor_context.new_page()
    visitor_problems = watch(visitor)
    visitor.goto("/chat/test-page")
    visitor.click("button.launcher")
    visitor.wait_for_selector("form.prechat", timeout=10_000)
    visitor.locator("#cc-first").press_sequentially("My router does not connect to wifi")
    suggestion = visitor.locator("ul.articles a", has_text="Router does not connect to Wi-Fi")
    suggestion.wait_for(timeout=10_000)
    assert suggestion.get_attribute("href").endswith(f"/help/articles/{article.id}")
    visitor.fill("#cc-f-name", XSS_NAME)
    visitor.fill("#cc-f-email", "anna@example.com")
    visitor.select_option("#cc-f-topic", "Technical")
    visitor.click("form.prechat button[type=submit]")
    visitor.locator("li.msg.visitor[data-message-id]").first.wait_for(timeout=10_000)

    # The offer pops on the desk; the agent accepts and the chat panel opens.
    page.wait_for_selector("#offer:not([hidden])", timeout=10_000)
    assert "chat" in page.inner_text("#offer-what")
    page.click("#offer-accept")
    page.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    panel = page.locator("#chat-panel:not([hidden]) section.chat-panel")
    panel.wait_for(timeout=10_000)
    assert XSS_NAME in panel.locator("dl.chat-visitor").inner_text()
    panel.locator("li.chat-msg.visitor", has_text="My router does not connect").wait_for(
        timeout=10_000)
    visitor.locator("p.status", has_text="Maria joined the chat").wait_for(timeout=10_000)

    # Typing shows on both sides.
    page.locator(".chat-input").press_sequentially("Let me")
    visitor.locator("p.typing", has_text="Agent is typing").wait_for(timeout=10_000)
    visitor.locator("#cc-input").press_sequentially("Thanks")
    page.locator(".chat-typing", has_text="Visitor is typing").wait_for(timeout=10_000)
    visitor.fill("#cc-input", "")

    # Messages both ways, payloads shown as text.
    page.fill(".chat-input", XSS_SCRIPT)
    page.click(".chat-send")
    visitor.locator("li.msg.agent", has_text="alert(2)").wait_for(timeout=10_000)
    assert visitor.locator("p.typing").inner_text() == ""
    visitor.fill("#cc-input", XSS_LINK)
    visitor.press("#cc-input", "Enter")
    panel.locator("li.chat-msg.visitor", has_text="click me").wait_for(timeout=10_000)
    assert panel.locator("a").count() == 0

    # The visitor's network drops: each side writes; nothing is lost or doubled after.
    visitor_context.set_offline(True)
    wait_until(visitor, "document.querySelector('#cc-chat-widget').dataset.connected === 'false'")
    visitor.fill("#cc-input", "Written while offline")
    visitor.press("#cc-input", "Enter")
    page.fill(".chat-input", "Are you still there?")
    page.click(".chat-send")
    panel.locator("li.chat-msg.agent", has_text="still there").wait_for(timeout=10_000)
    visitor.wait_for_timeout(500)
    assert "Are you still there?" not in widget_texts(visitor, "agent")
    visitor_context.set_offline(False)
    visitor.locator("li.msg.agent", has_text="still there").wait_for(timeout=20_000)
    panel.locator("li.chat-msg.visitor", has_text="Written while offline").wait_for(
        timeout=20_000)
    visitor.locator("li.msg.visitor.pending").wait_for(state="detached", timeout=10_000)
    assert widget_texts(visitor, "visitor") == [
        "My router does not connect to wifi", XSS_LINK, "Written while offline"]
    assert widget_texts(visitor, "agent") == [XSS_SCRIPT, "Are you still there?"]
    panel_visitor = [t.strip() for t in
                     panel.locator("li.chat-msg.visitor .text").all_inner_texts()]
    assert panel_visitor == ["My router does not connect to wifi", XSS_LINK,
                             "Written while offline"]

    # The agent ends the chat; the visitor is told and offered the transcript.
    panel.locator(".chat-end").click()
    visitor.locator("p.status", has_text="The chat has ended").wait_for(timeout=10_000)
    visitor.wait_for_selector("form.transcript", timeout=10_000)
    panel.locator(".chat-state", has_text="Chat ended").wait_for(timeout=10_000)

    # The conversation is the ticket's, each message once, stored raw.
    session.expire_all()
    chat = session.scalar(select(ChatSession))
    assert chat.state == "ended" and chat.ended_reason == "agent"
    ticket = session.get(Ticket, chat.ticket_id)
    assert ticket.status == "solved" and ticket.assignee_id == agent.id
    rows = session.scalars(select(Message).where(
        Message.ticket_id == ticket.id, Message.direction != Direction.NOTE)
        .order_by(Message.id)).all()
    assert [(m.direction, m.text) for m in rows] == [
        ("inbound", "My router does not connect to wifi"), ("outbound", XSS_SCRIPT),
        ("inbound", XSS_LINK), ("outbound", "Are you still there?"),
        ("inbound", "Written while offline")]
    page.locator("#timeline li.msg", has_text="Written while offline").wait_for(timeout=10_000)

    # Nothing the visitor typed ran anywhere, and no markup of theirs became elements.
    assert agent_problems == [] and visitor_problems == []
    assert page.locator("#chat-panel img, #timeline img, #chat-panel script").count() == 0
    assert visitor.locator("#cc-chat-widget img, #cc-chat-widget a[href^=javascript]").count() == 0
