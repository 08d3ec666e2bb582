"""Association rules: support, confidence and lift against figures computed by hand."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Product
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.mining import (
    basket_counts_python,
    basket_counts_sql,
    count_baskets,
    mine_rules,
    rule_metrics,
    rules_from_counts,
)
from contactcenter.sales.models import AssociationRule, RuleState
from tests.sales.helpers import NOW, buy, customer, product

# Five customers' product sets. N = 5; n(1) = 4, n(2) = 4, n(3) = 2;
# n(1,2) = 3, n(1,3) = 2, n(2,3) = 1.
BASKETS = [[1, 2], [1, 2, 3, 1], [1, 3], [2], [1, 2]]
LOOSE = SalesConfig(rule_min_support=0.0, rule_min_confidence=0.0, rule_min_lift=0.0,
                    rule_min_count=1)


def test_counts_dedupe_products_within_a_basket() -> None:
    counts = count_baskets(BASKETS)
    assert counts.baskets == 5
    assert dict(counts.items) == {1: 4, 2: 4, 3: 2}
    assert dict(counts.pairs) == {(1, 2): 3, (1, 3): 2, (2, 3): 1}


@pytest.mark.parametrize(("a", "c", "support", "confidence", "lift"), [
    (1, 2, 3 / 5, 3 / 4, (3 / 4) / (4 / 5)),   # 0.6, 0.75, 0.9375
    (2, 1, 3 / 5, 3 / 4, (3 / 4) / (4 / 5)),
    (3, 1, 2 / 5, 2 / 2, 1 / (4 / 5)),          # 0.4, 1.0, 1.25
    (1, 3, 2 / 5, 2 / 4, (2 / 4) / (2 / 5)),    # 0.4, 0.5, 1.25
    (2, 3, 1 / 5, 1 / 4, (1 / 4) / (2 / 5)),    # 0.2, 0.25, 0.625
    (3, 2, 1 / 5, 1 / 2, (1 / 2) / (4 / 5)),    # 0.2, 0.5, 0.625
])
def test_rule_metrics_match_hand_figures(a: int, c: int, support: float, confidence: float,
                                         lift: float) -> None:
    m = rule_metrics(count_baskets(BASKETS), a, c)
    assert m.support == pytest.approx(support)
    assert m.confidence == pytest.approx(confidence)
    assert m.lift == pytest.approx(lift)


def test_thresholds_select_rules_best_lift_first() -> None:
    counts = count_baskets(BASKETS)
    config = SalesConfig(rule_min_support=0.3, rule_min_confidence=0.5, rule_min_lift=1.2,
                         rule_min_count=2)
    found = [(m.antecedent, m.consequent) for m in rules_from_counts(counts, config)]
    assert found == [(3, 1), (1, 3)]            # lift 1.25; confidence 1.0 before 0.5
    assert len(rules_from_counts(counts, LOOSE)) == 6
    strict = SalesConfig(rule_min_support=0.0, rule_min_confidence=0.0, rule_min_lift=0.0,
                         rule_min_count=3)
    assert {(m.antecedent, m.consequent) for m in rules_from_counts(counts, strict)} == {
        (1, 2), (2, 1)}


def _load_baskets(session: Session) -> dict[int, int]:
    ids = {n: product(session, f"P{n}").id for n in (1, 2, 3)}
    for basket in BASKETS:
        who = customer(session)
        for n in basket:
            buy(session, who, _product(session, ids[n]))
    session.commit()
    return ids


def _product(session: Session, pid: int) -> Product:
    found = session.get(Product, pid)
    assert found is not None
    return found


def test_sql_and_python_counting_agree(session: Session) -> None:
    ids = _load_baskets(session)
    by_sql, by_python = basket_counts_sql(session), basket_counts_python(session)
    assert by_sql.baskets == by_python.baskets == 5
    assert dict(by_sql.items) == dict(by_python.items) == {ids[1]: 4, ids[2]: 4, ids[3]: 2}
    assert dict(by_sql.pairs) == dict(by_python.pairs)
    assert by_sql.pairs[(ids[1], ids[2])] == 3


@pytest.mark.parametrize("method", ["sql", "python"])
def test_mining_proposes_then_keeps_marketing_decisions(session: Session, method: str) -> None:
    ids = _load_baskets(session)
    config = SalesConfig(rule_min_support=0.3, rule_min_confidence=0.5, rule_min_lift=1.2,
                         rule_min_count=2)
    result = mine_rules(session, NOW, config, method=method)
    session.commit()
    assert (result.baskets, result.created) == (5, 2)
    rules = {(r.antecedent_product_id, r.consequent_product_id): r
             for r in session.scalars(select(AssociationRule))}
    rule = rules[(ids[3], ids[1])]
    assert rule.state == RuleState.PROPOSED
    assert (rule.support, rule.confidence, rule.lift, rule.pair_count) == (0.4, 1.0, 1.25, 2)
    rule.state = RuleState.APPROVED
    rules[(ids[1], ids[3])].state = RuleState.REJECTED
    session.commit()
    again = mine_rules(session, NOW, config, method=method)
    session.commit()
    assert (again.created, again.updated, again.dropped) == (0, 2, 0)
    states = {r.state for r in session.scalars(select(AssociationRule))}
    assert states == {RuleState.APPROVED, RuleState.REJECTED}
    # A stricter run drops proposed rules that no longer pass, never decided ones.
    stricter = SalesConfig(rule_min_support=0.9, rule_min_confidence=0.9, rule_min_lift=9,
                           rule_min_count=2)
    mine_rules(session, NOW, stricter, method=method)
    session.commit()
    assert len(list(session.scalars(select(AssociationRule)))) == 2
