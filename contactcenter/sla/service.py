"""SLA use cases on a session: open a ticket's clocks, move them with its life, read them.

Nothing here commits: the hooks call these inside intake's and the ticket
service's transactions, so a ticket is never committed without its deadlines.
The desktop reads ``ticket_clocks`` and ``entitlement_of``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer
from contactcenter.db import insert_now, utcnow
from contactcenter.hooks import drop_cache_on_change, transaction_cache
from contactcenter.sla import clock as clocks
from contactcenter.sla.calendar import TWENTY_FOUR_SEVEN, Calendar, build_calendar
from contactcenter.sla.contracts import (
    HOURS,
    EntitlementResult,
    count_hours,
    count_incident,
    entitlement_for,
    handled_minutes,
)
from contactcenter.sla.models import (
    ClockKind,
    ClockState,
    Entitlement,
    SlaCalendar,
    SlaCalendarException,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    TicketSla,
)
from contactcenter.sla.policy import (
    PolicyChoice,
    PolicyRule,
    Target,
    TicketFacts,
    choose_policy,
    raised_priority,
    target_minutes,
)
from contactcenter.tickets.models import Queue, Ticket, TicketStatus


def calendar_of(session: Session, calendar_id: int | None) -> Calendar:
    """Return a stored calendar as pure data (None: 24x7), cached for the transaction."""
    if calendar_id is None:
        return TWENTY_FOUR_SEVEN
    cache: dict[int, Calendar] = session.info.setdefault("sla_calendars", {})
    if calendar_id in cache:
        return cache[calendar_id]
    row = session.get(SlaCalendar, calendar_id)
    if row is None:
        return TWENTY_FOUR_SEVEN
    exceptions = session.scalars(select(SlaCalendarException).where(
        SlaCalendarException.calendar_id == calendar_id))
    closed, special = set(), {}
    for exc in exceptions:
        if exc.hours.strip():
            special[exc.day] = exc.hours
        else:
            closed.add(exc.day)
    cal = build_calendar(row.timezone, row.hours, holiday_country=row.holiday_country,
                         holiday_subdivision=row.holiday_subdivision, closed_days=closed,
                         special_hours=special)
    cache[calendar_id] = cal
    return cal


def policy_rules(session: Session) -> list[PolicyRule]:
    """Return the active policies as rules (read once per transaction: intake's batches)."""
    cache = transaction_cache(session, "sla_policy_rules")
    if "rules" not in cache:
        cache["rules"] = [
            PolicyRule(p.id, p.name, p.position, p.match_channel, p.match_queue_id,
                       p.match_tier, p.match_organisation_id, p.match_contract_level)
            for p in session.scalars(select(SlaPolicy).where(SlaPolicy.active.is_(True)))]
    return list(cache["rules"])


def targets_of(session: Session, policy_id: int | None) -> list[Target]:
    """Return a policy's targets (read once per transaction)."""
    if policy_id is None:
        return []
    cache = transaction_cache(session, "sla_targets")
    if policy_id not in cache:
        cache[policy_id] = [Target(t.kind, t.priority, t.minutes) for t in session.scalars(
            select(SlaTarget).where(SlaTarget.policy_id == policy_id))]
    return list(cache[policy_id])


drop_cache_on_change(SlaPolicy, SlaTarget)


def clocks_of(session: Session, ticket_id: int) -> list[SlaClock]:
    """Return a ticket's clocks, oldest first."""
    return list(session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id)
                                .order_by(SlaClock.id)))


def _new_clock(session: Session, ticket: Ticket, sla: TicketSla, policy: SlaPolicy | None,
               kind: str, minutes: int, now: dt.datetime, cycle: int = 1) -> SlaClock:
    clock = SlaClock(ticket_id=ticket.id, kind=kind, cycle=cycle,
                     policy_id=policy.id if policy else None, calendar_id=sla.calendar_id,
                     target_minutes=minutes, warn_percent=policy.warn_percent if policy else 80,
                     pause_on_hold=policy.pause_on_hold if policy else True,
                     created_at=now, updated_at=now)
    clocks.start(clock, calendar_of(session, sla.calendar_id), now)
    return insert_now(session, clock)


