"""Report figures for a period, filtered by queue, channel, team, agent or customer tier.

Each figure is one small function over indexed columns, so that a figure
whose data lives in a package not built yet (SLA attainment, knowledge use,
offers) can be filled in without touching the others; ``build_report``
gathers them. Definitions, shared with the wallboard so that the two agree:

- volume: tickets created in the period, by UTC hour of day and by UTC day;
- first response time: ``first_response_at - created_at`` of tickets first
  answered in the period; resolution time: ``solved_at - created_at`` of
  tickets solved in the period; median and 90th percentile by linear
  interpolation (PostgreSQL's ``percentile_cont``), never only means;
- service level: of the routing items answered or abandoned in the period,
  the share answered within their queue's target answer time (abandoned ones
  count against it); abandonment: the share abandoned; average speed of
  answer: mean wait of those answered;
- first-contact resolution: tickets solved in the period, never reopened,
  with one customer message and at most one reply;
- CSAT: surveys answered in the period (score 1-5; satisfied means 4 or 5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Customer
from contactcenter.reports.linked import article_use_condition, cross_sell, sla_attainment
from contactcenter.reports.models import CsatSurvey
from contactcenter.reports.sqlfn import day_of, distribution, hour_of, seconds_between
from contactcenter.routing.models import AgentState, ItemKind, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.models import Direction, Message, Queue, Ticket, TicketStatus

MAX_PERIOD = dt.timedelta(days=366)


class ReportInputError(ValueError):
    """A report request outside what the reports allow (bad period, unknown filter)."""


@dataclass(frozen=True)
class ReportFilter:
    """The period ``[start, end)`` and the optional narrowing filters of a report."""

    start: dt.datetime
    end: dt.datetime
    queue_id: int | None = None
    channel: str | None = None
    team_id: int | None = None
    agent_id: int | None = None
    tier: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ReportInputError("the period needs timezone-aware times")
        if self.end <= self.start:
            raise ReportInputError("the period must end after it starts")
        if self.end - self.start > MAX_PERIOD:
            raise ReportInputError("a report covers at most 366 days")
        if self.channel is not None and (not self.channel.isascii() or len(self.channel) > 16):
            raise ReportInputError("unknown channel")
        if self.tier is not None and len(self.tier) > 8:
            raise ReportInputError("unknown tier")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "queue_id": self.queue_id, "channel": self.channel, "team_id": self.team_id,
                "agent_id": self.agent_id, "tier": self.tier}


def ticket_conditions(f: ReportFilter) -> list[Any]:
    """Return the filter's conditions on tickets (the tier needs the customers join)."""
    where: list[Any] = []
    if f.queue_id is not None:
        where.append(Ticket.queue_id == f.queue_id)
    if f.channel is not None:
        where.append(Ticket.channel == f.channel)
    if f.agent_id is not None:
        where.append(Ticket.assignee_id == f.agent_id)
    if f.team_id is not None:
        where.append(Ticket.assignee_id.in_(
            select(AgentState.user_id).where(AgentState.team_id == f.team_id)))
    if f.tier is not None:
        where.append(Ticket.customer_id.in_(
            select(Customer.id).where(Customer.value_tier == f.tier)))
    return where


def item_conditions(f: ReportFilter) -> list[Any]:
    """Return the filter's conditions on routing items."""
    where: list[Any] = []
    if f.queue_id is not None:
        where.append(RoutingItem.queue_id == f.queue_id)
    if f.channel is not None:
        where.append(RoutingItem.channel == f.channel)
    if f.agent_id is not None:
        where.append(RoutingItem.agent_id == f.agent_id)
    if f.team_id is not None:
        where.append(RoutingItem.agent_id.in_(
            select(AgentState.user_id).where(AgentState.team_id == f.team_id)))
    if f.tier is not None:
        where.append(RoutingItem.value_tier == f.tier)
    return where


def volume(session: Session, f: ReportFilter) -> dict[str, Any]:
    """Return tickets created in the period by UTC hour of day (24 counts) and by day."""
    where = [Ticket.created_at >= f.start, Ticket.created_at < f.end, *ticket_conditions(f)]
    hour = hour_of(session, Ticket.created_at)
    by_hour = [0] * 24
    for h, count in session.execute(select(hour, func.count()).where(*where).group_by(hour)):
        by_hour[int(h)] = int(count)
    day = day_of(session, Ticket.created_at)
    by_day = [{"day": str(d), "count": int(c)} for d, c in session.execute(
        select(day, func.count()).where(*where).group_by(day).order_by(day))]
    return {"total": sum(by_hour), "by_hour": by_hour, "by_day": by_day}


