"""The widget's socket with the real python-socketio client against a live server."""

from __future__ import annotations

import time
from typing import Any

import pytest
import socketio
from sqlalchemy import func, select

from contactcenter.channels.chat.identity import identity_hash
from contactcenter.channels.chat.models import ChatSession
from contactcenter.customers.models import Customer, CustomerIdentity
from contactcenter.routing.models import RoutingItem
from contactcenter.tickets.models import Direction, Message, Ticket
from tests.channels.chat.conftest import SECRET, ChatWorld, connect_agent, connect_visitor

PRECHAT = {"name": "Anna", "email": "anna@example.com", "topic": "Billing"}


def start(visitor: Any, text: str = "My invoice is wrong", client_id: str = "m-1") -> Any:
    answer = visitor.call("start", {"prechat": PRECHAT, "text": text, "client_id": client_id})
    assert "error" not in answer, answer
    return answer


def test_a_foreign_origin_is_refused_and_an_allowed_one_admitted(live_url: str,
                                                                  world: ChatWorld) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect_visitor(live_url, origin="https://evil.example")
    visitor = connect_visitor(live_url, origin="https://shop.example.test")
    assert visitor.call("hello")["available"] is True
    visitor.close()


def test_a_signed_identity_links_the_customer_and_a_forged_one_stays_anonymous(
        live_url: str, world: ChatWorld, session: Any) -> None:
    known = Customer(name="Known Customer")
    known.identities.append(CustomerIdentity(kind="external", address="user-42"))
    session.add(known)
    session.commit()

    forged = connect_visitor(live_url, auth={"user_id": "user-42", "user_hash": "ab" * 32})
    assert forged.call("hello")["identified"] is False
    chat_id = start(forged, client_id="f-1")["chat_id"]
    forged.close()
    session.expire_all()
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    assert chat.customer_id != known.id and not chat.identified

    signed = connect_visitor(live_url, auth={"user_id": "user-42",
                                             "user_hash": identity_hash(SECRET, "user-42")})
    assert signed.call("hello")["identified"] is True
    chat_id = start(signed, client_id="s-1")["chat_id"]
    signed.close()
    session.expire_all()
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    assert chat.customer_id == known.id and chat.identified


def test_a_visitor_cannot_write_into_another_visitors_chat(live_url: str,
                                                           world: ChatWorld) -> None:
    anna = connect_visitor(live_url)
    chat_id = start(anna)["chat_id"]
    mallory = connect_visitor(live_url)
    answer = mallory.call("message", {"chat_id": chat_id, "client_id": "x-1", "text": "hi"})
    assert answer == {"error": "no such chat"}
    assert "error" in mallory.call("resume", {"chat_id": chat_id, "after": 0})
    anna.close()
    mallory.close()


def test_a_message_flood_hits_the_rate_limit(live_url: str, world: ChatWorld,
                                             settings: Any) -> None:
    visitor = connect_visitor(live_url)
    chat_id = start(visitor)["chat_id"]
    answers = [visitor.call("message", {"chat_id": chat_id, "client_id": f"f-{i}",
                                        "text": f"spam {i}"})
               for i in range(settings.chat_messages_per_minute + 5)]
    refused = [a for a in answers if a.get("error") == "rate_limited"]
    assert refused and all(a["retry_after"] > 0 for a in refused)
    accepted = [a for a in answers if "message_id" in a]
    # The start message counted too: the limit holds exactly.
    assert len(accepted) == settings.chat_messages_per_minute - 1
    visitor.close()


def test_reconnect_with_resend_loses_nothing_and_doubles_nothing(
        live_url: str, world: ChatWorld, session: Any) -> None:
    visitor = connect_visitor(live_url)
    token = visitor.call("hello")["token"]
    chat_id = start(visitor)["chat_id"]
    first = visitor.call("message", {"chat_id": chat_id, "client_id": "r-1", "text": "one"})
    visitor.close()  # the network drops before the widget saw more acknowledgements

    again = connect_visitor(live_url, auth={"token": token})
    hello = again.call("hello")
    assert hello["chat"]["chat_id"] == chat_id
    # The widget resends everything still in its outbox, including one that had arrived.
    resent = again.call("message", {"chat_id": chat_id, "client_id": "r-1", "text": "one"})
    second = again.call("message", {"chat_id": chat_id, "client_id": "r-2", "text": "two"})
    assert resent == {"message_id": first["message_id"], "duplicate": True}
    assert second["duplicate"] is False
    view = again.call("resume", {"chat_id": chat_id, "after": 0})
    texts = [m["text"] for m in view["messages"] if m["from"] == "visitor"]
    assert texts == ["My invoice is wrong", "one", "two"]
    again.close()
    session.expire_all()
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    count = session.scalar(select(func.count()).select_from(Message).where(
        Message.ticket_id == chat.ticket_id, Message.direction == Direction.INBOUND))
    assert count == 3