def _entitlement_routing(session: Session, settings: Settings, ticket: Ticket,
                         result: EntitlementResult) -> None:
    if result.state == Entitlement.COVERED:
        ticket.priority = raised_priority(ticket.priority, settings.sla_entitled_priority)
    elif result.state in (Entitlement.EXPIRED, Entitlement.EXHAUSTED):
        slug = settings.sla_entitlement_queue.strip()
        if slug:
            queue_id = session.scalar(select(Queue.id).where(Queue.slug == slug))
            if queue_id is not None:
                ticket.queue_id = queue_id


def open_ticket_sla(session: Session, settings: Settings, ticket: Ticket, customer: Customer,
                    now: dt.datetime, *, clocks_out: list[SlaClock] | None = None
                    ) -> TicketSla:
    """Check entitlement, choose the policy, record why, and start the ticket's clocks.

    An active contract raises the ticket's priority and counts an incident; an
    expired one or a used-up allowance routes the ticket per configuration. The clocks
    started are appended to ``clocks_out`` when given (intake reads the earliest
    deadline from them instead of querying a new ticket's clocks back).
    """
    started: list[SlaClock] = clocks_out if clocks_out is not None else []
    result = entitlement_for(session, customer, now.date())
    contract = result.contract
    covered = result.state == Entitlement.COVERED and contract is not None
    _entitlement_routing(session, settings, ticket, result)
    facts = TicketFacts(
        channel=ticket.channel, queue_id=ticket.queue_id, value_tier=customer.value_tier,
        organisation_id=customer.organisation_id,
        contract_id=contract.id if covered and contract else None,
        contract_level=contract.level if covered and contract else None,
        contract_policy_id=contract.sla_policy_id if covered and contract else None,
        contract_name=f"{contract.external_id} ({contract.level})" if contract else "")
    choice: PolicyChoice = choose_policy(policy_rules(session), facts)
    policy = session.get(SlaPolicy, choice.policy_id) if choice.policy_id else None
    calendar_id = (contract.calendar_id if covered and contract and contract.calendar_id
                   else (policy.calendar_id if policy else None))
    reason = choice.reason
    targets = targets_of(session, choice.policy_id)
    first = target_minutes(targets, ClockKind.FIRST_RESPONSE, ticket.priority)
    if covered and contract and contract.response_minutes:
        if first is None or contract.response_minutes < first:
            first = contract.response_minutes
            reason += (f"; contract {contract.external_id} commits to a first response "
                       f"within {contract.response_minutes} min")
    sla = TicketSla(ticket_id=ticket.id, policy_id=choice.policy_id, policy_name=choice.name,
                    reason=reason[:500], calendar_id=calendar_id,
                    contract_id=contract.id if contract else None,
                    entitlement=result.state.value, entitlement_note=result.note[:300],
                    created_at=now, updated_at=now)
    insert_now(session, sla)  # one statement now instead of a flush of its own later
    if covered and contract:
        row = session.get(Contract, contract.id)
        if row is not None:
            count_incident(session, row, ticket.id, now)
    if first is not None:
        started.append(_new_clock(session, ticket, sla, policy, ClockKind.FIRST_RESPONSE,
                                  first, now))
    resolution = target_minutes(targets, ClockKind.RESOLUTION, ticket.priority)
    if resolution is not None:
        started.append(_new_clock(session, ticket, sla, policy, ClockKind.RESOLUTION,
                                  resolution, now))
    return sla


def earliest_due(session: Session, ticket_id: int) -> dt.datetime | None:
    """Return the earliest due instant among the ticket's running clocks."""
    dues = [c.due_at for c in clocks_of(session, ticket_id)
            if c.state == ClockState.RUNNING and c.due_at is not None]
    return min(dues) if dues else None


