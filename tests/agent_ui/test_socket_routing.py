"""Presence and offers over the ``/agent`` socket drive the routing engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contactcenter.db import utcnow
from contactcenter.routing import engine
from contactcenter.routing.models import AgentState, Offer
from contactcenter.routing.policy import load_policy
from contactcenter.tickets.models import Ticket
from tests.agent_ui.conftest import Desk, login
from tests.agent_ui.test_socket import NS, connect, received_events


def _signed_in(app: Any, client: Any) -> Any:
    assert login(client, "agent@example.test").status_code == 302
    sock = connect(app, client)
    assert sock.is_connected(NS)
    sock.get_received(NS)
    return sock


def test_going_available_gets_an_offer_and_accepting_assigns_the_ticket(
        app: Any, client: Any, desk: Desk, session: Any, settings: Any) -> None:
    ticket = desk.mine
    engine.enqueue_ticket(session, ticket, utcnow(), load_policy(settings))
    session.commit()
    sock = _signed_in(app, client)

    answer = sock.emit("presence", {"presence": "available"}, namespace=NS, callback=True)
    assert answer == {"ok": True}
    offers = [e for e in received_events(sock) if e["type"] == "offer.made"]
    assert offers, received_events(sock)
    session.expire_all()
    offer = session.scalars(select(Offer).where(Offer.agent_id == desk.agent.id)).one()

    answer = sock.emit("offer", {"offer_id": offer.id, "answer": "accept"}, namespace=NS,
                       callback=True)
    assert answer == {"ok": True}
    session.expire_all()
    assert session.get(Ticket, ticket.id).assignee_id == desk.agent.id


def test_bad_presence_and_offer_messages_get_clear_errors(app: Any, client: Any,
                                                          desk: Desk) -> None:
    sock = _signed_in(app, client)
    assert "error" in sock.emit("presence", {"presence": "napping"}, namespace=NS, callback=True)
    assert "error" in sock.emit("presence", "available", namespace=NS, callback=True)
    assert "error" in sock.emit("offer", {"offer_id": "1", "answer": "accept"}, namespace=NS,
                                callback=True)
    answer = sock.emit("offer", {"offer_id": 999999, "answer": "accept"}, namespace=NS,
                       callback=True)
    assert "error" in answer


def test_a_dropped_socket_starts_the_grace_countdown(app: Any, client: Any, desk: Desk,
                                                     session: Any) -> None:
    sock = _signed_in(app, client)
    sock.emit("presence", {"presence": "available"}, namespace=NS, callback=True)
    sock.disconnect(NS)
    session.expire_all()
    state = session.get(AgentState, desk.agent.id)
    assert state is not None and state.disconnected_at is not None
    sock = _signed_in(app, client)
    session.expire_all()
    assert session.get(AgentState, desk.agent.id).disconnected_at is None
