"""Field-service reports: first-time fix, ticket-to-visit time, on-time arrival, cost, CSAT.

All figures are over the visits checked out in a period. A visit is "first
time" when it is not the follow-up of another; the first-time fix rate is the
share of those fixed. Arrival is on time when the check-in is no later than
the agreed window's end and the contract's on-site deadline (whichever are
set). Costs (labour plus parts) are financial data: ``field_report`` leaves
them out unless asked, and the API asks only for users holding the financial
permission (and audits it).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.customers.models import Contract
from contactcenter.field.models import Outcome, Visit, VisitState, VisitSurvey
from contactcenter.tickets.models import Ticket

MAX_ROWS = 50_000


def is_on_time(visit: Visit) -> bool | None:
    """Whether the technician arrived within the window and the deadline (None: no promise)."""
    if visit.checked_in_at is None:
        return None
    limits = [t for t in (visit.window_end, visit.due_at) if t is not None]
    if not limits:
        return None
    return visit.checked_in_at <= min(limits)


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def field_report(session: Session, since: dt.datetime, until: dt.datetime, *,
                 with_costs: bool = False) -> dict[str, Any]:
    """Return the period's field figures, overall and by technician, area and contract."""
    rows = session.execute(
        select(Visit, Ticket.created_at, User.name, VisitSurvey.score)
        .join(Ticket, Ticket.id == Visit.ticket_id)
        .outerjoin(User, User.id == Visit.technician_id)
        .outerjoin(VisitSurvey, VisitSurvey.visit_id == Visit.id)
        .where(Visit.state == VisitState.COMPLETED, Visit.checked_out_at >= since,
               Visit.checked_out_at < until)
        .order_by(Visit.id).limit(MAX_ROWS)).all()
    first = fixed_first = 0
    lead: list[float] = []
    on_time = promised = 0
    total_cost = Decimal(0)
    by_tech: dict[str, list[int]] = defaultdict(list)
    by_area: dict[str, list[int]] = defaultdict(list)
    by_contract: dict[int | None, list[Decimal]] = defaultdict(list)
    outcomes: dict[str, int] = defaultdict(int)
    for visit, ticket_created, tech_name, score in rows:
        outcomes[visit.outcome or ""] += 1
        if visit.follow_up_of_id is None:
            first += 1
            fixed_first += visit.outcome == Outcome.FIXED
            if visit.checked_in_at is not None:
                lead.append((visit.checked_in_at - ticket_created).total_seconds() / 60)
        timely = is_on_time(visit)
        if timely is not None:
            promised += 1
            on_time += timely
        if score is not None:
            by_tech[tech_name or "?"].append(score)
            by_area[visit.area or "?"].append(score)
        total_cost += visit.total_cost
        by_contract[visit.contract_id].append(visit.total_cost)
    report: dict[str, Any] = {
        "since": since.isoformat(), "until": until.isoformat(), "visits": len(rows),
        "outcomes": dict(outcomes),
        "first_time_fix_rate": _rate(fixed_first, first),
        "ticket_to_visit_minutes": {
            "median": round(statistics.median(lead)) if lead else None,
            "mean": round(statistics.fmean(lead)) if lead else None},
        "on_time_arrival_rate": _rate(on_time, promised),
        "satisfaction_by_technician": _scores(by_tech),
        "satisfaction_by_area": _scores(by_area),
    }
    if with_costs:
        levels = dict(session.execute(select(Contract.id, Contract.external_id).where(
            Contract.id.in_([c for c in by_contract if c is not None]))).all())
        report["cost_per_visit"] = _money(total_cost / len(rows)) if rows else None
        report["cost_by_contract"] = sorted(
            ({"contract_id": cid, "contract": levels.get(cid) if cid else None,
              "visits": len(costs), "total": _money(sum(costs, Decimal(0))),
              "per_visit": _money(sum(costs, Decimal(0)) / len(costs))}
             for cid, costs in by_contract.items()), key=lambda r: -Decimal(r["total"]))
    return report


def _scores(groups: dict[str, list[int]]) -> list[dict[str, Any]]:
    return sorted(({"name": name, "answers": len(s), "average": round(statistics.fmean(s), 2)}
                   for name, s in groups.items()), key=lambda r: r["name"])
