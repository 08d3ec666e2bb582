"""Put work in front of the router: score it, find its sticky agent, queue it, match it.

``enqueue_item`` is for any kind of work (a live call or chat from its channel,
or a ticket); ``enqueue_ticket`` is what intake and the ticket lifecycle call for
a ticket waiting for an answer: it creates the ticket's routing item, or
refreshes the one it has.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, String, and_, bindparam, func, insert, or_, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, make_transient_to_detached

from contactcenter.customers.models import Contract, Customer
from contactcenter.db_postgres import fetch
from contactcenter.routing.eligibility import ItemSnapshot
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import CANDIDATES, MatchResult, match_item, touch
from contactcenter.routing.models import (
    ACTIVE_STATES,
    AgentState,
    ItemKind,
    ItemState,
    Presence,
    RoutingItem,
    RoutingItemSkill,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.priority import PriorityInputs, priority_score
from contactcenter.routing.rules import preferred_lead, rules_clock
from contactcenter.routing.snapshot import QueueInfo, note_queue
from contactcenter.routing.store import begin_write, candidate_statement, lock_item, mark_created
from contactcenter.routing.vacancy import has_room_for
from contactcenter.routing.work import transfer_item
from contactcenter.tickets.models import Queue, QueueMember, Ticket, TicketStatus

STICKY_PRESENCES = (Presence.AVAILABLE, Presence.BUSY, Presence.WRAP_UP)


@dataclass
class Enqueued:
    """A routing item just queued (or updated) and what matching it decided."""

    item: RoutingItem
    match: MatchResult = field(default_factory=MatchResult)


def rescore(item: RoutingItem, policy: RoutingPolicy, now: dt.datetime) -> None:
    """Recompute an item's stored priority, explanation and next rescoring time."""
    scored = priority_score(PriorityInputs(
        kind=item.kind, channel=item.channel, enqueued_at=item.enqueued_at,
        value_tier=item.value_tier, lifetime_value=item.lifetime_value,
        contract_level=item.contract_level, response_minutes=item.response_minutes,
        due_at=item.due_at, manual_priority=item.manual_priority), policy.weights, now)
    item.priority = scored.score
    item.priority_reason = scored.reason
    item.rescore_at = scored.changes_at


def _contract_subquery(customer_id: Any, today: Any) -> Any:
    """SQL: the customer's best active contract (their own or their organisation's)."""
    organisation = select(Customer.organisation_id).where(
        Customer.id == customer_id).scalar_subquery()
    return (select(Contract.level, Contract.response_minutes)
            .where(or_(Contract.customer_id == customer_id,
                       and_(Contract.organisation_id.is_not(None),
                            Contract.organisation_id == organisation)),
                   Contract.starts_on <= today, Contract.ends_on >= today)
            .order_by(Contract.response_minutes.asc().nulls_last(), Contract.id).limit(1)
            .subquery())


def _last_agent_subquery(customer_id: Any, since: Any) -> Any:
    """SQL: the agent who last answered the customer since ``since`` (one row at most)."""
    return (select(RoutingItem.agent_id)
            .where(RoutingItem.customer_id == customer_id, RoutingItem.answered_at >= since,
                   RoutingItem.agent_id.is_not(None))
            .order_by(RoutingItem.answered_at.desc()).limit(1).subquery())


def _present_member_clause(agent_id: Any, queue_id: Any) -> Any:
    """SQL: the agent is a member of the queue and present (available, busy or wrapping up)."""
    return (select(AgentState.user_id)
            .join(QueueMember, QueueMember.user_id == AgentState.user_id)
            .where(AgentState.user_id == agent_id, QueueMember.queue_id == queue_id,
                   AgentState.presence.in_(STICKY_PRESENCES)).exists())


def _free_now_clause(agent_id: Any, queue_id: Any, kind: str) -> Any:
    """SQL: an agent of the queue is available with room for this kind of work now.

    Room as matching sees it (``free_kinds``): capacity left *and* no excluding
    kind held, so an agent on a chat is not "free" for a call.
    """
    return (select(AgentState.user_id)
            .join(QueueMember, QueueMember.user_id == AgentState.user_id)
            .where(AgentState.user_id == agent_id, QueueMember.queue_id == queue_id,
                   has_room_for(kind)).exists())


