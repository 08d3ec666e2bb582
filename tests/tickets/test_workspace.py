"""The desk's ticket work: inbox order and filters, tags, links, merge, drafts, collision, canned."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.db import utcnow
from contactcenter.routing import engine
from contactcenter.routing.policy import default_policy
from contactcenter.tickets import workspace as ws
from contactcenter.tickets.errors import InvalidTransitionError
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import CannedResponse, Message, Ticket, TicketStatus
from contactcenter.tickets.service import add_reply, assign_ticket, get_ticket, list_messages
from tests.factories import make_contact, make_inbox, make_queue, make_user


def _ticket(session: Any, settings: Any, **kwargs: Any) -> Ticket:
    result = ingest_inbound(session, make_contact(**kwargs), settings=settings)
    assert result.ticket_number is not None
    return get_ticket(session, result.ticket_number)


@pytest.fixture
def world(session: Any, settings: Any) -> dict[str, Any]:
    billing, tech = make_queue(session, "billing"), make_queue(session, "tech")
    inbox_b, inbox_t = make_inbox(session, billing), make_inbox(session, tech)
    agent = make_user(session, "agent", queues=(billing,))
    other = make_user(session, "agent", queues=(billing,))
    supervisor = make_user(session, "supervisor")
    session.commit()
    return {"billing": billing, "tech": tech, "inbox_b": inbox_b, "inbox_t": inbox_t,
            "agent": agent, "other": other, "supervisor": supervisor}


def test_inbox_sorts_by_router_priority_then_deadline(session: Any, settings: Any,
                                                      world: dict[str, Any]) -> None:
    low = _ticket(session, settings, inbox_id=world["inbox_b"].id, subject="low")
    high = _ticket(session, settings, inbox_id=world["inbox_b"].id, subject="high")
    soon = _ticket(session, settings, inbox_id=world["inbox_b"].id, subject="soon")
    now = utcnow()
    ws.set_priority(session, high, "urgent", world["agent"].id, now)
    engine.enqueue_ticket(session, soon, now, default_policy(), due_at=now + dt.timedelta(minutes=3))
    session.commit()
    rows = ws.inbox(session, world["agent"], "all", {})
    subjects = [r.ticket.subject for r in rows]
    assert subjects[0] == "high"
    assert subjects.index("soon") < subjects.index("low")
    assert rows[0].priority is not None and rows[0].priority_reason
    overdue = ws.inbox(session, world["agent"], "all", {"sla": "due_soon"})
    assert [r.ticket.subject for r in overdue] == ["soon"]
    assert low.id in {r.ticket.id for r in rows}


def test_inbox_views_and_visibility(session: Any, settings: Any, world: dict[str, Any]) -> None:
    mine = _ticket(session, settings, inbox_id=world["inbox_b"].id, subject="mine")
    free = _ticket(session, settings, inbox_id=world["inbox_b"].id, subject="free")
    hidden = _ticket(session, settings, inbox_id=world["inbox_t"].id, subject="tech only")
    assign_ticket(session, mine, world["agent"].id, world["agent"].id)
    session.commit()
    agent = world["agent"]
    assert [r.ticket.id for r in ws.inbox(session, agent, "mine", {})] == [mine.id]
    assert {r.ticket.id for r in ws.inbox(session, agent, "unassigned", {})} == {free.id}
    assert {r.ticket.id for r in ws.inbox(session, agent, "team", {})} == {mine.id, free.id}
    # Another queue's ticket is invisible in every view for the agent, visible to a supervisor.
    assert hidden.id not in {r.ticket.id for r in ws.inbox(session, agent, "all", {})}
    assert hidden.id in {r.ticket.id for r in ws.inbox(session, world["supervisor"], "all", {})}
    found = ws.inbox(session, agent, "all", ws.clean_filters({"q": "FRE"}))
    assert [r.ticket.id for r in found] == [free.id]


@pytest.mark.parametrize("filters", [
    {"status": "weird"}, {"priority": "whenever"}, {"sla": "late"}, {"customer": "x1"},
    {"colour": "red"}, {"q": "x" * 201}, {"tag": ["a"]},
])
def test_bad_filters_are_refused(filters: dict[str, Any]) -> None:
    with pytest.raises(ws.WorkspaceError):
        ws.clean_filters(filters)


def test_unknown_view_is_refused(session: Any, world: dict[str, Any]) -> None:
    with pytest.raises(ws.WorkspaceError):
        ws.inbox(session, world["agent"], "everything", {})


def test_tags_replace_and_filter(session: Any, settings: Any, world: dict[str, Any]) -> None:
    ticket = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    assert ws.set_tags(session, ticket, ["Refund", "vip", "refund"], world["agent"].id) == \
        ["refund", "vip"]
    assert ws.set_tags(session, ticket, ["vip"], world["agent"].id) == ["vip"]
    session.commit()
    assert [r.ticket.id for r in ws.inbox(session, world["agent"], "all", {"tag": "vip"})] == \
        [ticket.id]
    for bad in (["<script>"], ["a b"], "vip", ["x"] * 31):
        with pytest.raises(ws.WorkspaceError):
            ws.set_tags(session, ticket, bad, world["agent"].id)  # type: ignore[arg-type]


def test_merge_moves_messages_and_closes_the_source(session: Any, settings: Any,
                                                    world: dict[str, Any]) -> None:
    first = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="m@example.com",
                    subject="first", thread_on_open_ticket=False)
    second = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="m@example.com",
                     subject="second", thread_on_open_ticket=False)
    assert first.id != second.id
    ws.set_tags(session, second, ["billing"], world["agent"].id)
    ws.merge_tickets(session, second, first, world["agent"].id)
    session.commit()
    session.expire_all()
    source, target = session.get(Ticket, second.id), session.get(Ticket, first.id)
    assert source.status == TicketStatus.CLOSED and source.merged_into_id == target.id
    texts = [m.subject for m in list_messages(session, target)]
    assert "second" in texts and "first" in texts
    assert ws.tags_of(session, target.id) == ["billing"]
    # The merged ticket keeps a note that points at the target, and leaves the inbox.
    assert any("Merged into" in m.text for m in list_messages(session, source))
    assert source.id not in {r.ticket.id for r in ws.inbox(session, world["agent"], "all",
                                                             {"status": "closed"})}
    with pytest.raises(InvalidTransitionError):
        ws.merge_tickets(session, source, target, world["agent"].id)


def test_merge_refuses_other_customers_and_itself(session: Any, settings: Any,
                                                  world: dict[str, Any]) -> None:
    a = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="a@example.com")
    b = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="b@example.com")
    with pytest.raises(ws.WorkspaceError):
        ws.merge_tickets(session, a, b, world["agent"].id)
    with pytest.raises(ws.WorkspaceError):
        ws.merge_tickets(session, a, a, world["agent"].id)


def test_links_go_both_ways_once(session: Any, settings: Any, world: dict[str, Any]) -> None:
    a = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    b = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    ws.link_tickets(session, a, b, world["agent"].id)
    ws.link_tickets(session, b, a, world["agent"].id)
    session.commit()
    assert [(k, t.id) for k, t in ws.linked_tickets(session, a.id)] == [("related", b.id)]
    assert [(k, t.id) for k, t in ws.linked_tickets(session, b.id)] == [("related", a.id)]
    with pytest.raises(ws.WorkspaceError):
        ws.link_tickets(session, a, a, world["agent"].id)


def test_drafts_are_kept_per_agent_and_dropped_when_empty(session: Any, settings: Any,
                                                          world: dict[str, Any]) -> None:
    ticket = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    ws.save_draft(session, world["agent"].id, ticket.id, "Dear customer,", False)
    ws.save_draft(session, world["other"].id, ticket.id, "Note to self", True)
    session.commit()
    assert ws.get_draft(session, world["agent"].id, ticket.id).text == "Dear customer,"
    assert ws.get_draft(session, world["other"].id, ticket.id).internal is True
    ws.save_draft(session, world["agent"].id, ticket.id, "  ", False)
    session.commit()
    assert ws.get_draft(session, world["agent"].id, ticket.id) is None
    with pytest.raises(ws.WorkspaceError):
        ws.save_draft(session, world["agent"].id, ticket.id, "x" * 100_001, False)


def test_collision_sees_only_other_agents_replies(session: Any, settings: Any,
                                                  world: dict[str, Any]) -> None:
    ticket = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    seen = max(m.id for m in list_messages(session, ticket))
    add_reply(session, ticket, world["agent"].id, "mine")
    assert ws.replies_since(session, ticket.id, seen, world["agent"].id) == []
    add_reply(session, ticket, world["other"].id, "theirs")
    add_reply(session, ticket, world["other"].id, "a note", internal=True)
    session.commit()
    replies = ws.replies_since(session, ticket.id, seen, world["agent"].id)
    assert [m.text for m in replies] == ["theirs"]


def test_canned_placeholders_fill_known_names_only(session: Any, settings: Any,
                                                   world: dict[str, Any]) -> None:
    ticket = _ticket(session, settings, inbox_id=world["inbox_b"].id, name="Olga Smirnova")
    text = ws.render_canned(
        "Hello {{customer.first_name}}, ticket {{ ticket.number }}. {{agent.name}} "
        "{{customer.password}}", ticket=ticket, agent=world["agent"])
    assert text == (f"Hello Olga, ticket {ticket.number}. Test User {{{{customer.password}}}}")


def test_canned_responses_put_the_customers_language_first(session: Any) -> None:
    session.add_all([CannedResponse(title="A thanks", shortcut="thx", body="Thanks", language="en"),
                     CannedResponse(title="B spasibo", shortcut="spb", body="Спасибо",
                                    language="ru")])
    session.commit()
    assert [c.shortcut for c in ws.canned_responses(session, "ru")] == ["spb", "thx"]
    assert [c.shortcut for c in ws.canned_responses(session, "en")] == ["thx", "spb"]


def test_saved_views_validate_and_replace(session: Any, world: dict[str, Any]) -> None:
    agent_id = world["agent"].id
    view = ws.save_view(session, agent_id, "Urgent email", {"priority": "urgent",
                                                            "channel": "email"}, "team")
    again = ws.save_view(session, agent_id, "Urgent email", {"priority": "high"}, "mine")
    session.commit()
    assert view.id == again.id and again.filters == {"view": "mine", "priority": "high"}
    with pytest.raises(ws.WorkspaceError):
        ws.save_view(session, agent_id, "", {}, "mine")
    with pytest.raises(ws.WorkspaceError):
        ws.save_view(session, agent_id, "x", {"bogus": 1}, "mine")


def test_customer_history_lists_every_channel_newest_first(session: Any, settings: Any,
                                                           world: dict[str, Any]) -> None:
    first = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="h@example.com",
                    subject="by mail", channel="email", thread_on_open_ticket=False)
    second = _ticket(session, settings, inbox_id=world["inbox_b"].id, sender="h@example.com",
                     subject="by chat", channel="chat", thread_on_open_ticket=False)
    history = ws.customer_history(session, first.customer_id, world["agent"])
    assert [h["number"] for h in history] == [second.number, first.number]
    assert history[0]["channels"] == ["chat"]
    assert ws.customer_history(session, first.customer_id, world["agent"],
                               exclude_ticket_id=second.id)[0]["number"] == first.number
    assert session.scalar(select(Message.id).limit(1)) is not None


def test_mentions_in_a_note_tell_only_named_users_who_may_see_the_ticket(
        session: Any, settings: Any, world: dict[str, Any], events: Any) -> None:
    from contactcenter.accounts.models import User

    ticket = _ticket(session, settings, inbox_id=world["inbox_b"].id)
    other: User = world["other"]
    outsider = make_user(session, "agent", email="outsider@example.test")
    note = add_reply(session, ticket, world["agent"].id,
                     f"@{other.email.split('@')[0]} and @outsider please look; mail@x.org",
                     internal=True)
    told = ws.notify_mentions(session, ticket, note, world["agent"])
    session.commit()
    assert told == [other.id]
    assert outsider.id not in told
    assert ws.mentioned_users(session, "write to someone@example.com") == []
