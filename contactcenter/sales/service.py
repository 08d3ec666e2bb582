"""Use cases of the sales package: offers for a customer, outcomes, value, marketing's edits.

``offers_for_customer`` ranks the eligible offers for the customer on the
agent's screen (or the shop's, through the API), writes one impression per
offer shown (reusing a recent one, so that reloads are not new showings) and
returns them masked by the viewer's role. ``record_outcome`` stores the
agent's one click, keeps the outcome counts that feed the acceptance estimate
and can open an order or a follow-up task for sales. Callers commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contactcenter.accounts.audit import audit
from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can
from contactcenter.customers.models import Customer, Product
from contactcenter.db import utcnow
from contactcenter.events import record_event, room
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.errors import OfferNotFoundError, SalesError
from contactcenter.sales.models import (
    FollowUpKind,
    OfferImpression,
    OfferStat,
    Outcome,
    SalesFollowUp,
)
from contactcenter.sales.ranking import RankedOffer, Ranking, rank_offers
from contactcenter.sales.serialize import serialize_offer, value_summary
from contactcenter.sales.store import candidates_for, customer_facts, stats_for

CHANNELS = frozenset({"desk", "phone", "voice", "chat", "email", "sms", "form", "api", "shop",
                      "crm"})
MAX_LIMIT = 20


def resolve_customer(session: Session, customer_id: int) -> Customer | None:
    """Return the customer, following merges to the survivor."""
    customer = session.get(Customer, customer_id)
    for _hop in range(5):
        if customer is None or customer.merged_into_id is None:
            break
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def rank_for_customer(session: Session, customer: Customer, now: dt.datetime,
                      config: SalesConfig, limit: int | None = None) -> Ranking:
    """Rank offers for a customer without recording anything."""
    facts = customer_facts(session, customer, now, config)
    if facts.opted_out:
        return rank_offers([], facts, {}, config, limit)
    candidates = candidates_for(session, facts, now, config)
    stats = stats_for(session, {c.stat_key for c in candidates}, facts.tier)
    return rank_offers(candidates, facts, stats, config, limit)


def offers_for_customer(session: Session, customer_id: int, user: User | None,
                        channel: str = "desk", limit: int = 3, *,
                        now: dt.datetime | None = None,
                        config: SalesConfig | None = None) -> list[dict[str, Any]]:
    """Return the ranked offers for a customer, recording an impression for each.

    Each offer carries its impression id (the id outcomes are recorded on), a
    one-line script and the reason it was chosen. Amounts are masked for
    viewers without the financial permission; an unmasked view is audited.

    :raises OfferNotFoundError: when the customer does not exist.
    """
    now = now or utcnow()
    config = config or SalesConfig()
    if channel not in CHANNELS:
        raise SalesError(f"unknown channel {channel!r}")
    limit = max(1, min(limit, MAX_LIMIT))
    customer = resolve_customer(session, customer_id)
    if customer is None:
        raise OfferNotFoundError("no such customer")
    ranking = rank_for_customer(session, customer, now, config, limit)
    unmasked = can(user, Permission.FINANCIAL_VIEW)
    out = []
    for offer in ranking.offers:
        impression = _impression(session, customer, offer, user, channel, now, config)
        out.append(serialize_offer(impression, offer, unmasked))
    if unmasked and out:
        audit(session, user.id if user else None, "financial.view", "customer_offers",
              customer.id, f"{len(out)} offers with expected values", channel=channel)
    return out


def _impression(session: Session, customer: Customer, offer: RankedOffer, user: User | None,
                channel: str, now: dt.datetime, config: SalesConfig) -> OfferImpression:
    c = offer.candidate
    since = now - dt.timedelta(minutes=config.impression_reuse_minutes)
    recent = session.scalars(
        select(OfferImpression).where(
            OfferImpression.customer_id == customer.id,
            OfferImpression.product_id == c.product_id,
            OfferImpression.shown_at >= since,
            OfferImpression.stat_key == c.stat_key,
            OfferImpression.outcome.is_(None),
            OfferImpression.user_id == (user.id if user else None))
        .order_by(OfferImpression.id.desc()).limit(1)).first()
    if recent is not None:
        return recent
    impression = OfferImpression(
        customer_id=customer.id, product_id=c.product_id, source=c.source,
        relation_id=c.relation_id, rule_id=c.rule_id, contract_id=c.contract_id,
        stat_key=c.stat_key, user_id=user.id if user else None, channel=channel,
        tier=customer.value_tier or "", probability=round(offer.probability, 6),
        expected_value=offer.expected_value, script=c.script[:300], reason=c.reason[:300],
        shown_at=now)
    session.add(impression)
    session.flush()
    return impression


def _bump(session: Session, key: str, tier: str, outcome: str, delta: int) -> None:
    """Add ``delta`` to one outcome count, creating the row on first use."""
    column = getattr(OfferStat, outcome)
    result = session.execute(update(OfferStat).where(OfferStat.key == key, OfferStat.tier == tier)
                             .values({column: column + delta}))
    if result.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            counts = {"accepted": 0, "declined": 0, "not_relevant": 0, outcome: max(delta, 0)}
            session.add(OfferStat(key=key, tier=tier, **counts))
            session.flush()
    except IntegrityError:
        # Another transaction created it first: add to theirs.
        session.execute(update(OfferStat).where(OfferStat.key == key, OfferStat.tier == tier)
                        .values({column: column + delta}))


def record_outcome(session: Session, impression_id: int, outcome: str, user: User | None, *,
                   follow_up: str | None = None, quantity: int = 1, note: str = "",
                   now: dt.datetime | None = None) -> OfferImpression:
    """Record what the customer said to an offer; accepted ones may open an order or a task.

    Recording the same outcome twice changes nothing; a different outcome
    replaces the earlier one (a mis-click) and the counts move with it.

    :raises OfferNotFoundError: for an unknown impression.
    :raises SalesError: for an unknown outcome or a follow-up on a non-accepted offer.
    """
    now = now or utcnow()
    if outcome not in {o.value for o in Outcome}:
        raise SalesError("outcome must be accepted, declined or not_relevant")
    if follow_up is not None and follow_up not in {k.value for k in FollowUpKind}:
        raise SalesError("follow_up must be order or task")
    if follow_up is not None and outcome != Outcome.ACCEPTED:
        raise SalesError("only an accepted offer creates an order or a task")
    if not 1 <= quantity <= 1000:
        raise SalesError("quantity must be between 1 and 1000")
    impression = session.get(OfferImpression, impression_id)
    if impression is None:
        raise OfferNotFoundError("no such offer")
    previous = impression.outcome
    if previous != outcome:
        for tier in {"", impression.tier}:
            if previous is not None:
                _bump(session, impression.stat_key, tier, previous, -1)
            _bump(session, impression.stat_key, tier, outcome, +1)
        impression.outcome = outcome
        impression.outcome_at = now
        impression.outcome_user_id = user.id if user else None
        record_event(session, "sales.offer_outcome",
                     {"impression_id": impression.id, "customer_id": impression.customer_id,
                      "product_id": impression.product_id, "outcome": outcome},
                     [room("customer", impression.customer_id)])
    if follow_up is not None:
        _follow_up(session, impression, follow_up, quantity, note, user, now)
    session.flush()
    return impression


def _follow_up(session: Session, impression: OfferImpression, kind: str, quantity: int,
               note: str, user: User | None, now: dt.datetime) -> SalesFollowUp:
    existing = session.scalars(select(SalesFollowUp).where(
        SalesFollowUp.impression_id == impression.id)).first()
    if existing is not None:
        return existing
    product = session.get(Product, impression.product_id)
    amount = None
    if kind == FollowUpKind.ORDER and product is not None:
        amount = product.price * quantity
        if impression.contract_id is not None:
            from contactcenter.customers.models import Contract

            contract = session.get(Contract, impression.contract_id)
            if contract is not None and contract.value is not None:
                amount = contract.value * quantity
    row = SalesFollowUp(
        kind=kind, impression_id=impression.id, customer_id=impression.customer_id,
        product_id=impression.product_id, quantity=quantity, amount=amount,
        currency=product.currency if product else "USD", note=note[:1000],
        status="new" if kind == FollowUpKind.ORDER else "open",
        due_at=now + dt.timedelta(days=1) if kind == FollowUpKind.TASK else None,
        created_by_user_id=user.id if user else None)
    session.add(row)
    return row


def customer_value(session: Session, customer_id: int, user: User | None,
                   channel: str = "api") -> dict[str, Any]:
    """Return a customer's value summary masked by role; an unmasked view is audited.

    :raises OfferNotFoundError: when the customer does not exist.
    """
    customer = resolve_customer(session, customer_id)
    if customer is None:
        raise OfferNotFoundError("no such customer")
    unmasked = can(user, Permission.FINANCIAL_VIEW)
    if unmasked:
        audit(session, user.id if user else None, "financial.view", "customer_value",
              customer.id, "value and revenue", channel=channel)
    return value_summary(customer, unmasked)


__all__ = ["customer_value", "offers_for_customer", "rank_for_customer", "record_outcome",
           "resolve_customer", "value_summary"]