def sticky_agent(session: Session, customer_id: int | None, queue_id: int, now: dt.datetime,
                 policy: RoutingPolicy, kind: str | None = None) -> int | None:
    """Return the agent who last answered the customer within the window, when available.

    With ``kind``, the agent must be free for that kind of work now: a returning
    caller is not kept waiting for an agent busy with someone else (the issue's
    "sticky routing to the agent who last helped the customer, when available").
    One round trip: the last agent and whether they qualify, read together.
    """
    if customer_id is None or policy.sticky_window <= dt.timedelta(0):
        return None
    last = _last_agent_subquery(customer_id, now - policy.sticky_window)
    # Free now implies present and a member.
    qualifies = (_free_now_clause(last.c.agent_id, queue_id, kind) if kind is not None
                 else _present_member_clause(last.c.agent_id, queue_id))
    row = session.execute(select(last.c.agent_id, qualifies)).first()
    if row is None or row[0] is None or not row[1]:
        return None
    return int(row[0])


@dataclass(frozen=True)
class ArrivalFacts:
    """What an arrival reads before its item is written."""

    queue: QueueInfo
    value_tier: str | None = None
    lifetime_value: Any = None
    contract_level: str | None = None
    response_minutes: int | None = None
    preferred_present: bool = False
    sticky_agent_id: int | None = None


@functools.lru_cache(maxsize=64)
def _arrival_statement(customer: bool, sticky: bool, preferred: bool, kind: str) -> Any:
    """Build (once per shape) the arrival's one read; the values are bound.

    From the queue row (its routing facts), outer-joined to one row each: the
    customer's tier and lifetime value, their best active contract and (sticky
    routing) the agent who last answered them, with whether that agent is free
    for ``kind`` now; and whether the preferred agent is a present member.
    Binds ``arrival_queue``, and as the shape needs them ``value_customer``,
    ``value_today``, ``sticky_since`` and ``arrival_preferred``.
    """
    queue_id: Any = bindparam("arrival_queue")
    columns: list[Any] = [Queue.slug, Queue.skill, Queue.language]
    joined: Any = Queue.__table__
    if customer:
        customer_id: Any = bindparam("value_customer")
        contract = _contract_subquery(customer_id, bindparam("value_today"))
        columns += [Customer.value_tier, Customer.lifetime_value, contract.c.level,
                    contract.c.response_minutes]
        joined = (joined.outerjoin(Customer.__table__, Customer.id == customer_id)
                  .outerjoin(contract, true()))
        if sticky:
            last = _last_agent_subquery(customer_id, bindparam("sticky_since"))
            columns += [last.c.agent_id, _free_now_clause(last.c.agent_id, queue_id, kind)]
            joined = joined.outerjoin(last, true())
    if preferred:
        columns.append(_present_member_clause(bindparam("arrival_preferred"), queue_id))
    return select(*columns).select_from(joined).where(Queue.id == queue_id)


def read_arrival(session: Session, queue_id: int, customer_id: int | None, kind: str,
                 now: dt.datetime, policy: RoutingPolicy,
                 preferred_agent_id: int | None = None) -> ArrivalFacts:
    """Read the queue, the customer's value and contract and the sticky agent in one query.

    Raises ``LookupError`` for a missing queue. The sticky agent is the one
    ``sticky_agent`` would return (with ``kind``).
    """
    sticky = customer_id is not None and policy.sticky_window > dt.timedelta(0)
    params: dict[str, Any] = {"arrival_queue": queue_id}
    if customer_id is not None:
        params.update(value_customer=customer_id, value_today=now.date())
    if sticky:
        params["sticky_since"] = now - policy.sticky_window
    if preferred_agent_id is not None:
        params["arrival_preferred"] = preferred_agent_id
    rows = fetch(session, _arrival_statement(customer_id is not None, sticky,
                                             preferred_agent_id is not None, kind), params)
    if not rows:
        raise LookupError(f"no queue {queue_id}")
    row = rows[0]
    queue = QueueInfo(queue_id, row[0], row[1], row[2])
    note_queue(session, queue)
    facts = ArrivalFacts(queue)
    if customer_id is not None:
        facts = dataclasses.replace(facts, value_tier=row[3], lifetime_value=row[4],
                                    contract_level=row[5], response_minutes=row[6])
    if sticky and row[7] is not None and row[8]:
        facts = dataclasses.replace(facts, sticky_agent_id=int(row[7]))
    if preferred_agent_id is not None:
        facts = dataclasses.replace(facts, preferred_present=bool(row[-1]))
    return facts