def _open(session: Session, ticket_id: int, kind: str) -> SlaClock | None:
    """Return the latest unmet clock of a kind."""
    return session.scalar(select(SlaClock).where(
        SlaClock.ticket_id == ticket_id, SlaClock.kind == kind,
        SlaClock.state != ClockState.MET).order_by(SlaClock.cycle.desc()).limit(1))


def customer_wrote(session: Session, settings: Settings, ticket: Ticket, customer: Customer,
                   now: dt.datetime, *, reopened: bool, automatic: bool) -> list[SlaClock]:
    """A customer message on an existing ticket: reopen, resume, start a next-response target.

    Returns the ticket's clocks as they are now (the caller reads the deadline from them).
    """
    sla = session.get(TicketSla, ticket.id)
    if sla is None:
        started: list[SlaClock] = []
        open_ticket_sla(session, settings, ticket, customer, now, clocks_out=started)
        return started
    cal = calendar_of(session, sla.calendar_id)
    rows = clocks_of(session, ticket.id)
    if reopened:
        # Decision: a reopened ticket's resolution clock runs on from where it stopped
        # (the time spent solved is not counted, like a pause); its breach stays.
        for c in rows:
            if c.kind == ClockKind.RESOLUTION and c.state == ClockState.MET:
                clocks.reopen(c, cal, now)
    if ticket.status in (TicketStatus.NEW, TicketStatus.OPEN):
        for c in rows:
            clocks.resume(c, cal, now)
    if automatic:
        return rows
    first = [c for c in rows if c.kind == ClockKind.FIRST_RESPONSE]
    if any(c.state != ClockState.MET for c in first):
        return rows  # still waiting for the first answer: that clock covers this message
    nexts = [c for c in rows if c.kind == ClockKind.NEXT_RESPONSE]
    if any(c.state != ClockState.MET for c in nexts):
        return rows  # the oldest unanswered message sets the deadline
    policy = session.get(SlaPolicy, sla.policy_id) if sla.policy_id else None
    minutes = target_minutes(targets_of(session, sla.policy_id), ClockKind.NEXT_RESPONSE,
                             ticket.priority)
    if minutes is None:
        return rows
    cycle = max((c.cycle for c in nexts), default=0) + 1
    rows.append(_new_clock(session, ticket, sla, policy, ClockKind.NEXT_RESPONSE, minutes, now,
                           cycle))
    return rows


def agent_replied(session: Session, ticket: Ticket, now: dt.datetime) -> None:
    """An outbound reply meets the first response, else the open next response."""
    sla = session.get(TicketSla, ticket.id)
    if sla is None:
        return
    cal = calendar_of(session, sla.calendar_id)
    for kind in (ClockKind.FIRST_RESPONSE, ClockKind.NEXT_RESPONSE):
        clock = _open(session, ticket.id, kind)
        if clock is not None:
            clocks.meet(clock, cal, now)
            return


def status_changed(session: Session, ticket: Ticket, old: str, new: str, now: dt.datetime
                   ) -> None:
    """Pause, resume or meet the ticket's clocks for a status change.

    pending pauses every clock; on_hold pauses the clocks whose policy says so;
    back to new/open resumes them (and reopens the resolution clock of a solved
    ticket); solved and closed meet every unmet clock.
    """
    sla = session.get(TicketSla, ticket.id)
    if sla is None:
        return
    cal = calendar_of(session, sla.calendar_id)
    rows = clocks_of(session, ticket.id)
    if new == TicketStatus.PENDING:
        for c in rows:
            clocks.pause(c, cal, now)
    elif new == TicketStatus.ON_HOLD:
        for c in rows:
            if c.pause_on_hold:
                clocks.pause(c, cal, now)
            else:
                clocks.resume(c, cal, now)
    elif new in (TicketStatus.NEW, TicketStatus.OPEN):
        for c in rows:
            if old == TicketStatus.SOLVED and c.kind == ClockKind.RESOLUTION:
                clocks.reopen(c, cal, now)
            clocks.resume(c, cal, now)
    elif new in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        for c in rows:
            clocks.meet(c, cal, now)
        if sla.contract_id is not None:
            contract = session.get(Contract, sla.contract_id)
            if contract is not None and contract.allowance_kind == HOURS:
                count_hours(session, contract, ticket.id, handled_minutes(session, ticket.id),
                            now)
    session.flush()
    sync_routing_due(session, ticket.id)


