"""A call pops on the real agent desk with the caller's story; accepting it bridges the call.

The whole path runs for real: a signed voice webhook rings, the menu picks the
queue, our router offers the call over the desk's Socket.IO connection, the
desk's offer card shows who is calling, and the agent's click on Accept makes
the ``phone.bridge`` job ask the (recording) Twilio stand-in to take the caller
out of the queue and dial the agent's softphone identity.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from contactcenter.channels.phone.models import Call
from contactcenter.config import Settings
from contactcenter.customers.models import CustomerIdentity
from contactcenter.routing.models import AgentState
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import change_status
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import CALLER, make_line
from tests.factories import PASSWORD, make_contact

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The phone settings on a file database: the live server's threads and the test each
    use their own connection (one shared in-memory connection would interleave them)."""
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'data' / 'cc.db'}")


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until ``check`` returns something truthy (the server works in its own threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_incoming_call_pops_on_the_desk_with_caller_story_and_accept_bridges_it(
        page, webhooks, session, settings, twilio):
    line = make_line(session, settings, available=False)
    customer = line.customer
    customer.identities.append(CustomerIdentity(kind="email", address="anna@example.test"))
    session.commit()
    # Earlier contacts on other channels: a solved email ticket and an open SMS one.
    email = ingest_inbound(session, make_contact(sender="anna@example.test", kind="email",
                                                 channel="email", subject="Invoice question"),
                           settings=settings)
    change_status(session, session.get(Ticket, email.ticket_id), "solved", None)
    session.commit()
    sms = ingest_inbound(session, make_contact(sender=CALLER, kind="phone", channel="sms",
                                               subject="", text="Router blinks red"),
                         settings=settings)

    page.goto("/login")
    page.fill("input[name=email]", line.agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#desk", timeout=10_000)  # the desk, at /
    page.wait_for_selector("#live[data-state=live]", timeout=10_000)
    page.select_option("#presence", "available")  # the agent makes themself available

    def presence() -> str | None:
        session.expire_all()
        return session.scalar(select(AgentState.presence)
                              .where(AgentState.user_id == line.agent.id))
    assert wait_for(lambda: presence() == "available"), presence()

    ringing = webhooks.post("/twilio/voice", load("voice_incoming"))
    assert ringing.status_code == 200 and b"<Gather" in ringing.data
    assert "Anna" in ringing.get_data(as_text=True)  # greeted by name
    menu = webhooks.post("/twilio/voice/menu", load("voice_gather"))
    assert menu.status_code == 200 and b"<Enqueue" in menu.data
    waiting = webhooks.post("/twilio/voice/wait", load("voice_wait"))
    assert waiting.status_code == 200

    card = page.locator("#offer")
    card.wait_for(state="visible", timeout=10_000)
    assert page.locator("#offer-title").inner_text() == "Incoming call"
    who = page.locator("#offer-who").inner_text()
    assert "Anna Petrova" in who and "B" in who
    what = page.locator("#offer-what").inner_text()
    assert CALLER in what
    assert f"#{sms.ticket_number} Router blinks red" in what  # threaded onto the open SMS ticket
    assert "Gold" in what  # the active contract
    assert "Invoice question" in page.locator("#offer-history").inner_text()
    assert not twilio.posts("/Calls/" + load("voice_incoming")["CallSid"] + ".json")

    page.click("#offer-accept")
    sid = load("voice_incoming")["CallSid"]
    bridged = wait_for(lambda: twilio.posts(f"/Calls/{sid}.json"))
    assert bridged, [r.path for r in twilio.requests]
    dial = ElementTree.fromstring(bridged[0].form["Twiml"][0]).find("Dial")
    assert dial is not None and dial.get("action", "").endswith("/twilio/voice/dial-done")
    assert dial.findtext("Client", "").strip() == f"agent-{line.agent.id}"
    session.expire_all()
    call = session.scalar(select(Call).where(Call.sid == sid))
    assert call.phase == "bridging" and call.agent_id == line.agent.id
    assert card.is_hidden()

    # The accept opened the call's ticket with the caller's history beside it.
    page.wait_for_selector("#workspace:not([hidden])", timeout=10_000)
    assert f"#{sms.ticket_number}" in page.locator("#ws-title").inner_text()
    page.wait_for_selector("#history li", timeout=10_000)
    assert "Invoice question" in page.locator("#history").inner_text()
    assert "Inbound call from " + CALLER in page.locator("#timeline").inner_text()
