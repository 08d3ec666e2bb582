"""The periodic SLA sweep: report each warning and breach once, escalate, catch up after downtime.

One indexed range scan finds the clocks with something to report
(``next_check_at < now``, on the partial index ``ix_sla_clocks_next_check``), so
a sweep costs what is due, not what is open. Each batch is one transaction:
the clock's report columns, the event, the escalation and the notification rows
commit together, so a crash repeats nothing and loses nothing (the next sweep
finds the clocks still due). Rows are locked ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent sweeps split the work instead of doubling it.

After an outage every clock whose instant passed is still in the index: the
breach is reported once, with ``breached_at`` the true instant it happened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.events import record_event
from contactcenter.sla import clock as clocks
from contactcenter.sla.models import SlaClock
from contactcenter.sla.notify import queue_notification
from contactcenter.sla.policy import PRIORITY_ORDER, raised_priority
from contactcenter.tickets.models import Queue, Ticket, TicketStatus

ACTIONS = ("raise_priority", "unassign")


@dataclass
class SweepResult:
    """What one sweep did."""

    warned: int = 0
    breached: int = 0
    escalated: int = 0
    batches: int = 0
    reports: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready counts."""
        return {"warned": self.warned, "breached": self.breached,
                "escalated": self.escalated, "batches": self.batches}


def parse_actions(text: str) -> list[str]:
    """Parse escalation actions: raise_priority, priority:<p>, unassign, queue:<slug>."""
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part or part == "none":
            continue
        kind, _, arg = part.partition(":")
        if (kind in ACTIONS and not arg) or (kind == "priority" and arg in PRIORITY_ORDER) \
                or (kind == "queue" and arg and len(arg) <= 64):
            out.append(part)
        else:
            raise ValueError(f"unknown SLA escalation action {part!r}")
    return out


def due_clock_ids(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Return the ids of clocks with something to report by ``now`` (the bare indexed query)."""
    return list(session.scalars(
        select(SlaClock.id).where(SlaClock.next_check_at.is_not(None),
                                  SlaClock.next_check_at < now)
        .order_by(SlaClock.next_check_at).limit(limit)))


def _escalate(session: Session, ticket: Ticket, actions: list[str], now: dt.datetime,
              routing_policy: Any) -> list[str]:
    from contactcenter.routing.engine import enqueue_ticket
    from contactcenter.sla.service import earliest_due
    from contactcenter.tickets.service import assign_ticket

    done: list[str] = []
    for action in actions:
        kind, _, arg = action.partition(":")
        if kind == "raise_priority" or kind == "priority":
            new = raised_priority(ticket.priority, arg or None)
            if new != ticket.priority:
                ticket.priority = new
                done.append(f"priority {new}")
        elif kind == "unassign" and ticket.assignee_id is not None:
            assign_ticket(session, ticket, None, None, now)
            done.append("back to the queue")
        elif kind == "queue":
            queue_id = session.scalar(select(Queue.id).where(Queue.slug == arg))
            if queue_id is not None and queue_id != ticket.queue_id:
                ticket.queue_id = queue_id
                done.append(f"moved to queue {arg}")
    if done and ticket.status in (TicketStatus.NEW, TicketStatus.OPEN):
        session.flush()
        enqueue_ticket(session, ticket, now, routing_policy,
                       due_at=earliest_due(session, ticket.id))
    return done


def _rooms(ticket: Ticket) -> list[str]:
    from contactcenter.tickets.intake import ticket_rooms

    return ticket_rooms(ticket)


def _notify(session: Session, settings: Settings, ticket: Ticket, clock: SlaClock,
            now: dt.datetime) -> None:
    recipients = [e.strip() for e in settings.sla_notify_emails.split(",") if e.strip()]
    if ticket.assignee_id is not None:
        email = session.scalar(select(User.email).where(User.id == ticket.assignee_id))
        if email:
            recipients.insert(0, email)
    when = clock.breached_at.isoformat() if clock.breached_at else ""
    subject = f"SLA breached: {clock.kind.replace('_', ' ')} on ticket [#{ticket.number}]"
    body = (f"The {clock.kind.replace('_', ' ')} target ({clock.target_minutes} business "
            f"minutes) of ticket #{ticket.number} \"{ticket.subject[:200]}\" was breached "
            f"at {when} UTC.\n")
    for email in dict.fromkeys(recipients):
        queue_notification(session, f"breach:{clock.id}", email, subject, body, now)


def sweep_batch(session: Session, settings: Settings, now: dt.datetime, limit: int,
                result: SweepResult, routing_policy: Any = None) -> int:
    """Report and escalate one batch of due clocks in the caller's transaction; return its size."""
    query = (select(SlaClock).where(SlaClock.next_check_at.is_not(None),
                                    SlaClock.next_check_at < now)
             .order_by(SlaClock.next_check_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = list(session.scalars(query))
    if not due:
        return 0
    # Only the ticket's own columns: its customer and queue rows are not needed here.
    tickets = {t.id: t for t in session.scalars(
        select(Ticket).where(Ticket.id.in_({c.ticket_id for c in due}))
        .options(lazyload(Ticket.customer), lazyload(Ticket.queue)))}
    on_warning = parse_actions(settings.sla_on_warning)
    on_breach = parse_actions(settings.sla_on_breach)
    for clock in due:
        action = clocks.sweep_step(clock, now)
        ticket = tickets.get(clock.ticket_id)
        if action is None or ticket is None:
            continue
        breach = action == clocks.BREACH
        payload = {"ticket_id": ticket.id, "number": ticket.number, "kind": clock.kind,
                   "cycle": clock.cycle, "due_at": (clock.due_at or clock.breached_at or now)
                   .isoformat(), "breached_at": clock.breached_at.isoformat()
                   if clock.breached_at else None, "target_minutes": clock.target_minutes,
                   "priority": ticket.priority, "queue_id": ticket.queue_id,
                   "assignee_id": ticket.assignee_id}
        record_event(session, "sla.breached" if breach else "sla.warning", payload,
                     _rooms(ticket))
        result.reports.append({"clock_id": clock.id, "action": action,
                               "breached_at": payload["breached_at"]})
        if breach:
            result.breached += 1
            if settings.sla_email_on_breach:
                _notify(session, settings, ticket, clock, now)
        else:
            result.warned += 1
        actions = on_breach if breach else on_warning
        if actions and ticket.is_open:
            if routing_policy is None:
                from contactcenter.routing.engine import load_policy

                routing_policy = load_policy(settings)
            done = _escalate(session, ticket, actions, now, routing_policy)
            if done:
                result.escalated += 1
                record_event(session, "sla.escalated",
                             {**payload, "actions": done, "priority": ticket.priority},
                             _rooms(ticket))
    session.flush()
    result.batches += 1
    return len(due)


def run_sweep(session: Session, settings: Settings, now: dt.datetime,
              batch: int | None = None, max_batches: int = 1000) -> SweepResult:
    """Report everything due by ``now``, one committed transaction per batch."""
    limit = batch or settings.sla_sweep_batch or 500
    result = SweepResult()
    for _ in range(max_batches):
        try:
            size = sweep_batch(session, settings, now, limit, result)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        if size < limit:
            break
    return result