def first_response_times(session: Session, f: ReportFilter) -> dict[str, Any]:
    """Return the distribution of first response times of tickets first answered in the period."""
    return distribution(
        session, seconds_between(session, Ticket.first_response_at, Ticket.created_at),
        [Ticket.first_response_at >= f.start, Ticket.first_response_at < f.end,
         *ticket_conditions(f)], source=Ticket)


def resolution_times(session: Session, f: ReportFilter) -> dict[str, Any]:
    """Return the distribution of resolution times of tickets solved in the period."""
    return distribution(
        session, seconds_between(session, Ticket.solved_at, Ticket.created_at),
        [Ticket.solved_at >= f.start, Ticket.solved_at < f.end, *ticket_conditions(f)],
        source=Ticket)


def target_case(queues: list[tuple[int, str]], policy: RoutingPolicy) -> Any:
    """Return a SQL CASE giving each item its queue's target answer time for its kind."""
    whens = [(and_(RoutingItem.queue_id == queue_id, RoutingItem.kind == kind.value),
              policy.rules_for(slug).target_for(kind.value))
             for queue_id, slug in queues for kind in ItemKind]
    default = policy.default_rules.target_for(ItemKind.TICKET.value)
    return case(*whens, else_=default) if whens else default


def outcome_figures(answered: int, within: int, abandoned: int,
                    wait_total: float) -> dict[str, Any]:
    """Return service level, abandonment and ASA from the counts (None where undefined)."""
    handled = answered + abandoned
    return {"answered": answered, "within_target": within, "abandoned": abandoned,
            "service_level": round(within / handled, 4) if handled else None,
            "abandonment": round(abandoned / handled, 4) if handled else None,
            "asa_seconds": round(wait_total / answered, 1) if answered else None}


def service_levels(session: Session, f: ReportFilter, policy: RoutingPolicy
                   ) -> list[dict[str, Any]]:
    """Return per queue and kind: answered, within target, abandoned, SL, abandonment, ASA."""
    queues = [(q, s) for q, s in session.execute(select(Queue.id, Queue.slug).order_by(Queue.id))]
    slugs = dict(queues)
    target = target_case(queues, policy)
    conditions = item_conditions(f)
    rows: dict[tuple[int, str], list[float]] = {}
    for q, kind, answered, within, waited in session.execute(
            select(RoutingItem.queue_id, RoutingItem.kind, func.count(),
                   func.sum(case((RoutingItem.wait_seconds <= target, 1), else_=0)),
                   func.sum(RoutingItem.wait_seconds))
            .where(RoutingItem.answered_at >= f.start, RoutingItem.answered_at < f.end,
                   *conditions)
            .group_by(RoutingItem.queue_id, RoutingItem.kind)):
        rows[(q, kind)] = [int(answered), int(within or 0), 0, float(waited or 0)]
    for q, kind, abandoned in session.execute(
            select(RoutingItem.queue_id, RoutingItem.kind, func.count())
            .where(RoutingItem.abandoned_at >= f.start, RoutingItem.abandoned_at < f.end,
                   *conditions)
            .group_by(RoutingItem.queue_id, RoutingItem.kind)):
        rows.setdefault((q, kind), [0, 0, 0, 0.0])[2] = int(abandoned)
    result = []
    for (q, kind), (answered, within, abandoned, waited) in sorted(rows.items()):
        slug = slugs.get(q, "")
        result.append({"queue_id": q, "queue": slug, "kind": kind,
                       "target_seconds": policy.rules_for(slug).target_for(kind),
                       **outcome_figures(int(answered), int(within), int(abandoned), waited)})
    return result


def tier_service(session: Session, f: ReportFilter) -> list[dict[str, Any]]:
    """Return, per customer tier, abandonment and wait (are the valuable served first?)."""
    conditions = item_conditions(f)
    tier = func.coalesce(RoutingItem.value_tier, "none")
    counts: dict[str, dict[str, Any]] = {}
    for name, answered, waited in session.execute(
            select(tier, func.count(), func.sum(RoutingItem.wait_seconds))
            .where(RoutingItem.answered_at >= f.start, RoutingItem.answered_at < f.end,
                   *conditions).group_by(tier)):
        counts[str(name)] = {"answered": int(answered), "wait_total": float(waited or 0),
                             "abandoned": 0}
    for name, abandoned in session.execute(
            select(tier, func.count())
            .where(RoutingItem.abandoned_at >= f.start, RoutingItem.abandoned_at < f.end,
                   *conditions).group_by(tier)):
        counts.setdefault(str(name), {"answered": 0, "wait_total": 0.0, "abandoned": 0})[
            "abandoned"] = int(abandoned)
    result = []
    for name in sorted(counts):
        entry = counts[name]
        waits = distribution(session, RoutingItem.wait_seconds, [
            RoutingItem.answered_at >= f.start, RoutingItem.answered_at < f.end,
            tier == name, *conditions], source=RoutingItem)
        figures = outcome_figures(entry["answered"], 0, entry["abandoned"], entry["wait_total"])
        result.append({"tier": name, "answered": figures["answered"],
                       "abandoned": figures["abandoned"], "abandonment": figures["abandonment"],
                       "asa_seconds": figures["asa_seconds"],
                       "median_wait_seconds": waits["median_seconds"],
                       "p90_wait_seconds": waits["p90_seconds"]})
    return result


