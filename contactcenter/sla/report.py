"""Attainment reporting: per target, met on time, breached or still open, grouped as asked.

Every clock row already holds what a report needs (due, met, business time
taken, breached and when), so attainment is one grouped query over the clocks
started in the period (``ix_sla_clocks_started``), joined to the ticket for
queue, channel and agent, and to ``ticket_sla`` for the contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.customers.models import Contract
from contactcenter.sla.models import ClockKind, SlaClock, SlaPolicy, TicketSla
from contactcenter.tickets.models import Queue, Ticket

GROUPS = ("queue", "channel", "agent", "policy", "contract", "kind")


def attainment(session: Session, group_by: str, since: dt.datetime, until: dt.datetime,
               kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Return attainment rows for clocks started in ``[since, until)``, grouped by one key.

    Each row: key, label, total, met (on time), breached, open (neither yet),
    attainment percent (met on time among decided ones) and average business
    minutes taken by the met ones.
    """
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    if kind is not None and kind not in {k.value for k in ClockKind}:
        raise ValueError(f"unknown target kind {kind!r}")
    key: Any
    label: Any
    query = select().select_from(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id)
    if group_by == "queue":
        key, label = Ticket.queue_id, func.coalesce(Queue.name, literal("(no queue)"))
        query = query.outerjoin(Queue, Queue.id == Ticket.queue_id)
    elif group_by == "channel":
        key, label = Ticket.channel, Ticket.channel
    elif group_by == "agent":
        key, label = Ticket.assignee_id, func.coalesce(User.name, literal("(unassigned)"))
        query = query.outerjoin(User, User.id == Ticket.assignee_id)
    elif group_by == "policy":
        key, label = SlaClock.policy_id, func.coalesce(SlaPolicy.name, literal("(none)"))
        query = query.outerjoin(SlaPolicy, SlaPolicy.id == SlaClock.policy_id)
    elif group_by == "contract":
        key = TicketSla.contract_id
        label = func.coalesce(Contract.external_id, literal("(no contract)"))
        query = query.outerjoin(TicketSla, TicketSla.ticket_id == SlaClock.ticket_id) \
            .outerjoin(Contract, Contract.id == TicketSla.contract_id)
    else:
        key, label = SlaClock.kind, SlaClock.kind
    breached = SlaClock.breached_at.is_not(None)
    met = SlaClock.met_at.is_not(None) & SlaClock.breached_at.is_(None)
    query = query.add_columns(
        key.label("key"), label.label("label"), func.count(SlaClock.id).label("total"),
        func.sum(case((met, 1), else_=0)).label("met"),
        func.sum(case((breached, 1), else_=0)).label("breached"),
        func.avg(case((SlaClock.met_at.is_not(None), SlaClock.business_seconds),
                      else_=None)).label("avg_seconds"),
    ).where(SlaClock.started_at >= since, SlaClock.started_at < until) \
        .group_by(key, label).order_by(func.count(SlaClock.id).desc()).limit(limit)
    if kind is not None:
        query = query.where(SlaClock.kind == kind)
    rows = []
    for r in session.execute(query):
        total, met_n, breached_n = int(r.total), int(r.met or 0), int(r.breached or 0)
        decided = met_n + breached_n
        rows.append({
            "key": r.key, "label": str(r.label), "total": total, "met": met_n,
            "breached": breached_n, "open": total - decided,
            "attainment_percent": round(100 * met_n / decided, 1) if decided else None,
            "avg_business_minutes": round(float(r.avg_seconds) / 60, 1)
            if r.avg_seconds is not None else None,
        })
    return rows