def test_agent_and_visitor_talk_with_typing_read_receipts_and_the_end(
        live_url: str, app: Any, world: ChatWorld, session: Any) -> None:
    agent = connect_agent(live_url, app, world.agent)
    visitor = connect_visitor(live_url)
    answer = start(visitor)
    chat_id = answer["chat_id"]
    joined = visitor.wait_for(lambda e: e["type"] == "chat.agent_joined")
    assert joined["payload"]["agent"] == "Test"
    session.expire_all()
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    assert chat.agent_id == world.agent.id and chat.state == "active"
    item = session.get(RoutingItem, chat.routing_item_id)
    assert item.kind == "chat" and item.state == "assigned"

    view = agent.call("chat_open", {"chat_id": chat_id}, namespace="/agent", timeout=5)
    assert view["visitor"]["name"] == "Anna"
    assert view["messages"][0]["text"] == "My invoice is wrong"

    assert visitor.call("typing", {"chat_id": chat_id, "typing": True}) == {"ok": True}
    _wait(lambda: any(e.get("type") == "typing" for e in agent.received))
    agent.call("chat_typing", {"chat_id": chat_id, "typing": True}, namespace="/agent")
    _wait(lambda: visitor.typing and visitor.typing[-1]["typing"] is True)

    sent = agent.call("chat_send", {"chat_id": chat_id, "text": "Let me check <b>that</b>"},
                      namespace="/agent", timeout=5)
    got = visitor.wait_for(lambda e: e["type"] == "chat.message"
                           and e["payload"].get("from") == "agent")
    assert got["payload"]["text"] == "Let me check <b>that</b>"
    assert got["payload"]["chat_id"] == chat_id
    assert got["payload"]["message_id"] == sent["message_id"]
    assert visitor.call("read", {"chat_id": chat_id, "message_id": sent["message_id"]}) == \
        {"ok": True}
    _wait(lambda: any(e.get("type") == "chat.read" for e in agent.received))

    visitor_msg = visitor.call("message", {"chat_id": chat_id, "client_id": "m-2",
                                           "text": "Thanks"})
    _wait(lambda: any(e.get("type") == "chat.message"
                      and e["payload"].get("message_id") == visitor_msg["message_id"]
                      for e in agent.received))

    assert agent.call("chat_end", {"chat_id": chat_id}, namespace="/agent") == {"ok": True}
    visitor.wait_for(lambda e: e["type"] == "chat.ended")
    assert "error" in visitor.call("message", {"chat_id": chat_id, "client_id": "m-3",
                                               "text": "late"})
    session.expire_all()
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    ticket = session.get(Ticket, chat.ticket_id)
    assert ticket.status == "solved" and ticket.channel == "chat"
    assert session.get(RoutingItem, chat.routing_item_id).state == "completed"
    texts = [m.text for m in session.scalars(select(Message).where(
        Message.ticket_id == ticket.id).order_by(Message.id))]
    assert texts == ["My invoice is wrong", "Let me check <b>that</b>", "Thanks"]
    agent.disconnect()
    visitor.close()


def test_no_agent_means_the_message_form_which_becomes_a_ticket(
        live_url: str, session: Any, settings: Any) -> None:
    from tests.channels.chat.conftest import make_world

    make_world(session, settings, available=False)
    visitor = connect_visitor(live_url)
    hello = visitor.call("hello")
    assert hello["available"] is False and hello["reason"] == "no_agents"
    assert "error" in visitor.call("start", {"prechat": PRECHAT, "text": "hi",
                                             "client_id": "m-1"})
    bad = visitor.call("offline", {"client_id": "offline-0001", "email": "nope", "text": ""})
    assert set(bad["fields"]) == {"email", "text"}
    ok = visitor.call("offline", {"client_id": "offline-0002", "name": "Anna",
                                  "email": "anna@example.com", "text": "Call me back"})
    assert isinstance(ok["ticket"], int)
    again = visitor.call("offline", {"client_id": "offline-0002", "name": "Anna",
                                     "email": "anna@example.com", "text": "Call me back"})
    assert again == {"ticket": ok["ticket"], "duplicate": True}
    visitor.close()


def _wait(predicate: Any, timeout: float = 5) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_an_identified_visitor_gets_the_agents_replies_in_the_widget(
        live_url: str, app: Any, world: ChatWorld, session: Any) -> None:
    # Intake files a signed visitor's messages under the site's user id (an "external"
    # identity), which is no socket room: the reply must still reach the widget.
    agent = connect_agent(live_url, app, world.agent)
    visitor = connect_visitor(live_url, auth={"user_id": "user-7",
                                              "user_hash": identity_hash(SECRET, "user-7")})
    chat_id = start(visitor)["chat_id"]
    visitor.wait_for(lambda e: e["type"] == "chat.agent_joined")
    sent = agent.call("chat_send", {"chat_id": chat_id, "text": "Hello Anna"},
                      namespace="/agent", timeout=5)
    got = visitor.wait_for(lambda e: e["type"] == "chat.message"
                           and e["payload"].get("from") == "agent")
    assert got["payload"]["message_id"] == sent["message_id"]
    assert got["payload"]["chat_id"] == chat_id and got["payload"]["author"] == "Test"
    _wait(lambda: any(e.get("type") == "chat.message"
                      and e["payload"].get("message_id") == sent["message_id"]
                      for e in agent.received))
    session.expire_all()
    message = session.get(Message, sent["message_id"])
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == chat_id))
    assert message.recipient == chat.visitor_id and message.delivery_state == "sent"
    ticket = session.get(Ticket, chat.ticket_id)
    assert ticket.status in ("new", "open")  # a live reply leaves the chat's ticket open
    assert session.get(RoutingItem, chat.routing_item_id).state == "assigned"
    agent.disconnect()
    visitor.close()
