"""Gather what offer ranking needs for one customer, with a few indexed queries.

``customer_facts`` reads ownership, opt-out, complaints, breached deadlines and
recent declines; ``candidates_for`` reads the marketing relations and approved
rules triggered by what the customer owns, and the contracts due for renewal;
``stats_for`` reads the outcome counts of those candidates. Nothing here
decides: ``contactcenter.sales.ranking`` does.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from contactcenter.customers.models import Contract, Customer, Product, Purchase
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.models import (
    AssociationRule,
    OfferImpression,
    OfferRelation,
    OfferSource,
    OfferStat,
    Outcome,
    RelationKind,
    RuleState,
)
from contactcenter.sales.ranking import Candidate, Counts, CustomerFacts
from contactcenter.tickets.models import OPEN_STATUSES, Ticket

ZERO = Decimal("0")


# Statements are built once with bind parameters: building a select costs more than
# running these indexed look-ups, and ranking runs on every screen the agent opens.
_OWNED = (
    select(Product.id, Product.plan_family, Product.plan_rank)
    .where(Product.id.in_(
        select(Purchase.product_id).where(Purchase.customer_id == bindparam("cid"))
        .union(select(Contract.product_id).where(
            Contract.customer_id == bindparam("cid"), Contract.product_id.is_not(None),
            Contract.starts_on <= bindparam("today"), Contract.ends_on >= bindparam("today"))))))


def owned_products(session: Session, customer_id: int, today: dt.date
                   ) -> tuple[set[int], dict[str, int]]:
    """Return the products the customer bought or holds an active contract for, and plans.

    Plans map each plan family to the highest rank the customer owns.
    """
    owned: set[int] = set()
    plans: dict[str, int] = {}
    for pid, family, rank in session.execute(_OWNED, {"cid": customer_id, "today": today}):
        owned.add(pid)
        if family is not None and rank is not None:
            plans[family] = max(plans.get(family, rank), rank)
    return owned, plans


@lru_cache(maxsize=8)
def _complaint_statement(keywords: tuple[str, ...], priorities: tuple[str, ...]) -> Any:
    marks = [func.lower(Ticket.subject).contains(k, autoescape=True) for k in keywords]
    if priorities:
        marks.append(Ticket.priority.in_(priorities))
    if not marks:
        return None
    return select(exists().where(Ticket.customer_id == bindparam("cid"),
                                 Ticket.status.in_(OPEN_STATUSES), or_(*marks)))


def has_open_complaint(session: Session, customer_id: int, config: SalesConfig) -> bool:
    """Whether the customer has an open ticket that reads as a complaint.

    A complaint is an open ticket whose subject contains one of the configured
    keywords (case-insensitive) or whose priority is one of the configured
    priorities (``CONTACTCENTER_SALES_COMPLAINT_KEYWORDS`` / ``_PRIORITIES``).
    """
    statement = _complaint_statement(config.complaint_keywords, config.complaint_priorities)
    if statement is None:
        return False
    return bool(session.scalar(statement, {"cid": customer_id}))


@lru_cache(maxsize=1)
def _breach_statement() -> Any:
    from contactcenter.routing.models import ItemState, RoutingItem
    from contactcenter.sla.models import SlaClock

    now = bindparam("now", type_=RoutingItem.due_at.type)
    waiting = exists().where(
        RoutingItem.customer_id == bindparam("cid"),
        RoutingItem.state.in_((ItemState.WAITING.value, ItemState.OFFERED.value)),
        RoutingItem.due_at.is_not(None), RoutingItem.due_at < now)
    clock = exists().where(
        SlaClock.ticket_id == Ticket.id, SlaClock.met_at.is_(None),
        or_(SlaClock.breached_at.is_not(None),
            (SlaClock.due_at.is_not(None)) & (SlaClock.due_at < now)))
    ticket = exists().where(Ticket.customer_id == bindparam("cid"),
                            Ticket.status.in_(OPEN_STATUSES), clock)
    return select(or_(waiting, ticket))


def has_breached_sla(session: Session, customer_id: int, now: dt.datetime) -> bool:
    """Whether the customer is waiting past a service deadline.

    Two sources: an SLA clock on one of their open tickets that breached (or
    is due and unmet), and a routing item still waiting or offered past its
    due instant (calls and chats have no ticket clock).
    """
    return bool(session.scalar(_breach_statement(), {"cid": customer_id, "now": now}))


_DECLINED = (
    select(OfferImpression.product_id).where(
        OfferImpression.customer_id == bindparam("cid"),
        OfferImpression.outcome.in_((Outcome.DECLINED.value, Outcome.NOT_RELEVANT.value)),
        OfferImpression.outcome_at >= bindparam("since", type_=OfferImpression.outcome_at.type))
    .distinct())


def recently_declined(session: Session, customer_id: int, now: dt.datetime,
                      days: int) -> set[int]:
    """Return products the customer declined or called not relevant in the last ``days``."""
    if days <= 0:
        return set()
    return set(session.scalars(_DECLINED, {"cid": customer_id,
                                           "since": now - dt.timedelta(days=days)}))


def customer_facts(session: Session, customer: Customer, now: dt.datetime,
                   config: SalesConfig) -> CustomerFacts:
    """Read everything eligibility needs about one customer."""
    if customer.marketing_opt_out:
        return CustomerFacts(customer_id=customer.id, tier=customer.value_tier, opted_out=True)
    owned, plans = owned_products(session, customer.id, now.date())
    return CustomerFacts(
        customer_id=customer.id, tier=customer.value_tier, opted_out=False,
        open_complaint=(config.exclude_open_complaint
                        and has_open_complaint(session, customer.id, config)),
        breached_sla=(config.exclude_breached_sla
                      and has_breached_sla(session, customer.id, now)),
        owned=frozenset(owned), owned_plans=plans,
        recently_declined=frozenset(recently_declined(session, customer.id, now,
                                                      config.decline_cooldown_days)))


_SOURCE = aliased(Product)
_TARGET_COLUMNS = (Product.id, Product.name, Product.price, Product.margin, Product.plan_family,
                   Product.plan_rank, Product.sellable, Product.pitch)
_RELATIONS = (
    select(OfferRelation.id, OfferRelation.kind, OfferRelation.script, _SOURCE.name,
           *_TARGET_COLUMNS)
    .join(Product, Product.id == OfferRelation.target_product_id)
    .join(_SOURCE, _SOURCE.id == OfferRelation.source_product_id)
    .where(OfferRelation.source_product_id.in_(bindparam("owned", expanding=True)),
           OfferRelation.active.is_(True)))
_RULES = (
    select(AssociationRule.id, AssociationRule.confidence, AssociationRule.lift,
           AssociationRule.script, _SOURCE.name, *_TARGET_COLUMNS)
    .join(Product, Product.id == AssociationRule.consequent_product_id)
    .join(_SOURCE, _SOURCE.id == AssociationRule.antecedent_product_id)
    .where(AssociationRule.antecedent_product_id.in_(bindparam("owned", expanding=True)),
           AssociationRule.state == RuleState.APPROVED.value))


def _candidate(row: Any, source: str, prior: float, script: str, reason: str,
               **ids: int | None) -> Candidate:
    pid, name, price, margin, family, rank, sellable, _pitch = row[-8:]
    return Candidate(
        product_id=pid, product_name=name, source=source, stat_key=f"product:{pid}",
        price=price if price is not None else ZERO,
        margin=margin if margin is not None else ZERO, prior_mean=prior, script=script,
        reason=reason, plan_family=family, plan_rank=rank, sellable=bool(sellable), **ids)


def candidates_for(session: Session, facts: CustomerFacts, now: dt.datetime,
                   config: SalesConfig) -> list[Candidate]:
    """Return every candidate offer: relations and approved rules from owned products, renewals."""
    out: list[Candidate] = []
    owned = sorted(facts.owned)
    if owned:
        for row in session.execute(_RELATIONS, {"owned": owned}):
            rel_id, kind, rel_script, source_name = row[:4]
            name, pitch = row[5], row[11]
            if kind == RelationKind.UP_SELL:
                script = rel_script or (f"As you have {source_name}, you could move up to "
                                        f"{name}. {pitch}")
                reason = f"Upgrade from {source_name} (marketing up-sell)"
            else:
                script = rel_script or (f"Customers with {source_name} often add "
                                        f"{name}. {pitch}")
                reason = f"Pairs with {source_name} (marketing cross-sell)"
            out.append(_candidate(row, OfferSource.RELATION, config.prior_acceptance,
                                  script.strip(), reason, relation_id=rel_id))
        for row in session.execute(_RULES, {"owned": owned}):
            rule_id, confidence, lift, rule_script, source_name = row[:5]
            name, pitch = row[6], row[12]
            script = rule_script or (f"Many customers who have {source_name} also chose "
                                     f"{name}. {pitch}")
            reason = f"Bought by {confidence:.0%} of {source_name} buyers (lift {lift:.1f})"
            out.append(_candidate(row, OfferSource.RULE, confidence, script.strip(), reason,
                                  rule_id=rule_id))
    out.extend(renewal_candidates(session, facts.customer_id, now.date(), config))
    return out


def renewal_candidates(session: Session, customer_id: int, today: dt.date,
                       config: SalesConfig) -> list[Candidate]:
    """Return renewals of contracts ending soon or lapsed lately and not renewed since.

    A customer holds a handful of contracts: they are read with one indexed
    query and the windows are applied here (a contract counts as renewed when
    another one of the same level ends later).
    """
    rows = session.execute(_CONTRACTS, {"cid": customer_id}).all()
    latest: dict[str, dt.date] = {}
    for row in rows:
        level, ends_on = row[1], row[2]
        if ends_on > latest.get(level, dt.date.min):
            latest[level] = ends_on
    first_day = today - dt.timedelta(days=config.renewal_after_days)
    last_day = today + dt.timedelta(days=config.renewal_before_days)
    out: list[Candidate] = []
    for contract_id, level, ends_on, value, *product in rows:
        pid, name, price, margin, family, rank, sellable, _pitch = product
        if pid is None:
            continue  # a renewal needs a product to order; contracts without one are skipped
        if not first_day <= ends_on <= last_day or latest[level] > ends_on:
            continue
        days = (ends_on - today).days
        when = (f"ends in {days} day{'s' if days != 1 else ''}" if days > 0 else
                "ends today" if days == 0 else
                f"lapsed {-days} day{'s' if days != -1 else ''} ago")
        out.append(Candidate(
            product_id=pid, product_name=name, source=OfferSource.RENEWAL,
            stat_key=f"renewal:{pid}",
            price=value if value is not None else (price or ZERO),
            margin=margin if margin is not None else Decimal(str(config.renewal_margin)),
            prior_mean=config.renewal_prior,
            script=(f"Your {level} contract {when}; I can renew it for you now "
                    "so your cover continues without a gap."),
            reason=f"{level} contract {when}", plan_family=family, plan_rank=rank,
            sellable=bool(sellable), contract_id=contract_id))
    return out


_CONTRACTS = (
    select(Contract.id, Contract.level, Contract.ends_on, Contract.value, *_TARGET_COLUMNS)
    .outerjoin(Product, Product.id == Contract.product_id)
    .where(Contract.customer_id == bindparam("cid")))
_STATS = select(OfferStat).where(OfferStat.key.in_(bindparam("keys", expanding=True)),
                                 OfferStat.tier.in_(bindparam("tiers", expanding=True)))


def stats_for(session: Session, keys: set[str], tier: str | None
              ) -> dict[tuple[str, str], Counts]:
    """Return the outcome counts of some offer keys, overall and in one tier."""
    if not keys:
        return {}
    tiers = ["", tier] if tier else [""]
    return {(s.key, s.tier): Counts(s.accepted, s.declined, s.not_relevant)
            for s in session.scalars(_STATS, {"keys": sorted(keys), "tiers": tiers})}
