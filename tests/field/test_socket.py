"""Technicians on the ``/agent`` namespace: their own room only, and assignments arrive live."""

from __future__ import annotations

from typing import Any

from contactcenter.field.service import assign_visit, create_visit
from tests.agent_ui.conftest import login
from tests.agent_ui.test_socket import NS, connect, received_events, rooms_of
from tests.field.conftest import Field


def test_technician_joins_only_their_room_and_hears_their_assignment(
        app: Any, client: Any, session: Any, settings: Any, field: Field) -> None:
    assert login(client, "tech-a@example.test").status_code == 302
    sock = connect(app, client)
    assert sock.is_connected(NS)
    assert rooms_of(app, sock) == {f"agent:{field.tech_a.id}"}
    sock.get_received(NS)
    mine = create_visit(session, settings, field.ticket, field.agent.id,
                        {"address": "1 Main St", "problem": "Router"})
    theirs = create_visit(session, settings, field.ticket, field.agent.id,
                          {"address": "1 Main St", "problem": "Other"})
    assign_visit(session, theirs, field.tech_b.id, field.supervisor.id)
    assign_visit(session, mine, field.tech_a.id, field.supervisor.id)
    session.commit()
    events = received_events(sock)
    assert [(e["type"], e["payload"]["visit_id"]) for e in events] == [
        ("field.visit_assigned", mine.id)]
    answer = sock.emit("resume", {"cursor": 0}, namespace=NS, callback=True)
    replayed = {(e["type"], e["payload"].get("visit_id")) for e in answer["events"]}
    assert ("field.visit_assigned", theirs.id) not in replayed
    assert not any(e["type"] == "message.created" for e in answer["events"])
    sock.disconnect(NS)


def test_reassignment_reaches_the_previous_technician_too(
        app: Any, client: Any, session: Any, settings: Any, field: Field) -> None:
    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "1 Main St", "problem": "Router"})
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id)
    session.commit()
    login(client, "tech-a@example.test")
    sock = connect(app, client)
    sock.get_received(NS)
    assign_visit(session, visit, field.tech_b.id, field.supervisor.id)
    session.commit()
    events = received_events(sock)
    assert [(e["type"], e["payload"]["technician_id"], e["payload"]["previous"])
            for e in events] == [("field.visit_assigned", field.tech_b.id, field.tech_a.id)]
    sock.disconnect(NS)
