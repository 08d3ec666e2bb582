"""The engine on SQLite: offers, accepts, declines, timeouts, presence, capacity, wrap-up,
sticky agents, rules steps, manual assignment, transfers, tickets and events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.config import Settings
from contactcenter.customers.models import Contract
from contactcenter.events import RecordingPublisher
from contactcenter.routing import engine
from contactcenter.routing.errors import InvalidStateError, NotEligibleError, OfferNotFoundError
from contactcenter.routing.models import AgentState, ItemState, Offer, Presence, RoutingItem
from contactcenter.routing.policy import RoutingPolicy, parse_policy
from contactcenter.tickets.models import Ticket, TicketStatus
from tests.factories import make_customer, make_inbox
from tests.routing.helpers import T0, DecisionAudit, check_invariants, held, make_agent, make_queue


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def call(session: Any, queue: Any, policy: RoutingPolicy, now: dt.datetime = T0,
         **kwargs: Any) -> RoutingItem:
    return engine.enqueue_item(session, kind="call", channel="voice", queue_id=queue.id,
                               now=now, policy=policy, **kwargs).item


@pytest.fixture(autouse=True)
def _clean(session: Any, policy: RoutingPolicy, audit: DecisionAudit) -> Any:
    yield
    assert audit.problems == []
    assert session.info.get("routing_mismatches", []) == []


def test_an_arrival_is_offered_to_the_available_agent(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    assert item.state == ItemState.OFFERED and item.agent_id == agent.id
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    assert offer.expires_at == later(policy.offer_timeout("call"))
    assert check_invariants(session, policy, T0) == []


def test_accepting_assigns_and_declining_routes_to_the_next_agent(
        session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    first = make_agent(session, policy, queue)
    second = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    offered_to = item.agent_id
    other = second.id if offered_to == first.id else first.id
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    result = engine.decline_offer(session, offer.id, offered_to, later(1), policy)
    assert [d.agent_id for d in result.decisions] == [other]
    again = result.decisions[0]
    accepted = engine.accept_offer(session, again.offer_id, other, later(2), policy)
    assert accepted.state == ItemState.ASSIGNED and accepted.agent_id == other
    assert accepted.wait_seconds == 2
    with pytest.raises(InvalidStateError):
        engine.accept_offer(session, again.offer_id, other, later(3), policy)
    with pytest.raises(OfferNotFoundError):
        engine.accept_offer(session, again.offer_id, offered_to, later(3), policy)
    assert check_invariants(session, policy, later(3)) == []


def test_a_late_accept_is_refused(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    with pytest.raises(InvalidStateError, match="expired"):
        engine.accept_offer(session, offer.id, agent.id, later(20), policy)


def test_lapsed_offers_are_rerouted_and_repeat_lapsers_go_away(session: Any) -> None:
    policy = parse_policy({}, Settings(routing_lapse_limit=2, routing_decline_cooldown_seconds=1))
    DecisionAudit(policy).install(session)
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    first = call(session, queue, policy)
    assert first.agent_id == agent.id
    engine.route(session, later(20), policy)
    assert first.state == ItemState.WAITING  # the agent refused it within the cooldown
    engine.route(session, later(21), policy)  # the cooldown is over: offered again
    assert first.state == ItemState.OFFERED and first.agent_id == agent.id
    engine.route(session, later(41), policy)
    state = session.get(AgentState, agent.id)
    assert state.presence == Presence.AWAY and "missed 2 offers" in state.presence_reason
    assert first.state == ItemState.WAITING
    assert check_invariants(session, policy, later(45)) == []


def test_capacity_per_kind_and_call_excludes_chats(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue, capacity={"chat": 2})
    chats = [engine.enqueue_item(session, kind="chat", channel="chat", queue_id=queue.id,
                                 now=later(i), policy=policy).item for i in range(3)]
    assert [c.state for c in chats] == [ItemState.OFFERED, ItemState.OFFERED, ItemState.WAITING]
    phone = call(session, queue, policy, now=later(5))
    assert phone.state == ItemState.WAITING  # chats held: a call is excluded
    for chat in chats[:2]:
        offer = session.scalars(select(Offer).where(Offer.item_id == chat.id)).one()
        engine.accept_offer(session, offer.id, agent.id, later(6), policy)
        engine.complete_item(session, chat.id, later(7), policy)
    # A chat slot came free while a chat is still held: the call stays excluded.
    assert chats[2].state == ItemState.OFFERED and phone.state == ItemState.WAITING
    engine.abandon_item(session, chats[2].id, later(8), policy)
    assert phone.state == ItemState.OFFERED and phone.agent_id == agent.id
    assert check_invariants(session, policy, later(8)) == []


def test_skills_language_and_membership_decide_who_is_offered(session: Any) -> None:
    policy = parse_policy({"default": {"steps": [{"name": "anyone"}]}}, Settings())
    DecisionAudit(policy).install(session)
    queue = make_queue(session, skill="billing", language="ru")
    make_agent(session, policy, queue, skills={"billing": 5}, languages="en")
    make_agent(session, policy, make_queue(session), skills={"billing": 5}, languages="ru")
    unskilled = make_agent(session, policy, queue, languages="ru")
    able = make_agent(session, policy, queue, skills={"billing": 1}, languages="en,ru")
    item = call(session, queue, policy)
    assert item.agent_id == able.id
    second = call(session, queue, policy, skills={})
    assert second.agent_id == unskilled.id
    assert check_invariants(session, policy, T0) == []


def stepped(policy: RoutingPolicy) -> RoutingPolicy:
    """The default policy with an experts step: level 3+ for 90 s, then anyone."""
    import dataclasses

    from contactcenter.routing.rules import RuleStep

    rules = dataclasses.replace(policy.default_rules, steps=(
        RuleStep("sticky agent", preferred=True, timeout=30),
        RuleStep("skilled agents", min_level=3, timeout=90),
        RuleStep("anyone in the queue")))
    return dataclasses.replace(policy, default_rules=rules)


def test_rules_widen_from_skilled_to_anyone_and_a_busy_sticky_agent_is_not_waited_for(
        session: Any, policy: RoutingPolicy) -> None:
    policy = stepped(policy)
    queue = make_queue(session, skill="billing")
    expert = make_agent(session, policy, queue, skills={"billing": 4}, presence="busy")
    novice = make_agent(session, policy, queue, skills={"billing": 1})
    sticky = make_agent(session, policy, queue, skills={"billing": 2})
    customer = make_customer(session)
    old = call(session, queue, policy, now=T0 - dt.timedelta(hours=2), customer_id=customer.id)
    assert old.state == ItemState.WAITING  # nobody has level 3 yet
    engine.assign_manually(session, old.id, sticky.id, T0 - dt.timedelta(hours=2), policy)
    engine.complete_item(session, old.id, T0 - dt.timedelta(hours=1), policy)
    engine.set_presence(session, sticky.id, "busy", T0, policy)
    # Sticky routing applies when the agent is available: a busy one is not waited for, and
    # the item starts at the skilled step.
    item = call(session, queue, policy, customer_id=customer.id)
    assert item.preferred_agent_id is None and item.state == ItemState.WAITING
    engine.set_presence(session, expert.id, "available", later(10), policy)
    assert item.agent_id == expert.id
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    engine.decline_offer(session, offer.id, expert.id, later(11), policy)
    assert item.state == ItemState.WAITING  # the novice is not skilled enough yet
    engine.route(session, later(89), policy)
    assert item.state == ItemState.WAITING
    engine.route(session, later(90), policy)  # then anyone in the queue
    assert item.agent_id == novice.id
    assert check_invariants(session, policy, later(90)) == []


def served_an_hour_ago(session: Any, queue: Any, policy: RoutingPolicy, customer: Any,
                       agent: Any) -> None:
    """``agent`` took and finished a call of ``customer`` an hour before T0 (sticky)."""
    earlier = call(session, queue, policy, now=T0 - dt.timedelta(hours=1), customer_id=customer.id)
    offer = session.scalars(select(Offer).where(Offer.item_id == earlier.id)).one()
    engine.accept_offer(session, offer.id, agent.id, T0 - dt.timedelta(hours=1), policy)
    engine.complete_item(session, earlier.id, T0 - dt.timedelta(minutes=50), policy)


def test_a_sticky_agent_at_capacity_is_not_preferred(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    customer = make_customer(session)
    first = make_agent(session, policy, queue)
    served_an_hour_ago(session, queue, policy, customer, first)
    engine.end_wrap_ups(session, T0, policy)
    busy_with = call(session, queue, policy, now=T0, customer_id=make_customer(session).id)
    assert busy_with.agent_id == first.id  # now on a call: no capacity for another
    other = make_agent(session, policy, queue)
    item = call(session, queue, policy, now=later(1), customer_id=customer.id)
    assert item.preferred_agent_id is None and item.agent_id == other.id


def test_sticky_agent_who_is_available_gets_the_item_first(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    customer = make_customer(session)
    first = make_agent(session, policy, queue)
    served_an_hour_ago(session, queue, policy, customer, first)
    make_agent(session, policy, queue)  # idler than the sticky agent, but not preferred
    engine.end_wrap_ups(session, T0, policy)
    item = call(session, queue, policy, customer_id=customer.id)
    assert item.preferred_agent_id == first.id and item.agent_id == first.id


def test_higher_priority_is_served_first_then_older(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    vip = make_customer(session, value_tier="A")
    gold = make_customer(session)
    session.add(Contract(external_id="c-1", customer_id=gold.id, level="Gold",
                         starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31),
                         response_minutes=60))
    plain = [call(session, queue, policy, now=later(i)) for i in range(2)]
    top = call(session, queue, policy, now=later(3), customer_id=vip.id)
    contract = call(session, queue, policy, now=later(4), customer_id=gold.id)
    assert top.priority_reason.startswith("VIP tier A")
    assert "contract Gold" in contract.priority_reason
    agent = make_agent(session, policy, queue, now=later(5))
    order = []
    for step in range(4):
        (mine,) = held(session, agent.id)
        order.append(mine.id)
        offer = session.scalars(select(Offer).where(Offer.item_id == mine.id)).one()
        engine.accept_offer(session, offer.id, agent.id, later(6 + step), policy)
        engine.complete_item(session, mine.id, later(6 + step), policy, wrap_up=False)
    assert order == sorted([top.id, contract.id, *[p.id for p in plain]],
                           key=lambda i: (-session.get(RoutingItem, i).priority, i))
    assert order[:2] == [top.id, contract.id] or order[:2] == [contract.id, top.id]
    assert order[2:] == [plain[0].id, plain[1].id]


def test_going_away_withdraws_offers_and_coming_back_matches(
        session: Any, policy: RoutingPolicy, events: RecordingPublisher) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    engine.set_presence(session, agent.id, "away", later(1), policy, reason="lunch")
    assert item.state == ItemState.WAITING
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    assert offer.outcome == "withdrawn"
    engine.set_presence(session, agent.id, "available", later(2), policy)
    assert item.state == ItemState.OFFERED
    session.commit()
    types = [e.type for e in events.published]
    assert types.count("agent.presence_changed") >= 3
    assert {"item.queued", "offer.made", "offer.withdrawn"} <= set(types)
    made = [e for e in events.published if e.type == "offer.made"][-1]
    assert f"agent:{agent.id}" in made.rooms and f"queue:{queue.id}" in made.rooms
    assert "supervisors" in made.rooms


def test_wrap_up_ends_by_itself(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    engine.accept_offer(session, offer.id, agent.id, later(1), policy)
    nxt = call(session, queue, policy, now=later(2))
    assert nxt.state == ItemState.WAITING
    engine.complete_item(session, item.id, later(60), policy)
    state = session.get(AgentState, agent.id)
    assert state.presence == Presence.WRAP_UP and state.wrap_up_until == later(90)
    assert item.handle_seconds == 59
    engine.route(session, later(89), policy)
    assert nxt.state == ItemState.WAITING
    engine.route(session, later(90), policy)
    assert state.presence == Presence.AVAILABLE and nxt.agent_id == agent.id


def test_offers_withdrawn_by_wrap_up_are_routed_again_at_once(
        session: Any, audit: DecisionAudit) -> None:
    # Completing a call puts the agent in wrap-up, which withdraws their open chat
    # offer: that chat must go at once to another free agent, not wait for a sweep.
    policy = parse_policy({}, Settings(routing_exclusive=""))
    audit.policy = policy
    assert policy.wrap_up.get("call", 0) > 0
    queue = make_queue(session)
    first = make_agent(session, policy, queue, capacity={"call": 1, "chat": 1, "ticket": 0})
    second = make_agent(session, policy, queue, capacity={"call": 0, "chat": 0, "ticket": 0})
    item = call(session, queue, policy)
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    engine.accept_offer(session, offer.id, first.id, later(1), policy)
    chat = engine.enqueue_item(session, kind="chat", channel="chat", queue_id=queue.id,
                               now=later(2), policy=policy).item
    assert chat.state == ItemState.OFFERED and chat.agent_id == first.id
    engine.set_capacity(session, second.id, "chat", 1, later(3), policy)
    engine.complete_item(session, item.id, later(10), policy)
    assert session.get(AgentState, first.id).presence == Presence.WRAP_UP
    assert chat.state == ItemState.OFFERED and chat.agent_id == second.id
    assert check_invariants(session, policy, later(10)) == []


def test_a_lost_socket_sets_the_agent_offline_after_the_grace(
        session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    engine.mark_disconnected(session, agent.id, later(0))
    engine.route(session, later(59), policy)
    assert session.get(AgentState, agent.id).presence == Presence.AVAILABLE
    engine.mark_connected(session, agent.id, later(59))
    engine.route(session, later(200), policy)
    assert session.get(AgentState, agent.id).presence == Presence.AVAILABLE
    engine.mark_disconnected(session, agent.id, later(200))
    engine.route(session, later(260), policy)
    state = session.get(AgentState, agent.id)
    assert state.presence == Presence.OFFLINE and state.presence_reason == "desktop disconnected"


def test_manual_assignment_obeys_eligibility_but_not_the_steps(
        session: Any, policy: RoutingPolicy) -> None:
    policy = stepped(policy)
    queue = make_queue(session, skill="billing")
    novice = make_agent(session, policy, queue, skills={"billing": 1}, presence="busy")
    outsider = make_agent(session, policy, make_queue(session), skills={"billing": 5})
    item = call(session, queue, policy)
    assert item.state == ItemState.WAITING
    session.commit()
    with pytest.raises(NotEligibleError, match="agent is busy"):
        engine.assign_manually(session, item.id, novice.id, later(1), policy)
    with pytest.raises(NotEligibleError, match="does not serve the queue"):
        engine.assign_manually(session, item.id, outsider.id, later(1), policy)
    session.rollback()
    item = call(session, queue, policy)
    engine.set_presence(session, novice.id, "available", later(1), policy)
    assert item.state == ItemState.WAITING  # steps: the novice's turn comes at 2 min
    engine.assign_manually(session, item.id, novice.id, later(2), policy, actor_id=outsider.id)
    assert item.state == ItemState.ASSIGNED and item.agent_id == novice.id


def test_transfer_to_an_agent_or_a_queue(session: Any, policy: RoutingPolicy) -> None:
    sales = make_queue(session)
    support = make_queue(session)
    first = make_agent(session, policy, sales, support)
    second = make_agent(session, policy, sales, presence="busy")
    third = make_agent(session, policy, support, presence="busy")
    item = call(session, sales, policy)
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id)).one()
    engine.accept_offer(session, offer.id, first.id, later(1), policy)
    session.commit()
    with pytest.raises(NotEligibleError):
        engine.transfer_item(session, item.id, later(2), policy, to_agent_id=second.id)
    session.rollback()
    item = session.get(RoutingItem, item.id)
    engine.set_presence(session, second.id, "available", later(2), policy)
    engine.transfer_item(session, item.id, later(3), policy, to_agent_id=second.id)
    assert item.agent_id == second.id and item.state == ItemState.ASSIGNED
    assert held(session, first.id) == []
    engine.set_presence(session, third.id, "available", later(4), policy)
    engine.transfer_item(session, item.id, later(5), policy, to_queue_id=support.id)
    assert item.queue_id == support.id
    assert item.state == ItemState.OFFERED and item.agent_id in (first.id, third.id)
    assert check_invariants(session, policy, later(5)) == []


def test_an_item_nobody_could_take_is_placed_when_transferred_to_a_free_agents_queue(
        session: Any, policy: RoutingPolicy) -> None:
    empty = make_queue(session)
    staffed = make_queue(session)
    agent = make_agent(session, policy, staffed)
    item = call(session, empty, policy)
    engine.commit_and_settle(session, T0, policy)
    assert item.state == ItemState.WAITING
    # What matching remembered of the item (its old queue) must not decide now.
    engine.transfer_item(session, item.id, later(1), policy, to_queue_id=staffed.id)
    assert item.state == ItemState.OFFERED and item.agent_id == agent.id
    assert check_invariants(session, policy, later(1)) == []


def test_abandon_frees_the_agent_and_counts(session: Any, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = call(session, queue, policy)
    waiting = call(session, queue, policy, now=later(1))
    engine.abandon_item(session, item.id, later(2), policy)
    assert item.state == ItemState.ABANDONED and item.abandoned_at == later(2)
    assert waiting.state == ItemState.OFFERED and waiting.agent_id == agent.id
    engine.abandon_item(session, item.id, later(3), policy)  # idempotent
    assert check_invariants(session, policy, later(3)) == []


def test_direct_assignment_when_the_offer_timeout_is_zero(session: Any) -> None:
    policy = parse_policy({}, Settings(routing_offer_timeouts="ticket=0"))
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    item = engine.enqueue_item(session, kind="ticket", channel="email", queue_id=queue.id,
                               now=T0, policy=policy).item
    assert item.state == ItemState.ASSIGNED and item.agent_id == agent.id


def test_tickets_enter_and_leave_routing(session: Any, policy: RoutingPolicy,
                                         settings: Settings) -> None:
    from contactcenter.tickets.intake import apply_contact
    from tests.factories import make_contact

    queue = make_queue(session)
    inbox = make_inbox(session, queue)
    agent = make_agent(session, policy, queue)
    result = apply_contact(session, make_contact(inbox_id=inbox.id), settings, now=T0)
    ticket = session.get(Ticket, result.ticket_id)
    enqueued = engine.enqueue_ticket(session, ticket, T0, policy)
    assert enqueued is not None and enqueued.item.agent_id == agent.id
    again = engine.enqueue_ticket(session, ticket, later(5), policy)
    assert again is not None and again.item.id == enqueued.item.id
    offer = session.scalars(select(Offer).where(Offer.item_id == enqueued.item.id)).one()
    engine.accept_offer(session, offer.id, agent.id, later(6), policy)
    assert ticket.assignee_id == agent.id and ticket.status == TicketStatus.OPEN
    engine.complete_for_ticket(session, ticket.id, later(60), policy)
    assert enqueued.item.state == ItemState.COMPLETED
    ticket.status = TicketStatus.PENDING
    assert engine.enqueue_ticket(session, ticket, later(61), policy) is None
    ticket.status = TicketStatus.OPEN  # the customer wrote again: back to its owner first
    back = engine.enqueue_ticket(session, ticket, later(90), policy)
    assert back is not None and back.item.id != enqueued.item.id
    assert back.item.preferred_agent_id == agent.id
    ticket.queue_id = None
    assert engine.enqueue_ticket(session, ticket, later(91), policy) is None


def test_rescoring_moves_an_old_item_ahead(session: Any) -> None:
    policy = parse_policy({"weights": {"age_step_minutes": 1, "age_points": 100,
                                       "age_cap": 1000}}, Settings())
    queue = make_queue(session)
    old = engine.enqueue_item(session, kind="ticket", channel="email", queue_id=queue.id,
                              now=T0, policy=policy).item
    assert old.priority == 0 and old.rescore_at == later(60)
    urgent = engine.enqueue_item(session, kind="ticket", channel="email", queue_id=queue.id,
                                 now=later(170), policy=policy, manual_priority="high").item
    assert urgent.priority == 250
    engine.route(session, later(180), policy)
    assert old.priority == 300 and "waiting 3 min" in old.priority_reason
    agent = make_agent(session, policy, queue, now=later(181))
    assert [i.id for i in held(session, agent.id)] == [old.id, urgent.id]


def test_set_capacity_and_teams_rematch(session: Any) -> None:
    policy = parse_policy({"default": {"steps": [
        {"name": "tier2", "team": "tier2", "timeout": 60}, {"name": "anyone"}]}}, Settings())
    DecisionAudit(policy).install(session)
    queue = make_queue(session)
    agent = make_agent(session, policy, queue, capacity={"call": 0})
    item = call(session, queue, policy)
    assert item.state == ItemState.WAITING
    engine.set_capacity(session, agent.id, "call", 1, later(1), policy)
    assert item.state == ItemState.WAITING  # tier2 only for a minute
    engine.set_team(session, agent.id, "tier2", later(2), policy)
    assert item.agent_id == agent.id


def test_an_organisations_contract_raises_its_members_priority(session: Any,
                                                              policy: RoutingPolicy) -> None:
    import datetime as _dt

    from contactcenter.customers.models import Contract, Organisation
    from tests.factories import make_customer

    queue = make_queue(session, "org-contracts")
    org = Organisation(name="Acme")
    session.add(org)
    session.flush()
    member = make_customer(session, "Member of Acme", organisation=org)
    outsider = make_customer(session, "Outsider")
    session.add(Contract(external_id="org-gold", organisation_id=org.id, level="gold",
                         starts_on=_dt.date(2020, 1, 1), ends_on=_dt.date(2099, 1, 1)))
    session.flush()
    covered = engine.enqueue_item(session, kind="ticket", channel="email", queue_id=queue.id,
                                  now=T0, policy=policy, customer_id=member.id).item
    plain = engine.enqueue_item(session, kind="ticket", channel="email", queue_id=queue.id,
                                now=T0, policy=policy, customer_id=outsider.id).item
    assert covered.contract_level == "gold" and plain.contract_level is None
    assert covered.priority > plain.priority
