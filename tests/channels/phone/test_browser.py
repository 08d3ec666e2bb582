"""A call pops on the agent's desktop with the caller's story; accepting bridges it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from contactcenter.channels.phone.models import Call
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import make_line
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_incoming_call_pops_with_caller_story_and_accept_bridges_it(
        page, webhooks, session, settings, twilio):
    from contactcenter.tickets.intake import ingest_inbound
    from tests.factories import make_contact

    line = make_line(session, settings)
    ingest_inbound(session, make_contact(sender="+79161234567", kind="phone", channel="sms",
                                         text="Router blinks red", subject=""),
                   settings=settings)
    ingest_inbound(session, make_contact(sender="+79161234567", kind="phone", channel="api",
                                         subject="Invoice question", thread_on_open_ticket=False),
                   settings=settings)
    page.goto("/login")
    page.fill("input[name=email]", line.agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto("/phone/test-desk")
    page.wait_for_selector("#phone[data-connected=yes]", timeout=10_000)
    time.sleep(0.3)  # the socket has joined its rooms
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather"))
    popup = page.locator(".phone-popup")
    popup.wait_for(state="visible", timeout=10_000)
    assert popup.locator(".phone-caller").inner_text() == "Anna Petrova"
    assert "Tier B" in popup.locator(".phone-tier").inner_text()
    assert "Gold" in popup.locator(".phone-contract").inner_text()
    assert "Invoice question" in popup.locator(".phone-ticket").inner_text()
    assert "Router blinks red" in popup.locator(".phone-history").inner_text()
    page.click(".phone-accept")
    sid = load("voice_incoming")["CallSid"]
    deadline = time.monotonic() + 10
    while not twilio.posts(f"/Calls/{sid}.json") and time.monotonic() < deadline:
        time.sleep(0.1)
    bridged = twilio.posts(f"/Calls/{sid}.json")
    assert bridged and f"agent-{line.agent.id}" in bridged[0].form["Twiml"][0]
    session.expire_all()
    assert session.scalar(select(Call.phase)) == "bridging"
    page.wait_for_selector(".phone-popup[hidden]", state="attached")
