"""Inbound calls end to end: signed webhooks in, TwiML out, routing, bridge, callbacks."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select

from contactcenter.channels.phone.models import Call, TwilioWebhook
from contactcenter.routing.engine import accept_offer, commit_and_settle, load_policy
from contactcenter.routing.models import AgentState, ItemState, Offer, RoutingItem
from contactcenter.tickets.models import Message, Ticket
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import make_line

SID = "CA5f2c1e0b9a8d7c6b5a4f3e2d1c0b9a81"


def _call(session: Any) -> Call:
    session.expire_all()
    call = session.scalar(select(Call).where(Call.sid == SID))
    assert call is not None
    return call


def _accept(session: Any, settings: Any, agent_id: int) -> None:
    from contactcenter.db import utcnow

    offer = session.scalar(select(Offer).where(Offer.agent_id == agent_id,
                                               Offer.outcome == "pending"))
    assert offer is not None
    policy = load_policy(settings)
    accept_offer(session, offer.id, agent_id, utcnow(), policy)
    commit_and_settle(session, utcnow(), policy)


def test_ringing_call_greets_known_caller_by_name_in_their_language(webhooks, session, settings):
    make_line(session, settings)
    response = webhooks.post("/twilio/voice", load("voice_incoming"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    body = response.get_data(as_text=True)
    assert "Здравствуйте, Anna" in body
    assert 'language="ru-RU"' in body
    assert "вне очереди" in body  # an active contract: fast-tracked
    assert "<Gather" in body and "https://cc.example.test/twilio/voice/menu" in body
    call = _call(session)
    assert call.phase == "ivr" and call.fast_track
    message = session.get(Message, call.message_id)
    assert message.channel == "phone" and "Inbound call from +79161234567" in message.text


def test_call_walks_through_menu_queue_bridge_and_completion(webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    response = webhooks.post("/twilio/voice/menu", load("voice_gather", Digits="2"))
    body = response.get_data(as_text=True)
    assert "<Enqueue" in body and "cc-billing" in body
    assert 'waitUrl="https://cc.example.test/twilio/voice/wait"' in body
    call = _call(session)
    assert call.phase == "queued" and call.queue_id == line.billing.id
    assert "2 (billing)" in call.ivr_choices
    item = session.get(RoutingItem, call.routing_item_id)
    assert item.kind == "call" and item.external_ref == SID and item.state == "offered"

    wait = webhooks.post("/twilio/voice/wait", load("voice_wait")).get_data(as_text=True)
    assert "<Gather" in wait and "/twilio/voice/leave" in wait

    _accept(session, settings, line.agent.id)
    update = twilio.posts(f"/Calls/{SID}.json")
    assert len(update) == 1
    sent = update[0].form["Twiml"][0]
    assert "<Client" in sent and f"agent-{line.agent.id}" in sent
    assert "/twilio/voice/dial-done" in sent
    call = _call(session)
    assert call.phase == "bridging" and call.agent_id == line.agent.id

    webhooks.post("/twilio/voice/status", {
        "CallSid": "CA" + "7" * 32, "ParentCallSid": SID, "CallStatus": "in-progress",
        "AccountSid": "AC" + "0" * 32, "Direction": "outbound-dial", "SequenceNumber": "2",
        "From": "+79161234567", "To": f"client:agent-{line.agent.id}"},
        query="leg=agent")
    assert _call(session).phase == "connected"
    done = webhooks.post("/twilio/voice/dial-done", {
        "CallSid": SID, "AccountSid": "AC" + "0" * 32, "DialCallSid": "CA" + "7" * 32,
        "DialCallStatus": "completed", "DialCallDuration": "180", "CallStatus": "in-progress"})
    assert "<Hangup" in done.get_data(as_text=True)
    webhooks.post("/twilio/voice/status", load("voice_status_completed"))
    call = _call(session)
    assert call.outcome == "answered" and call.talk_seconds == 180
    assert call.duration_seconds == 185 and call.phase == "ended"
    item = session.get(RoutingItem, call.routing_item_id)
    assert item.state == ItemState.COMPLETED
    state = session.get(AgentState, line.agent.id)
    assert state.presence == "wrap_up"  # wrap-up starts when the call ends
    text = session.get(Message, call.message_id).text
    assert "Outcome: answered" in text and "Agent: Test User" in text


def test_status_callbacks_duplicated_and_shuffled_never_move_a_call_back(
        webhooks, session, settings):
    make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    callbacks = [load("voice_status_completed", CallStatus=s, SequenceNumber=str(n))
                 for n, s in enumerate(["initiated", "ringing", "in-progress", "completed"])]
    shuffled = callbacks * 2
    random.Random(7).shuffle(shuffled)
    shuffled.sort(key=lambda c: c["CallStatus"] != "completed")  # the final one first
    for params in shuffled:
        assert webhooks.post("/twilio/voice/status", params).status_code == 200
    call = _call(session)
    assert call.status == "completed" and call.phase == "ended"
    assert call.outcome == "missed"  # hung up in the menu
    keys = session.scalars(select(TwilioWebhook.dedupe_key).where(
        TwilioWebhook.endpoint == "voice-status")).all()
    assert len(keys) == 4  # each distinct callback stored once


def test_star_while_waiting_leads_to_voicemail_with_transcription(
        webhooks, session, settings, twilio):
    make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather", Digits="1"))
    leave = webhooks.post("/twilio/voice/leave", load("voice_wait", Digits="*"))
    assert "<Leave" in leave.get_data(as_text=True)
    exit_ = webhooks.post("/twilio/voice/queue-exit",
                          load("voice_wait", QueueResult="leave", QueueTime="12"))
    body = exit_.get_data(as_text=True)
    assert "<Record" in body and 'transcribe="true"' in body
    call = _call(session)
    assert call.phase == "voicemail"
    assert session.get(RoutingItem, call.routing_item_id).state == "abandoned"
    # The transcription arrives before the recording: both end up on the message.
    webhooks.post("/twilio/voice/transcription", load("transcription"))
    webhooks.post("/twilio/recording", load("recording"))
    webhooks.post("/twilio/recording", load("recording"))  # retried: applied once
    webhooks.post("/twilio/voice/status", load("voice_status_completed"))
    call = _call(session)
    assert call.outcome == "voicemail"
    voicemail = session.get(Message, call.voicemail_message_id)
    assert voicemail.ticket_id == call.ticket_id
    assert "Recordings/RE11112222333344445555666677778888" in voicemail.text
    assert "router keeps dropping" in voicemail.text
    assert session.scalar(select(Message.id).where(
        Message.external_id == "voicemail:RE11112222333344445555666677778888")) is not None
    # The voicemail waits for a call-back in the ticket queue.
    ticket_item = session.scalar(select(RoutingItem).where(
        RoutingItem.ticket_id == call.ticket_id, RoutingItem.kind == "ticket"))
    assert ticket_item is not None


def test_outside_business_hours_callers_go_straight_to_voicemail(client, session, settings):
    from contactcenter.app import services
    from tests.channels.phone.conftest import Webhooks

    services(client.application).settings  # noqa: B018
    closed = settings.replace(twilio_business_hours="sat 00:00-00:01", twilio_timezone="UTC")
    client.application.extensions["contactcenter"].settings = closed
    make_line(session, closed)
    body = Webhooks(client).post("/twilio/voice", load("voice_incoming")).get_data(as_text=True)
    assert "Сейчас мы не работаем" in body and "<Record" in body


def test_nobody_at_work_sends_the_caller_to_voicemail(webhooks, session, settings):
    make_line(session, settings, available=False)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    body = webhooks.post("/twilio/voice/menu", load("voice_gather")).get_data(as_text=True)
    assert "<Record" in body and "Все операторы заняты" in body


def test_speech_picks_the_menu_option(webhooks, session, settings):
    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    params = load("voice_gather", SpeechResult="I have a question about my invoice",
                  Confidence="0.92")
    params.pop("Digits")
    webhooks.post("/twilio/voice/menu", params)
    assert _call(session).queue_id == line.billing.id


def test_call_threads_onto_the_customers_open_ticket_on_any_channel(webhooks, session, settings):
    line = make_line(session, settings)
    from contactcenter.tickets.intake import ingest_inbound
    from tests.factories import make_contact

    result = ingest_inbound(session, make_contact(sender=line.customer.identities[0].address,
                                                  kind="phone", channel="sms"), settings=settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    call = _call(session)
    assert call.ticket_id == result.ticket_id
    assert session.get(Ticket, call.ticket_id).channel == "sms"


def test_bridge_retries_after_twilio_fails(webhooks, session, settings, twilio, jobs):
    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather"))
    twilio.fail(500)
    _accept(session, settings, line.agent.id)
    call = _call(session)
    assert call.phase == "queued" and "500" in call.last_error
    assert call.bridge_next_at is not None
    from contactcenter.channels.phone.bridge import bridge_item

    later = call.bridge_next_at
    assert bridge_item(session, call.routing_item_id, settings, later) == "bridged"
    assert len(twilio.posts(f"/Calls/{SID}.json")) == 2
    assert _call(session).phase == "bridging"


def test_agent_not_answering_puts_the_call_back_in_the_queue(webhooks, session, settings, twilio):
    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather"))
    _accept(session, settings, line.agent.id)
    body = webhooks.post("/twilio/voice/dial-done", {
        "CallSid": SID, "AccountSid": "AC" + "0" * 32, "DialCallSid": "CA" + "8" * 32,
        "DialCallStatus": "no-answer", "CallStatus": "in-progress"}).get_data(as_text=True)
    assert "<Enqueue" in body
    call = _call(session)
    assert call.phase == "queued" and call.agent_id is None
    assert session.get(RoutingItem, call.routing_item_id).state in ("waiting", "offered")


def test_ringing_call_enters_through_intake_with_its_raw_webhook(webhooks, session, settings,
                                                                   registry):
    """The call's ticket and message are intake's: raw row first, replayable by the adapter."""
    from contactcenter.channels.phone.callcontact import call_to_contact
    from contactcenter.tickets.models import RawInbound

    line = make_line(session, settings)
    webhooks.post("/twilio/voice", load("voice_incoming"))
    call = _call(session)
    raw = session.scalar(select(RawInbound).where(RawInbound.channel == "phone",
                                                  RawInbound.external_id == SID))
    assert raw is not None and raw.state == "processed" and raw.ticket_id == call.ticket_id
    message = session.get(Message, call.message_id)
    assert message.raw_id == raw.id and message.external_id == SID
    ticket = session.get(Ticket, call.ticket_id)
    assert ticket.inbox_id == line.voice_inbox.id and message.inbox_id == line.voice_inbox.id
    # In the menu, the call is not routed as a ticket waiting for a reply.
    assert session.scalar(select(RoutingItem.id)) is None
    # The stored body parses back to the same contact through the channel's adapter.
    again = registry.get("phone").to_inbound(raw.payload, inbox_id=None, raw_id=raw.id)
    assert again == call_to_contact(load("voice_incoming"), raw_id=raw.id)
    assert again.sender.address == "+79161234567" and again.external_id == SID
    assert again.recipient == "+12025550100" and again.metadata["call"]
