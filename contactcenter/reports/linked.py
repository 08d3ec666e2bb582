"""Report figures read from other capability packages: SLA clocks, article use, offers.

Each function imports the other package's models when called and answers None
when they are missing, so that the reports keep working while a package is
being changed; figures are never invented.

- SLA attainment: clocks decided in the period (breached then, or met then
  without a breach), per policy and target kind and per contract; a clock met
  after its breach counts as breached.
- Knowledge: first-contact tickets on which an agent used an article.
- Cross-sell: offers shown in the period, their outcomes and the conversion
  (accepted / shown), overall and per customer tier.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from contactcenter.tickets.models import Ticket


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _counts(clocks: Any, met: Any) -> dict[str, Any]:
    clocks, met = int(clocks), int(met or 0)
    return {"clocks": clocks, "met": met, "breached": clocks - met,
            "attainment": _ratio(met, clocks)}


def sla_attainment(session: Session, f: Any, ticket_conditions: list[Any]
                   ) -> dict[str, Any] | None:
    """Return SLA attainment per policy and kind, and per contract (None: no SLA package)."""
    try:
        from contactcenter.customers.models import Contract
        from contactcenter.sla.models import SlaClock, SlaPolicy, TicketSla
    except ImportError:
        return None
    decided = case((SlaClock.breached_at.is_not(None), SlaClock.breached_at),
                   else_=SlaClock.met_at)
    met = func.sum(case((SlaClock.breached_at.is_(None), 1), else_=0))
    where = [decided >= f.start, decided < f.end, *ticket_conditions]
    base = select().select_from(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id)
    policies = [
        {"policy_id": pid, "policy": name or "(none)", "kind": kind, **_counts(n, m)}
        for pid, name, kind, n, m in session.execute(
            base.add_columns(SlaClock.policy_id, SlaPolicy.name, SlaClock.kind, func.count(), met)
            .outerjoin(SlaPolicy, SlaPolicy.id == SlaClock.policy_id).where(*where)
            .group_by(SlaClock.policy_id, SlaPolicy.name, SlaClock.kind)
            .order_by(SlaPolicy.name, SlaClock.kind))]
    contracts = [
        {"contract_id": cid, "contract": ext, "level": level, **_counts(n, m)}
        for cid, ext, level, n, m in session.execute(
            base.add_columns(TicketSla.contract_id, Contract.external_id, Contract.level,
                             func.count(), met)
            .join(TicketSla, TicketSla.ticket_id == SlaClock.ticket_id)
            .join(Contract, Contract.id == TicketSla.contract_id).where(*where)
            .group_by(TicketSla.contract_id, Contract.external_id, Contract.level)
            .order_by(Contract.external_id))]
    return {"policies": policies, "contracts": contracts}


def article_use_condition() -> Any:
    """Return a SQL condition 'an agent used a knowledge article on this ticket' (or None)."""
    try:
        from contactcenter.knowledge.models import ArticleUse
    except ImportError:
        return None
    return select(ArticleUse.id).where(ArticleUse.ticket_id == Ticket.id).exists()


def cross_sell(session: Session, f: Any) -> dict[str, Any] | None:
    """Return offers shown in the period with outcomes and conversion (None: no sales package)."""
    try:
        from contactcenter.sales.models import OfferImpression
    except ImportError:
        return None
    where = [OfferImpression.shown_at >= f.start, OfferImpression.shown_at < f.end]
    if f.agent_id is not None:
        where.append(OfferImpression.user_id == f.agent_id)
    if f.channel is not None:
        where.append(OfferImpression.channel == f.channel)
    if f.tier is not None:
        where.append(OfferImpression.tier == f.tier)
    tiers = []
    totals = {"shown": 0, "accepted": 0, "declined": 0, "not_relevant": 0}
    for tier, shown, accepted, declined, irrelevant in session.execute(
            select(OfferImpression.tier, func.count(),
                   func.sum(case((OfferImpression.outcome == "accepted", 1), else_=0)),
                   func.sum(case((OfferImpression.outcome == "declined", 1), else_=0)),
                   func.sum(case((OfferImpression.outcome == "not_relevant", 1), else_=0)))
            .where(*where).group_by(OfferImpression.tier).order_by(OfferImpression.tier)):
        row = {"tier": tier or "none", "shown": int(shown), "accepted": int(accepted or 0),
               "declined": int(declined or 0), "not_relevant": int(irrelevant or 0)}
        row["conversion"] = _ratio(row["accepted"], row["shown"])
        tiers.append(row)
        for key in totals:
            totals[key] += row[key]
    return {**totals, "conversion": _ratio(totals["accepted"], totals["shown"]), "tiers": tiers}
