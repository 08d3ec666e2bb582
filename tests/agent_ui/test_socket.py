"""The ``/agent`` Socket.IO namespace: who may connect, rooms, live events, resume and resync."""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.events import trim_event_log
from tests.agent_ui.conftest import Desk, ingest, login

NS = "/agent"


def connect(app: Any, client: Any) -> Any:
    socketio = app.extensions["contactcenter"].socketio
    return socketio.test_client(app, namespace=NS, flask_test_client=client)


def rooms_of(app: Any, sock: Any) -> set[str]:
    manager = app.extensions["contactcenter"].socketio.server.manager
    sid = manager.sid_from_eio_sid(sock.eio_sid, NS)
    return set(manager.get_rooms(sid, NS)) - {sid}


def received_events(sock: Any) -> list[dict[str, Any]]:
    return [m["args"][0] for m in sock.get_received(NS) if m["name"] == "event"]


@pytest.fixture
def agent_socket(app: Any, client: Any, desk: Desk) -> Any:
    assert login(client, "agent@example.test").status_code == 302
    sock = connect(app, client)
    assert sock.is_connected(NS)
    sock.get_received(NS)
    yield sock
    if sock.is_connected(NS):
        sock.disconnect(NS)


def test_anonymous_connection_is_refused(app: Any, client: Any, desk: Desk) -> None:
    sock = connect(app, client)
    assert not sock.is_connected(NS)


def test_knowledge_editor_connection_is_refused(app: Any, client: Any, desk: Desk) -> None:
    login(client, "kb@example.test")
    assert not connect(app, client).is_connected(NS)


def test_wrong_password_gives_no_socket(app: Any, client: Any, desk: Desk) -> None:
    login(client, "agent@example.test", "not the password")
    assert not connect(app, client).is_connected(NS)


def test_agent_joins_own_and_queue_rooms(app: Any, agent_socket: Any, desk: Desk) -> None:
    assert rooms_of(app, agent_socket) == {f"agent:{desk.agent.id}", f"queue:{desk.queue_a.id}"}


def test_supervisor_joins_the_supervisors_room(app: Any, client: Any, desk: Desk) -> None:
    login(client, "super@example.test")
    sock = connect(app, client)
    assert sock.is_connected(NS)
    assert rooms_of(app, sock) == {f"agent:{desk.supervisor.id}", "supervisors"}


def test_event_for_a_ticket_in_the_agents_queue(agent_socket: Any, desk: Desk, session: Any,
                                                settings: Any) -> None:
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Live one")
    events = received_events(agent_socket)
    types = [e["type"] for e in events]
    assert "ticket.created" in types and "message.created" in types
    created = next(e for e in events if e["type"] == "ticket.created")
    assert created["payload"]["number"] == ticket.number
    assert created["payload"]["subject"] == "Live one"
    assert f"queue:{desk.queue_a.id}" in created["rooms"]
    assert isinstance(created["id"], int)
    assert all(e["payload"].get("ticket_id", ticket.id) == ticket.id for e in events)


def test_no_event_for_a_ticket_in_another_queue(agent_socket: Any, desk: Desk, session: Any,
                                                settings: Any) -> None:
    ingest(session, settings, inbox_id=desk.inbox_b.id, subject="Not for you")
    assert received_events(agent_socket) == []
    # And a customer reply on a ticket of the agent's queue still comes through.
    ingest(session, settings, inbox_id=desk.inbox_a.id, subject="For you")
    assert {e["payload"].get("subject") for e in received_events(agent_socket)
            if e["type"] == "ticket.created"} == {"For you"}


def test_event_after_assignment_reaches_the_assignee(agent_socket: Any, desk: Desk,
                                                     session: Any) -> None:
    from contactcenter.tickets.service import assign_ticket

    assign_ticket(session, desk.theirs, desk.agent.id, desk.supervisor.id)
    session.commit()
    events = received_events(agent_socket)
    assert [e["type"] for e in events] == ["ticket.assigned"]
    assert events[0]["payload"]["number"] == desk.theirs.number


def test_no_event_for_work_that_rolled_back(agent_socket: Any, desk: Desk,
                                            session: Any) -> None:
    from contactcenter.tickets.service import change_status

    change_status(session, desk.mine, "solved", None)
    session.rollback()
    assert received_events(agent_socket) == []


def test_resume_from_zero_on_a_fresh_log(agent_socket: Any, desk: Desk, session: Any) -> None:
    answer = agent_socket.emit("resume", {"cursor": 0}, namespace=NS, callback=True)
    assert answer["resync_required"] is False
    assert answer["last_event_id"] > 0
    events = answer["events"]
    assert events, "the fixture's tickets left events"
    numbers = {e["payload"].get("number") for e in events}
    assert desk.mine.number in numbers
    assert desk.theirs.number not in numbers          # filtered by the agent's rooms
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


