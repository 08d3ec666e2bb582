"""The chat's REST endpoints: a ticket's chat for those who may see it, live chats by role."""

from __future__ import annotations

from typing import Any

from contactcenter.channels.chat import service
from contactcenter.channels.base import load_builtin_adapters
from contactcenter.tickets.models import Ticket
from tests.channels.chat.conftest import ChatWorld
from tests.factories import bearer, make_queue, make_token, make_user


def _start(session: Any, settings: Any, text: str = "My parcel is late") -> Any:
    visitor = service.Visitor(visitor_id="v-api-1", page_url="https://shop.example.test/cart",
                              page_title="Cart")
    chat, result = service.start_chat(
        session, settings, load_builtin_adapters(), visitor,
        {"name": "<b>Anna</b>", "email": "anna@example.com", "topic": "Billing"}, text, "c-1")
    assert result is not None and result.status == "created"
    return chat


def test_a_tickets_chat_is_shown_to_its_agent_and_hidden_from_others(
        client: Any, session: Any, settings: Any, world: ChatWorld) -> None:
    chat = _start(session, settings)
    ticket = session.get(Ticket, chat.ticket_id)
    token = make_token(session, world.agent)
    response = client.get(f"/api/v1/tickets/{ticket.number}/chat", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["chat_id"] == chat.public_id and data["ticket"] == ticket.number
    assert data["visitor"]["name"] == "<b>Anna</b>" and data["visitor"]["identified"] is False
    assert data["visitor"]["page_url"] == "https://shop.example.test/cart"
    assert [m["text"] for m in data["messages"]] == ["My parcel is late"]
    assert data["state"] in ("waiting", "active")

    mine = client.get("/api/v1/chats", headers=bearer(token)).get_json()["items"]
    assert [c["chat_id"] for c in mine] == ([chat.public_id] if data["agent_id"] else [])
    assert client.get("/api/v1/chats?state=nope", headers=bearer(token)).status_code == 400

    other_queue = make_queue(session, "elsewhere")
    outsider = make_user(session, "agent", email="outsider@example.test", queues=(other_queue,))
    session.commit()
    other = make_token(session, outsider)
    assert client.get(f"/api/v1/tickets/{ticket.number}/chat",
                      headers=bearer(other)).status_code == 404
    assert client.get("/api/v1/chats", headers=bearer(other)).get_json()["items"] == []
    assert client.get(f"/api/v1/tickets/{ticket.number}/chat").status_code == 401

    boss = make_user(session, "supervisor", email="boss@example.test")
    session.commit()
    every = client.get("/api/v1/chats?state=live",
                       headers=bearer(make_token(session, boss))).get_json()["items"]
    assert [c["chat_id"] for c in every] == [chat.public_id]
