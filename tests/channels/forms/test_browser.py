"""Web forms in a real Chromium: a post with an attachment, bad fields, payloads on the desk.

A visitor fills the hosted form with a file: a ticket is opened with the file and the
acknowledgement e-mail with the ticket number reaches a local aiosmtpd sink. A post
with bad fields comes back with the errors next to the fields and the values kept.
What the visitor typed (script and image tags, ``javascript:`` links) never runs,
neither on the form page nor on the agent's desk.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.channels.chat.ratelimit import reset_memory_limiters
from contactcenter.channels.forms.service import save_form
from contactcenter.config import Settings
from contactcenter.tickets.models import Attachment, Message, Ticket
from tests.channels.forms.test_forms import FORM, PNG, Sink, sink  # noqa: F401 - fixture
from tests.browser_support import (  # noqa: F401 - fixtures
    browser_settings,
    live_port,
    serve,
    sign_in,
    watch,
)
from tests.factories import make_queue, make_user

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_MESSAGE = 'My invoice <script>alert(2)</script> <a href="javascript:alert(3)">see</a>'


@pytest.fixture
def settings(tmp_path: Path, live_port: int, sink: tuple[Sink, int]) -> Settings:  # noqa: F811
    return browser_settings(tmp_path, live_port, smtp_relay_host="127.0.0.1",
                            smtp_relay_port=sink[1], smtp_from_address="support@example.test")


@pytest.fixture
def live_url(app: Any, live_port: int) -> Iterator[str]:  # noqa: F811
    reset_memory_limiters()
    with serve(app, live_port) as url:
        yield url


@pytest.fixture
def agent(session: Any) -> Any:
    queue = make_queue(session, "support")
    save_form(session, FORM)
    user = make_user(session, "agent", email="agent@example.test", queues=(queue,))
    session.commit()
    return user


def test_a_form_with_a_file_opens_a_ticket_and_mails_the_acknowledgement(
        page: Any, browser: Any, live_url: str, agent: Any, session: Any,
        sink: tuple[Sink, int]) -> None:  # noqa: F811
    problems = watch(page)
    page.goto("/forms/support")
    page.fill("#f-name", XSS_NAME)
    page.fill("#f-email", "anna@example.com")
    page.select_option("#f-topic", "Billing")
    page.fill("#f-message", XSS_MESSAGE)
    page.set_input_files("#f-file", files=[{"name": "invoice.png", "mimeType": "image/png",
                                            "buffer": PNG}])
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click("button[type=submit]")
    number = int(page.locator(".ticket-number").inner_text().lstrip("#"))

    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.channel == "form" and ticket.queue.slug == "support"
    message = session.scalar(select(Message).where(Message.ticket_id == ticket.id))
    assert XSS_MESSAGE in message.text and XSS_NAME in message.text
    attachment = session.scalar(select(Attachment).where(Attachment.message_id == message.id))
    assert attachment.filename == "invoice.png" and attachment.content_type == "image/png"
    end = time.monotonic() + 10
    while not sink[0].messages and time.monotonic() < end:
        time.sleep(0.05)
    assert len(sink[0].messages) == 1
    mail = sink[0].messages[0]
    assert f"[#{number}]".encode() in mail and b"anna@example.com" in mail.lower()

    # Reloading the thank-you page posts the same submission again: the same ticket, no mail.
    page.reload()
    assert page.locator(".ticket-number").inner_text() == f"#{number}"
    time.sleep(0.3)
    assert session.scalar(select(func.count()).select_from(Ticket)
                          .where(Ticket.channel == "form")) == 1
    assert len(posts) == 2
    assert len(sink[0].messages) == 1

    # The agent opens the ticket on the desk: the payloads are text, nothing runs.
    context = browser.new_context(base_url=live_url)
    try:
        desk = context.new_page()
        desk_problems = watch(desk)
        sign_in(desk)
        desk.goto(f"/#ticket-{number}")
        desk.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
        desk.locator("#timeline li.msg", has_text="alert(2)").wait_for(timeout=10_000)
        desk.locator("#timeline a.attachment", has_text="invoice.png").wait_for(timeout=10_000)
        desk.wait_for_timeout(300)
        assert desk.locator("#timeline img, #timeline script, #customer img").count() == 0
        assert desk.locator("a[href^=javascript]").count() == 0
        assert desk_problems == []
    finally:
        context.close()
    assert problems == []


def test_a_form_with_bad_fields_shows_the_errors_and_keeps_the_values(
        page: Any, agent: Any, session: Any) -> None:
    problems = watch(page)
    page.goto("/forms/support")
    page.fill("#f-name", XSS_NAME)
    page.fill("#f-email", "not an address")
    page.fill("#f-message", "")
    page.set_input_files("#f-file", files=[{"name": "invoice.png", "mimeType": "image/png",
                                            "buffer": b"MZ\x90\x00 not a picture at all"}])
    with page.expect_response(re.compile(r"/forms/support$")) as posted:
        page.click("button[type=submit]")
    assert posted.value.status == 400
    page.locator(".form-errors").wait_for()
    assert page.inner_text("#f-email-error") == "Enter a valid e-mail address."
    assert page.inner_text("#f-topic-error") == "Choose one of the options." or \
        page.inner_text("#f-topic-error") == "This field is required."
    assert page.inner_text("#f-message-error") == "This field is required."
    assert page.inner_text("#f-file-error") != ""
    assert page.get_attribute("#f-email", "aria-invalid") == "true"
    assert page.input_value("#f-name") == XSS_NAME
    assert page.locator("main img").count() == 0
    assert session.scalar(select(Ticket).where(Ticket.channel == "form")) is None
    assert problems == []