def sync_routing_due(session: Session, ticket_id: int) -> None:
    """Tell the ticket's active routing item its new earliest deadline."""
    from contactcenter.routing.models import ACTIVE_STATES, RoutingItem

    session.execute(update(RoutingItem).where(
        RoutingItem.ticket_id == ticket_id, RoutingItem.state.in_(ACTIVE_STATES))
        .values(due_at=earliest_due(session, ticket_id)))


# --- reading -----------------------------------------------------------------------------

def _minutes(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


def ticket_clocks(session: Session, ticket: Ticket, now: dt.datetime | None = None
                  ) -> list[dict[str, Any]]:
    """Return each target of a ticket for the desktop and the API.

    Each: kind, cycle, state, due_at, warn_at, met_at, breached (and when),
    paused, target, business minutes used and left, the policy's name and why
    it applied.
    """
    now = now or utcnow()
    sla = session.get(TicketSla, ticket.id)
    if sla is None:
        return []
    cal = calendar_of(session, sla.calendar_id)
    out = []
    for c in clocks_of(session, ticket.id):
        spent = clocks.used(c, cal, now)
        target = dt.timedelta(minutes=c.target_minutes)
        breached = c.breached_at is not None or (
            c.state == ClockState.RUNNING and c.due_at is not None and now > c.due_at)
        out.append({
            "kind": c.kind, "cycle": c.cycle, "state": c.state,
            "target_minutes": c.target_minutes,
            "started_at": c.started_at.isoformat(),
            "due_at": c.due_at.isoformat() if c.due_at else None,
            "warn_at": c.warn_at.isoformat() if c.warn_at else None,
            "met_at": c.met_at.isoformat() if c.met_at else None,
            "breached": breached,
            "breached_at": (c.breached_at or (c.due_at if breached else None)).isoformat()
            if breached and (c.breached_at or c.due_at) else None,
            "paused": c.state == ClockState.PAUSED,
            "business_minutes_used": _minutes(spent),
            "business_minutes_left": _minutes(max(target - spent, dt.timedelta(0))),
            "policy": sla.policy_name, "reason": sla.reason,
        })
    return out


def entitlement_of(session: Session, ticket: Ticket, today: dt.date | None = None
                   ) -> dict[str, Any]:
    """Return the customer's contract state now, as one line and its parts.

    For example ``"contract expired 12 days ago (Gold, CTR-7)"`` or ``"Gold, 3 of 10
    incidents left"``; ``at_intake`` is what intake recorded when the ticket opened.
    """
    today = today or utcnow().date()
    customer = session.get(Customer, ticket.customer_id)
    result = entitlement_for(session, customer, today) if customer else EntitlementResult(
        Entitlement.NONE, None, "")
    sla = session.get(TicketSla, ticket.id)
    c = result.contract
    return {"state": result.state.value, "text": result.note,
            "contract": None if c is None else {
                "id": c.id, "external_id": c.external_id, "level": c.level,
                "starts_on": c.starts_on.isoformat(), "ends_on": c.ends_on.isoformat(),
                "allowance_kind": c.allowance_kind,
                "allowance_amount": str(c.allowance_amount) if c.allowance_amount else None,
                "allowance_used": str(c.allowance_used)},
            "at_intake": None if sla is None else {"state": sla.entitlement,
                                                   "text": sla.entitlement_note}}
