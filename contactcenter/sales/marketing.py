"""Marketing's side: offer relations, the review of mined rules, and the conversion report.

Relations ("X pairs with Y", "plan A upgrades to B") and rule decisions are
edited by users holding ``supervise`` (supervisors and administrators act as
marketing here). The conversion report counts impressions and outcomes; it
holds no money, so it needs no masking.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.customers.models import Product
from contactcenter.db import utcnow
from contactcenter.sales.errors import OfferNotFoundError, SalesError
from contactcenter.sales.models import (
    AssociationRule,
    OfferImpression,
    OfferRelation,
    Outcome,
    RelationKind,
    RuleState,
)
from contactcenter.sales.serialize import serialize_relation, serialize_rule

DIMENSIONS = ("offer", "product", "agent", "channel", "tier", "source")
MAX_SCRIPT = 300


def product_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Return product names by id."""
    if not ids:
        return {}
    rows = session.execute(select(Product.id, Product.name).where(Product.id.in_(ids)))
    return {pid: name for pid, name in rows}


def list_relations(session: Session) -> list[dict[str, Any]]:
    """Return every relation, newest first."""
    rels = list(session.scalars(select(OfferRelation).order_by(OfferRelation.id.desc())))
    names = product_names(session, {r.source_product_id for r in rels}
                          | {r.target_product_id for r in rels})
    return [serialize_relation(r, names) for r in rels]


def create_relation(session: Session, kind: str, source_id: int, target_id: int,
                    script: str = "", user: User | None = None) -> OfferRelation:
    """Create (or reactivate) a cross-sell or up-sell relation between two products."""
    if kind not in {k.value for k in RelationKind}:
        raise SalesError("kind must be cross_sell or up_sell")
    if source_id == target_id:
        raise SalesError("a product cannot be offered with itself")
    if len(script) > MAX_SCRIPT:
        raise SalesError(f"the script is longer than {MAX_SCRIPT} characters")
    for pid in (source_id, target_id):
        if session.get(Product, pid) is None:
            raise OfferNotFoundError(f"no product {pid}")
    rel = session.scalars(select(OfferRelation).where(
        OfferRelation.kind == kind, OfferRelation.source_product_id == source_id,
        OfferRelation.target_product_id == target_id)).first()
    if rel is None:
        rel = OfferRelation(kind=kind, source_product_id=source_id, target_product_id=target_id,
                            created_by_user_id=user.id if user else None)
        session.add(rel)
    rel.script = script.strip()
    rel.active = True
    session.flush()
    return rel


def set_relation_active(session: Session, relation_id: int, active: bool) -> OfferRelation:
    """Switch a relation on or off (off keeps its history in the report)."""
    rel = session.get(OfferRelation, relation_id)
    if rel is None:
        raise OfferNotFoundError("no such relation")
    rel.active = active
    session.flush()
    return rel


def list_rules(session: Session, state: str | None = None, limit: int = 200
               ) -> list[dict[str, Any]]:
    """Return mined rules, best lift first (optionally in one state)."""
    query = select(AssociationRule)
    if state is not None:
        if state not in {s.value for s in RuleState}:
            raise SalesError("unknown rule state")
        query = query.where(AssociationRule.state == state)
    rules = list(session.scalars(query.order_by(AssociationRule.lift.desc(),
                                                AssociationRule.id).limit(limit)))
    names = product_names(session, {r.antecedent_product_id for r in rules}
                          | {r.consequent_product_id for r in rules})
    return [serialize_rule(r, names) for r in rules]


def decide_rule(session: Session, rule_id: int, approve: bool, user: User | None,
                script: str | None = None, now: dt.datetime | None = None) -> AssociationRule:
    """Approve (offers may use it) or reject a mined rule, optionally with a script."""
    rule = session.get(AssociationRule, rule_id)
    if rule is None:
        raise OfferNotFoundError("no such rule")
    if script is not None:
        if len(script) > MAX_SCRIPT:
            raise SalesError(f"the script is longer than {MAX_SCRIPT} characters")
        rule.script = script.strip()
    rule.state = RuleState.APPROVED if approve else RuleState.REJECTED
    rule.decided_at = now or utcnow()
    rule.decided_by_user_id = user.id if user else None
    session.flush()
    return rule


def conversion_report(session: Session, by: str, since: dt.datetime | None = None,
                      until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Count offers shown, accepted, declined and not relevant, grouped by one dimension."""
    if by not in DIMENSIONS:
        raise SalesError(f"by must be one of {', '.join(DIMENSIONS)}")
    i = OfferImpression
    keys: list[Any] = {
        "offer": [i.source, i.relation_id, i.rule_id, i.product_id],
        "product": [i.product_id],
        "agent": [i.user_id],
        "channel": [i.channel],
        "tier": [i.tier],
        "source": [i.source],
    }[by]
    counts = [func.count(), *(func.sum(case((i.outcome == o.value, 1), else_=0))
                              for o in Outcome)]
    query = select(*keys, *counts).group_by(*keys)
    if since is not None:
        query = query.where(i.shown_at >= since)
    if until is not None:
        query = query.where(i.shown_at < until)
    rows = session.execute(query).all()
    n = len(keys)
    names = product_names(session, {r[n - 1] for r in rows if r[n - 1] is not None}
                          if by in ("offer", "product") else set())
    users: dict[int, str] = {}
    if by == "agent":
        ids = {r[0] for r in rows if r[0] is not None}
        if ids:
            rows = session.execute(select(User.id, User.name).where(User.id.in_(ids)))
            users = {uid: name for uid, name in rows}
    out = []
    for row in rows:
        shown, accepted, declined, not_relevant = (int(v or 0) for v in row[n:])
        out.append({"key": _label(by, row[:n], names, users), "shown": shown,
                    "accepted": accepted, "declined": declined, "not_relevant": not_relevant,
                    "conversion": round(accepted / shown, 4) if shown else 0.0})
    out.sort(key=lambda r: (-r["shown"], r["key"]))
    return out


def _label(by: str, key: tuple[Any, ...], names: dict[int, str], users: dict[int, str]) -> str:
    if by == "offer":
        source, relation_id, rule_id, product_id = key
        ref = (f" #{relation_id}" if relation_id else f" #{rule_id}" if rule_id else "")
        return f"{source}{ref}: {names.get(product_id, product_id)}"
    if by == "product":
        return str(names.get(key[0], key[0]))
    if by == "agent":
        return users.get(key[0], "API / shop") if key[0] is not None else "API / shop"
    if by == "tier":
        return key[0] or "(none)"
    return str(key[0])