def first_contact_resolution(session: Session, f: ReportFilter) -> dict[str, Any]:
    """Return tickets solved in the period and how many were solved on first contact.

    First contact: never reopened, one customer message and at most one reply.
    ``with_article`` counts those on which an agent used a knowledge article
    (None without the knowledge package).
    """
    inbound = (select(func.count()).where(Message.ticket_id == Ticket.id,
                                          Message.direction == Direction.INBOUND)
               .correlate(Ticket).scalar_subquery())
    outbound = (select(func.count()).where(Message.ticket_id == Ticket.id,
                                           Message.direction == Direction.OUTBOUND)
                .correlate(Ticket).scalar_subquery())
    first = and_(Ticket.reopen_count == 0, inbound <= 1, outbound <= 1)
    used = article_use_condition()
    with_article = (func.sum(case((and_(first, used), 1), else_=0)) if used is not None
                    else literal(None))
    solved, on_first, on_first_with_article = session.execute(
        select(func.count(), func.sum(case((first, 1), else_=0)), with_article)
        .where(Ticket.solved_at >= f.start, Ticket.solved_at < f.end,
               Ticket.status.in_((TicketStatus.SOLVED, TicketStatus.CLOSED)),
               *ticket_conditions(f))).one()
    solved, on_first = int(solved or 0), int(on_first or 0)
    return {"solved": solved, "first_contact": on_first,
            "rate": round(on_first / solved, 4) if solved else None,
            "with_article": None if used is None else int(on_first_with_article or 0)}


def csat(session: Session, f: ReportFilter) -> dict[str, Any]:
    """Return CSAT over surveys answered in the period: responses, mean, satisfied share."""
    where = [CsatSurvey.answered_at >= f.start, CsatSurvey.answered_at < f.end,
             CsatSurvey.score.is_not(None)]
    if f.queue_id is not None:
        where.append(CsatSurvey.queue_id == f.queue_id)
    if f.channel is not None:
        where.append(CsatSurvey.channel == f.channel)
    if f.agent_id is not None:
        where.append(CsatSurvey.agent_id == f.agent_id)
    if f.team_id is not None:
        where.append(CsatSurvey.agent_id.in_(
            select(AgentState.user_id).where(AgentState.team_id == f.team_id)))
    if f.tier is not None:
        where.append(CsatSurvey.customer_id.in_(
            select(Customer.id).where(Customer.value_tier == f.tier)))
    by_score = dict.fromkeys(range(1, 6), 0)
    for score, count in session.execute(
            select(CsatSurvey.score, func.count()).where(*where).group_by(CsatSurvey.score)):
        if score in by_score:
            by_score[int(score)] = int(count)
    sent = session.scalar(select(func.count()).select_from(CsatSurvey).where(
        CsatSurvey.sent_at >= f.start, CsatSurvey.sent_at < f.end)) or 0
    responses = sum(by_score.values())
    total = sum(score * count for score, count in by_score.items())
    satisfied = by_score[4] + by_score[5]
    return {"responses": responses, "sent": int(sent),
            "average": round(total / responses, 2) if responses else None,
            "satisfied_share": round(satisfied / responses, 4) if responses else None,
            "by_score": {str(k): v for k, v in by_score.items()}}


def build_report(session: Session, f: ReportFilter, policy: RoutingPolicy) -> dict[str, Any]:
    """Return every figure of the report for a filter."""
    return {
        "filter": f.to_json(),
        "volume": volume(session, f),
        "first_response": first_response_times(session, f),
        "resolution": resolution_times(session, f),
        "service_levels": service_levels(session, f, policy),
        "tiers": tier_service(session, f),
        "fcr": first_contact_resolution(session, f),
        "csat": csat(session, f),
        "sla": sla_attainment(session, f, ticket_conditions(f)),
        "cross_sell": cross_sell(session, f),
    }