@functools.lru_cache(maxsize=256)
def _insert_statement(candidates: Select[Any] | None = None) -> Any:
    """PostgreSQL: insert an item and its skills in one statement, returning its id.

    Binds ``new_<column>`` for every column but ``id``, and ``new_skills`` and
    ``new_levels`` (arrays, unnested into the skill rows). With ``candidates`` (a
    ``candidate_statement``, its parameters bound alongside) the statement also
    returns, as an array, the agents it lists: what matching the new item asks
    first, read in the same round trip. It cannot see the new row, which no
    offer names yet, so it lists what it would list after the insert.
    """
    items: Any = RoutingItem.__table__
    needs: Any = RoutingItemSkill.__table__
    new = (insert(items).values({c.key: bindparam(f"new_{c.key}", type_=c.type)
                                 for c in items.columns if c.key != "id"})
           .returning(items.c.id).cte("new_item"))
    wanted = func.unnest(
        bindparam("new_skills", type_=postgresql.ARRAY(String)),
        bindparam("new_levels", type_=postgresql.ARRAY(Integer)),
    ).table_valued("skill", "min_level").render_derived(name="wanted")
    skills = (insert(needs).from_select(
        ["item_id", "skill", "min_level"],
        select(new.c.id, wanted.c.skill, wanted.c.min_level).select_from(new)
        .join(wanted, true())).cte("new_skills"))
    if candidates is None:
        return select(new.c.id).add_cte(skills)
    listed = candidates.subquery("listed")
    return select(new.c.id, func.array(select(listed.c.user_id).scalar_subquery())
                  ).add_cte(skills)


def insert_item(session: Session, item: RoutingItem,
                candidates: tuple[Select[Any], dict[str, Any]] | None = None
                ) -> list[int] | None:
    """Write a new item (every column set) and its skills, and make it persistent.

    On PostgreSQL one statement inserts both, and the objects join the session
    as loaded, with nothing left to flush; elsewhere the ORM flushes them. What
    else the session holds is flushed first either way, as before. On
    PostgreSQL with ``candidates`` (a ``candidate_statement`` and its
    parameters) returns the agents it lists, read in the same statement; else None.
    """
    session.add(item)
    if session.get_bind().dialect.name != "postgresql":
        session.flush()
        return None
    session.expunge(item)
    session.flush()
    table: Any = RoutingItem.__table__
    params: dict[str, Any] = {f"new_{c.key}": getattr(item, c.key)
                              for c in table.columns if c.key != "id"}
    params.update(new_skills=[s.skill for s in item.skills],
                  new_levels=[s.min_level for s in item.skills])
    listed: list[int] | None = None
    if candidates is None:
        item.id = fetch(session, _insert_statement(), params)[0][0]
    else:
        params.update(candidates[1])
        row = fetch(session, _insert_statement(candidates[0]), params)[0]
        item.id, listed = row[0], list(row[1] or ())
    for key, value in params.items():
        if key.startswith("new_") and key[4:] in table.c:
            setattr(item, key[4:], value)  # loaded, not left expired (no refresh later)
    for skill in item.skills:
        skill.item_id = item.id
        make_transient_to_detached(skill)
    make_transient_to_detached(item)
    session.add(item)
    return listed


