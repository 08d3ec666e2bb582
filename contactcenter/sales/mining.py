"""Mine association rules "bought X, also bought Y" from purchase history.

A *basket* is the set of distinct products one customer ever bought (customers,
not orders: a contact center sells to people over time, not to a till
receipt). Over ``N`` baskets, for products X and Y:

- ``support(X -> Y) = n(X and Y) / N``: how common the pair is;
- ``confidence(X -> Y) = n(X and Y) / n(X)``: how often X's buyers have Y;
- ``lift(X -> Y) = confidence / (n(Y) / N)``: how much more often than chance.

Counting runs in one of two ways with the same result: in SQL (a self-join of
the distinct customer-product pairs, grouped by product pair) or in Python (a
``Counter`` over each basket's sorted product pairs, streaming the distinct
pairs ordered by customer). ``benchmarks/offers.py`` measures both; SQL is the
default because it moves no rows to Python.

Rules that pass the thresholds land as ``proposed``; marketing approves or
rejects them, and mining again updates their figures without touching that
decision. Proposed rules that no longer pass are dropped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations, groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from contactcenter.customers.models import Purchase
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.models import AssociationRule, RuleState


@dataclass(frozen=True)
class BasketCounts:
    """Everything rule metrics need: baskets, per-product and per-pair customer counts."""

    baskets: int
    items: Mapping[int, int]
    pairs: Mapping[tuple[int, int], int]


@dataclass(frozen=True)
class RuleMetrics:
    """One directed rule's figures."""

    antecedent: int
    consequent: int
    pair_count: int
    antecedent_count: int
    consequent_count: int
    baskets: int
    support: float
    confidence: float
    lift: float


def count_baskets(baskets: Iterable[Iterable[int]]) -> BasketCounts:
    """Count baskets, products and unordered product pairs (``(low, high)`` keys)."""
    n = 0
    items: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    for basket in baskets:
        products = sorted(set(basket))
        if not products:
            continue
        n += 1
        items.update(products)
        pairs.update(combinations(products, 2))
    return BasketCounts(n, items, pairs)


def rule_metrics(counts: BasketCounts, antecedent: int, consequent: int) -> RuleMetrics:
    """Return the figures of ``antecedent -> consequent``."""
    key = (antecedent, consequent) if antecedent < consequent else (consequent, antecedent)
    both = counts.pairs.get(key, 0)
    n_a = counts.items.get(antecedent, 0)
    n_c = counts.items.get(consequent, 0)
    n = counts.baskets
    support = both / n if n else 0.0
    confidence = both / n_a if n_a else 0.0
    lift = confidence / (n_c / n) if n and n_c else 0.0
    return RuleMetrics(antecedent, consequent, both, n_a, n_c, n, support, confidence, lift)


def rules_from_counts(counts: BasketCounts, config: SalesConfig) -> list[RuleMetrics]:
    """Return both directions of every pair that passes the thresholds, best lift first."""
    out: list[RuleMetrics] = []
    n = counts.baskets
    if not n:
        return out
    for (low, high), both in counts.pairs.items():
        if both < config.rule_min_count or both / n < config.rule_min_support:
            continue
        for a, c in ((low, high), (high, low)):
            m = rule_metrics(counts, a, c)
            if m.confidence >= config.rule_min_confidence and m.lift >= config.rule_min_lift:
                out.append(m)
    out.sort(key=lambda m: (-m.lift, -m.confidence, m.antecedent, m.consequent))
    return out


def _distinct_pairs() -> Any:
    return (select(Purchase.customer_id, Purchase.product_id).distinct()
            .subquery("baskets"))


def basket_counts_sql(session: Session, min_pair_count: int = 1) -> BasketCounts:
    """Count in the database: pairs by a self-join of distinct customer-product rows."""
    b = _distinct_pairs()
    n = session.scalar(select(func.count(func.distinct(Purchase.customer_id)))) or 0
    items = {pid: cnt for pid, cnt in session.execute(
        select(b.c.product_id, func.count()).group_by(b.c.product_id))}
    x, y = aliased(b), aliased(b)
    pairs = {(a, c): cnt for a, c, cnt in session.execute(
        select(x.c.product_id, y.c.product_id, func.count())
        .join(y, (x.c.customer_id == y.c.customer_id) & (x.c.product_id < y.c.product_id))
        .group_by(x.c.product_id, y.c.product_id)
        .having(func.count() >= min_pair_count))}
    return BasketCounts(int(n), items, pairs)


def basket_counts_python(session: Session) -> BasketCounts:
    """Count in Python: stream distinct pairs ordered by customer into a ``Counter``."""
    rows = session.execute(
        select(Purchase.customer_id, Purchase.product_id).distinct()
        .order_by(Purchase.customer_id).execution_options(yield_per=20_000))
    baskets = ((pid for _cid, pid in group) for _key, group in groupby(rows, key=itemgetter(0)))
    return count_baskets(baskets)


@dataclass(frozen=True)
class MiningResult:
    """What one mining run found and changed."""

    baskets: int
    candidates: int
    created: int
    updated: int
    dropped: int


def mine_rules(session: Session, now: dt.datetime, config: SalesConfig | None = None,
               method: str = "sql") -> MiningResult:
    """Mine rules and store them: new ones proposed, decided ones updated (caller commits)."""
    config = config or SalesConfig()
    if method == "sql":
        counts = basket_counts_sql(session, config.rule_min_count)
    elif method == "python":
        counts = basket_counts_python(session)
    else:
        raise ValueError(f"unknown mining method {method!r}")
    found = rules_from_counts(counts, config)
    existing = {(r.antecedent_product_id, r.consequent_product_id): r
                for r in session.scalars(select(AssociationRule))}
    created = updated = 0
    proposed = 0
    keep: set[tuple[int, int]] = set()
    for m in found:
        key = (m.antecedent, m.consequent)
        rule = existing.get(key)
        if rule is None:
            if proposed >= config.rule_max_proposed:
                continue
            rule = AssociationRule(antecedent_product_id=m.antecedent,
                                   consequent_product_id=m.consequent,
                                   state=RuleState.PROPOSED)
            session.add(rule)
            created += 1
        else:
            updated += 1
        if rule.state == RuleState.PROPOSED:
            proposed += 1
        _apply(rule, m, now)
        keep.add(key)
    stale = [r.id for key, r in existing.items()
             if key not in keep and r.state == RuleState.PROPOSED]
    for key, rule in existing.items():
        # Decided rules keep their decision; refresh figures that the counts still know.
        pair = (min(key), max(key))
        if key not in keep and rule.state != RuleState.PROPOSED and pair in counts.pairs:
            _apply(rule, rule_metrics(counts, *key), now)
    if stale:
        session.execute(delete(AssociationRule).where(AssociationRule.id.in_(stale)))
    session.flush()
    return MiningResult(counts.baskets, len(found), created, updated, len(stale))


def _apply(rule: AssociationRule, m: RuleMetrics, now: dt.datetime) -> None:
    rule.pair_count = m.pair_count
    rule.antecedent_count = m.antecedent_count
    rule.consequent_count = m.consequent_count
    rule.baskets = m.baskets
    rule.support = round(m.support, 6)
    rule.confidence = round(m.confidence, 6)
    rule.lift = round(m.lift, 6)
    rule.mined_at = now
