"""A ringing call carries its inbox through intake, routed live: no "waiting for a reply" item.

The contact says ``routed_live``; intake files the ticket in the called number's
inbox and queue (SLA and reports see it) but the router gets only the call's own
item, once the caller leaves the menu for the queue.
"""

from __future__ import annotations

from sqlalchemy import select

from contactcenter.channels.base import Identity, InboundContact
from contactcenter.channels.phone.callcontact import call_to_contact
from contactcenter.channels.phone.models import Call
from contactcenter.routing.models import RoutingItem
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Inbox, Message, Ticket
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import make_line

SID = "CA5f2c1e0b9a8d7c6b5a4f3e2d1c0b9a81"


def test_call_contact_is_routed_live() -> None:
    assert call_to_contact(load("voice_incoming")).routed_live


def test_ringing_call_files_its_ticket_in_the_inbox_queue_without_a_ticket_item(
        webhooks, session, settings):
    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    session.expire_all()
    call = session.scalar(select(Call).where(Call.sid == SID))
    assert call is not None
    ticket = session.get(Ticket, call.ticket_id)
    message = session.get(Message, call.message_id)
    assert ticket.inbox_id == line.voice_inbox.id == message.inbox_id
    assert ticket.queue_id == line.voice_inbox.queue_id  # carried by intake itself
    assert session.scalar(select(RoutingItem.id)) is None  # still in the menu


def test_intake_routes_the_same_contact_when_not_live(session, settings):
    """The flag alone decides: without it the inbox's queue gets the ticket at once."""
    line = make_line(session, settings)
    box = session.get(Inbox, line.voice_inbox.id)
    live = InboundContact(channel="phone", external_id="CA-live", inbox_id=box.id,
                          sender=Identity("phone", "+79160000001"), text="call",
                          routed_live=True)
    ingest_inbound(session, live, settings=settings)
    assert session.scalar(select(RoutingItem.id)) is None
    waiting = InboundContact(channel="sms", external_id="SM-1", inbox_id=line.sms_inbox.id,
                             sender=Identity("phone", "+79160000002"), text="hello")
    result = ingest_inbound(session, waiting, settings=settings)
    item = session.scalar(select(RoutingItem).where(RoutingItem.ticket_id == result.ticket_id))
    assert item is not None and item.kind == "ticket"