def test_resume_from_the_newest_cursor_returns_nothing(agent_socket: Any) -> None:
    first = agent_socket.emit("resume", {"cursor": 0}, namespace=NS, callback=True)
    again = agent_socket.emit("resume", {"cursor": first["last_event_id"]}, namespace=NS,
                              callback=True)
    assert again == {"resync_required": False, "last_event_id": first["last_event_id"],
                     "events": []}


def test_resume_returns_missed_events_after_the_cursor(agent_socket: Any, desk: Desk,
                                                       session: Any, settings: Any) -> None:
    cursor = agent_socket.emit("resume", {"cursor": 0}, namespace=NS,
                               callback=True)["last_event_id"]
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Missed")
    answer = agent_socket.emit("resume", {"cursor": cursor}, namespace=NS, callback=True)
    assert answer["resync_required"] is False
    ticket_events = [e for e in answer["events"]
                     if e["type"].startswith(("ticket.", "message."))]
    assert {e["payload"]["number"] for e in ticket_events} == {ticket.number}
    assert all(e["id"] > cursor for e in answer["events"])


def test_stale_cursor_after_trim_requires_resync(agent_socket: Any, desk: Desk, session: Any,
                                                 settings: Any) -> None:
    for n in range(3):
        ingest(session, settings, inbox_id=desk.inbox_a.id, subject=f"Filler {n}")
    removed = trim_event_log(session, keep=2)
    session.commit()
    assert removed > 0
    answer = agent_socket.emit("resume", {"cursor": 1}, namespace=NS, callback=True)
    assert answer["resync_required"] is True
    assert answer["events"] == []
    assert answer["last_event_id"] > 1
    # A cursor inside what is kept is still served.
    ok = agent_socket.emit("resume", {"cursor": answer["last_event_id"] - 1}, namespace=NS,
                           callback=True)
    assert ok["resync_required"] is False


def test_future_cursor_requires_resync(agent_socket: Any) -> None:
    answer = agent_socket.emit("resume", {"cursor": 10**9}, namespace=NS, callback=True)
    assert answer["resync_required"] is True


@pytest.mark.parametrize("data", [{"cursor": "5"}, {"cursor": 1.5}, {"cursor": None},
                                  {"cursor": True}, {}, "5", [5], None])
def test_resume_with_a_non_integer_cursor_is_an_error(agent_socket: Any, data: Any) -> None:
    answer = agent_socket.emit("resume", data, namespace=NS, callback=True)
    assert isinstance(answer, dict)
    assert "error" in answer
    assert "events" not in answer


def test_negative_cursor_requires_resync(agent_socket: Any) -> None:
    answer = agent_socket.emit("resume", {"cursor": -1}, namespace=NS, callback=True)
    assert answer["resync_required"] is True


def test_a_foreign_origin_cannot_open_the_desk_socket(app: Any, client: Any, desk: Desk) -> None:
    # The chat widget's sites pass Engine.IO's origin check; the desk stays same-origin.
    login(client, "agent@example.test")
    socketio = app.extensions["contactcenter"].socketio
    evil = socketio.test_client(app, namespace=NS, flask_test_client=client,
                                headers={"Origin": "https://evil.example"})
    assert not evil.is_connected(NS)
    same = socketio.test_client(app, namespace=NS, flask_test_client=client,
                                headers={"Origin": "http://localhost"})
    assert same.is_connected(NS)


@pytest.mark.parametrize(("moment", "others"), [
    ("can_view_ticket", 0),  # before joining its rooms, alone in the namespace
    ("can_view_ticket", 1),  # the same beside another socket (another error inside)
    ("watch", 0),  # after joining, before the viewer is registered: a ghost, unless checked
], ids=["before-joining", "before-joining-beside-another", "before-registering"])
def test_a_watch_whose_socket_drops_while_it_is_handled_leaves_no_viewer(
        app: Any, client: Any, agent_socket: Any, desk: Desk, moment: str, others: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from contactcenter.agent_ui import sockets

    second = [connect(app, client) for _ in range(others)]
    socketio = app.extensions["contactcenter"].socketio
    sid = socketio.server.manager.sid_from_eio_sid(agent_socket.eio_sid, NS)
    owner = sockets if moment == "can_view_ticket" else sockets.viewers
    original = getattr(owner, moment)

    def dropped_meanwhile(*args: Any) -> Any:
        socketio.server.disconnect(sid, namespace=NS)  # its disconnect handler runs now
        return original(*args)

    monkeypatch.setattr(owner, moment, dropped_meanwhile)
    answer = agent_socket.emit("watch", {"ticket_id": desk.mine.id}, namespace=NS,
                               callback=True)
    assert answer == {"error": "disconnected"}
    assert sockets.viewers.list(desk.mine.id) == []
    assert not agent_socket.is_connected(NS)
    for sock in second:
        sock.disconnect(NS)