def enqueue_item(session: Session, *, kind: str, channel: str, queue_id: int, now: dt.datetime,
                 policy: RoutingPolicy, customer_id: int | None = None,
                 ticket_id: int | None = None, skills: Mapping[str, int] | None = None,
                 language: str | None = None, manual_priority: str = "normal",
                 due_at: dt.datetime | None = None, external_ref: str | None = None,
                 preferred_agent_id: int | None = None, match: bool = True) -> Enqueued:
    """Queue a piece of work (a live call or chat, or a ticket) and try to place it at once.

    Skills and language default to the queue's; the customer's tier, lifetime
    value and active contract are read now and kept on the item for rescoring.
    """
    begin_write(session)
    facts = read_arrival(session, queue_id, customer_id, ItemKind(kind).value, now, policy,
                         preferred_agent_id)
    queue = facts.queue
    rules = policy.rules_for(queue.slug)
    tier, ltv = facts.value_tier, facts.lifetime_value
    level, minutes = facts.contract_level, facts.response_minutes
    chosen = preferred_agent_id if facts.preferred_present else None
    sticky = facts.sticky_agent_id if chosen is None else None
    preferred = chosen if chosen is not None else sticky
    item = RoutingItem(
        kind=ItemKind(kind).value, channel=channel[:16], queue_id=queue_id, ticket_id=ticket_id,
        customer_id=customer_id, external_ref=external_ref,
        language=language if language is not None else queue.language,
        state=ItemState.WAITING, manual_priority=manual_priority, value_tier=tier,
        lifetime_value=ltv, contract_level=level, response_minutes=minutes, due_at=due_at,
        enqueued_at=now, rules_since=rules_clock(rules, now, preferred is not None),
        preferred_agent_id=preferred, offer_count=0, created_at=now, updated_at=now)
    required = dict(skills) if skills is not None else ({queue.skill: 1} if queue.skill else {})
    item.skills = [RoutingItemSkill(skill=s, min_level=lvl) for s, lvl in sorted(required.items())]
    rescore(item, policy, now)
    candidates = None
    if match and session.get_bind().dialect.name == "postgresql":
        snapshot = ItemSnapshot(
            item_id=0, kind=item.kind, channel=item.channel, queue_id=queue_id,
            queue_slug=queue.slug, queue_skill=queue.skill, enqueued_at=now,
            rules_since=item.rules_since, priority=item.priority, language=item.language,
            skills={s.skill: s.min_level for s in item.skills},
            preferred_agent_id=item.preferred_agent_id)
        candidates = candidate_statement(session, snapshot, policy, now, rules.ranking,
                                         CANDIDATES)
    listed = insert_item(session, item, candidates)
    mark_created(session, item.id)
    record_item_event(session, "item.queued", item)
    touch(session, items=[item.id])
    if not match:
        return Enqueued(item)
    result = match_item(session, item.id, now, policy, first_candidates=listed)
    if sticky is not None and item.state == ItemState.WAITING and preferred_lead(rules):
        # The sticky agent was free a moment ago but took other work (or was busy
        # being matched elsewhere): they are no longer "available", so the customer
        # is not held for them; the item goes to the wider steps at once (the
        # agent still ranks first if they free up).
        item.rules_since = rules_clock(rules, now, False)
        session.flush()
        result.merge(match_item(session, item.id, now, policy))
    return Enqueued(item, result)


def enqueue_ticket(session: Session, ticket: Ticket, now: dt.datetime, policy: RoutingPolicy,
                   *, due_at: dt.datetime | None = None, match: bool = True) -> Enqueued | None:
    """Put a ticket waiting for an answer in front of the router (or refresh its item).

    Returns None for a ticket without a queue or not waiting for an answer. A
    ticket already being handled keeps its item; a waiting one is rescored.
    """
    if ticket.queue_id is None or ticket.status not in (TicketStatus.NEW, TicketStatus.OPEN):
        return None
    begin_write(session)
    active_id = session.scalar(select(RoutingItem.id).where(
        RoutingItem.ticket_id == ticket.id, RoutingItem.state.in_(ACTIVE_STATES)
    ).order_by(RoutingItem.id).limit(1))
    if active_id is not None:
        item = lock_item(session, active_id)
        assert item is not None
        item.manual_priority = ticket.priority
        if due_at is not None:
            item.due_at = due_at
        rescore(item, policy, now)
        result = MatchResult()
        if item.state == ItemState.WAITING and item.queue_id != ticket.queue_id:
            result = transfer_item(session, item.id, now, policy, to_queue_id=ticket.queue_id)
        session.flush()
        return Enqueued(item, result)
    return enqueue_item(session, kind=ItemKind.TICKET, channel=ticket.channel,
                        queue_id=ticket.queue_id, now=now, policy=policy,
                        customer_id=ticket.customer_id, ticket_id=ticket.id,
                        manual_priority=ticket.priority, due_at=due_at,
                        preferred_agent_id=ticket.assignee_id, match=match)
