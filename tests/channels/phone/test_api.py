"""The phone API: click to call, notes, the caller card, softphone tokens, forwarding."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from sqlalchemy import select

from contactcenter.channels.phone.models import Call
from contactcenter.tickets.models import Message, Ticket
from tests.channels.phone.conftest import load
from tests.channels.phone.helpers import make_line
from tests.factories import bearer, make_token, make_user


@pytest.fixture
def line(session, settings):
    return make_line(session, settings)


def _ticket(webhooks, session):
    webhooks.post("/twilio/sms", load("sms_inbound"))
    return session.scalar(select(Ticket))


def test_click_to_call_rings_the_agent_then_dials_the_customer(
        client, webhooks, session, settings, twilio, line):
    ticket = _ticket(webhooks, session)
    token = make_token(session, line.agent)
    response = client.post(f"/api/v1/tickets/{ticket.number}/calls", json={},
                           headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    created = twilio.posts("/Calls.json")[0].form
    assert created["To"] == [f"client:agent-{line.agent.id}"]
    assert created["From"] == ["+12025550100"]
    assert created["Url"][0] == f"https://cc.example.test/twilio/voice/connect?call={data['call_id']}"
    body = webhooks.post("/twilio/voice/connect", {
        "CallSid": data["sid"], "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress",
        "Direction": "outbound-api", "From": "+12025550100",
        "To": f"client:agent-{line.agent.id}"}, query=f"call={data['call_id']}")
    assert "<Number" in body.get_data(as_text=True) and "+79161234567" in body.get_data(as_text=True)
    note = client.post(f"/api/v1/calls/{data['sid']}/notes", json={"text": "Wants a refund"},
                       headers=bearer(token))
    assert note.status_code == 201
    assert session.get(Message, note.get_json()["message_id"]).direction == "note"
    webhooks.post("/twilio/voice/dial-done", {
        "CallSid": data["sid"], "AccountSid": "AC" + "0" * 32, "DialCallSid": "CA" + "9" * 32,
        "DialCallStatus": "busy", "CallStatus": "in-progress"})
    calls = client.get(f"/api/v1/tickets/{ticket.number}/calls", headers=bearer(token)).get_json()
    assert calls["calls"][0]["outcome"] == "busy"


def test_a_local_number_an_agent_dials_is_read_in_the_deployments_region(
        app, client, webhooks, session, settings, twilio, line, monkeypatch):
    services = app.extensions["contactcenter"]
    monkeypatch.setattr(services, "settings", settings.replace(phone_region="RU"))
    ticket = _ticket(webhooks, session)
    token = make_token(session, line.agent)
    response = client.post(f"/api/v1/tickets/{ticket.number}/calls",
                           json={"to": "8 (916) 555-01-02"}, headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    body = webhooks.post("/twilio/voice/connect", {
        "CallSid": data["sid"], "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress",
        "Direction": "outbound-api", "From": "+12025550100",
        "To": f"client:agent-{line.agent.id}"}, query=f"call={data['call_id']}")
    assert "+79165550102" in body.get_data(as_text=True)
    forward = client.put("/api/v1/phone/me", json={"forward_number": "8 916 555 01 03"},
                         headers=bearer(token))
    assert forward.get_json() == {"forward_number": "+79165550103"}


def test_click_to_call_reports_twilio_failure(client, webhooks, session, settings, twilio, line):
    ticket = _ticket(webhooks, session)
    token = make_token(session, line.agent)
    twilio.fail(500)
    response = client.post(f"/api/v1/tickets/{ticket.number}/calls", json={},
                           headers=bearer(token))
    assert response.status_code == 502
    call = session.scalar(select(Call))
    session.refresh(call)
    assert call.outcome == "failed" and "500" in call.last_error


def test_agents_outside_the_queue_cannot_see_or_call(client, webhooks, session, line):
    ticket = _ticket(webhooks, session)
    stranger = make_user(session, "agent")
    token = make_token(session, stranger)
    assert client.post(f"/api/v1/tickets/{ticket.number}/calls", json={},
                       headers=bearer(token)).status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket.number}/calls", json={}).status_code == 401


def test_caller_card_masks_lifetime_value_and_token_names_the_agent(
        client, webhooks, session, settings, line):
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather"))
    call = session.scalar(select(Call))
    token = make_token(session, line.agent)
    card = client.get(f"/api/v1/phone/items/{call.routing_item_id}/caller",
                      headers=bearer(token)).get_json()
    assert card["customer"]["name"] == "Anna Petrova" and card["customer"]["value_tier"] == "B"
    assert card["customer"]["masked"] and card["customer"]["lifetime_value"] is None
    assert card["contract"]["level"] == "Gold"
    issued = client.get("/api/v1/phone/token", headers=bearer(token)).get_json()
    claims = pyjwt.decode(issued["token"], options={"verify_signature": False})
    assert claims["grants"]["identity"] == f"agent-{line.agent.id}"
    assert claims["grants"]["voice"]["incoming"]["allow"] is True
    forward = client.put("/api/v1/phone/me", json={"forward_number": "+1 415 555 0100"},
                         headers=bearer(token))
    assert forward.get_json() == {"forward_number": "+14155550100"}


def test_desk_offer_card_of_a_call_names_the_number_and_earlier_tickets(
        client, webhooks, session, settings, line):
    """The desk's screen pop: who is calling and their history, for the offered agent only."""
    from contactcenter.tickets.intake import ingest_inbound
    from contactcenter.tickets.service import change_status
    from tests.factories import make_contact

    earlier = ingest_inbound(session, make_contact(sender=line.customer.identities[0].address,
                                                   kind="phone", channel="sms",
                                                   subject="Router blinks red"),
                             settings=settings)
    change_status(session, session.get(Ticket, earlier.ticket_id), "solved", None)
    session.commit()
    webhooks.post("/twilio/voice", load("voice_incoming"))
    webhooks.post("/twilio/voice/menu", load("voice_gather"))
    call = session.scalar(select(Call))
    token = make_token(session, line.agent)
    card = client.get(f"/desk/api/items/{call.routing_item_id}/card",
                      headers=bearer(token)).get_json()
    assert card["kind"] == "call" and card["sender"] == "+79161234567"
    assert card["customer"]["name"] == "Anna Petrova" and card["tier"] == "B"
    assert "Gold" in card["contract"]
    assert [h["subject"] for h in card["history"]] == ["Router blinks red"]
    other = make_user(session, "agent", queues=(line.support,))
    response = client.get(f"/desk/api/items/{call.routing_item_id}/card",
                          headers=bearer(make_token(session, other)))
    assert response.status_code == 404
