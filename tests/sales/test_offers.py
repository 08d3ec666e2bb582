"""Which offers a customer gets: every eligibility rule, renewals, ranking and feedback."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.routing.models import ItemState, RoutingItem
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.marketing import create_relation, decide_rule
from contactcenter.sales.models import (
    AssociationRule,
    OfferImpression,
    OfferSource,
    RelationKind,
    SalesFollowUp,
)
from contactcenter.sales.ranking import Counts, acceptance_probability
from contactcenter.sales.service import offers_for_customer, record_outcome
from contactcenter.tickets.models import Ticket
from tests.factories import make_queue, make_user, seq
from tests.sales.helpers import NOW, buy, contract, customer, days_ago, product

CFG = SalesConfig()


def names(session: Session, cust: Any, config: SalesConfig = CFG, user: Any = None,
          now: dt.datetime = NOW, limit: int = 10) -> list[str]:
    return [o["product"]["name"] for o in
            offers_for_customer(session, cust.id, user, limit=limit, now=now, config=config)]


@pytest.fixture
def shop(session: Session) -> dict[str, Any]:
    """A router that pairs with a mesh kit and a care plan; basic plan upgrades to pro."""
    p = {n: product(session, n, price, margin) for n, price, margin in (
        ("Router", "100.00", "0.30"), ("Mesh kit", "200.00", "0.40"),
        ("Care plan", "60.00", "0.90"))}
    p["Basic"] = product(session, "Basic", "10.00", "0.5", plan_family="net", plan_rank=1)
    p["Pro"] = product(session, "Pro", "30.00", "0.6", plan_family="net", plan_rank=2)
    p["Max"] = product(session, "Max", "50.00", "0.6", plan_family="net", plan_rank=3)
    create_relation(session, RelationKind.CROSS_SELL, p["Router"].id, p["Mesh kit"].id)
    create_relation(session, RelationKind.CROSS_SELL, p["Router"].id, p["Care plan"].id,
                    "Would you like our care plan for the router?")
    create_relation(session, RelationKind.UP_SELL, p["Basic"].id, p["Pro"].id)
    session.commit()
    return p


def test_cross_sell_ranked_by_expected_value_with_script_and_reason(
        session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Router"])
    session.commit()
    offers = offers_for_customer(session, anna.id, None, limit=3, now=NOW, config=CFG)
    # Prior 10%: mesh 200 * 0.4 * 0.1 = 8.00, care 60 * 0.9 * 0.1 = 5.40.
    assert [o["product"]["name"] for o in offers] == ["Mesh kit", "Care plan"]
    assert offers[0]["probability"] == pytest.approx(0.1)
    assert offers[0]["reason"] == "Pairs with Router (marketing cross-sell)"
    assert offers[0]["script"].startswith("Customers with Router often add Mesh kit")
    assert offers[1]["script"] == "Would you like our care plan for the router?"
    assert all(o["masked"] and o["expected_value"] is None for o in offers)


def test_already_owned_product_is_not_offered(session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Router"])
    buy(session, anna, shop["Mesh kit"])
    session.commit()
    assert names(session, anna) == ["Care plan"]


def test_active_contract_counts_as_owning(session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Router"])
    contract(session, anna, shop["Care plan"], dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    session.commit()
    assert names(session, anna) == ["Mesh kit"]


def test_up_sell_skipped_when_a_higher_plan_is_owned(session: Session,
                                                     shop: dict[str, Any]) -> None:
    anna, boris = customer(session), customer(session)
    buy(session, anna, shop["Basic"])
    buy(session, boris, shop["Basic"], when=days_ago(300))
    buy(session, boris, shop["Max"])
    session.commit()
    offers = offers_for_customer(session, anna.id, None, now=NOW, config=CFG)
    assert [o["product"]["name"] for o in offers] == ["Pro"]
    assert offers[0]["reason"] == "Upgrade from Basic (marketing up-sell)"
    assert names(session, boris) == []


def test_marketing_opt_out_gets_nothing(session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session, marketing_opt_out=True)
    buy(session, anna, shop["Router"])
    session.commit()
    assert names(session, anna) == []


def _ticket(session: Session, cust: Any, subject: str, priority: str = "normal",
            status: str = "open") -> Ticket:
    t = Ticket(number=seq() + 100000, subject=subject, channel="email", customer_id=cust.id,
               reply_token=f"tok{seq()}", priority=priority, status=status)
    session.add(t)
    session.flush()
    return t


def test_open_complaint_blocks_offers_and_is_configurable(session: Session,
                                                          shop: dict[str, Any]) -> None:
    anna, boris, carl = customer(session), customer(session), customer(session)
    for c in (anna, boris, carl):
        buy(session, c, shop["Router"])
    _ticket(session, anna, "Formal COMPLAINT about billing")
    _ticket(session, boris, "Router down", priority="urgent")
    _ticket(session, carl, "I want a refund", status="closed")   # closed: not open
    session.commit()
    assert names(session, anna) == []
    assert names(session, boris) == []
    assert names(session, carl) == ["Mesh kit", "Care plan"]
    off = SalesConfig(exclude_open_complaint=False)
    assert names(session, anna, off) == ["Mesh kit", "Care plan"]
    keywords_only = SalesConfig(complaint_priorities=())
    assert names(session, boris, keywords_only) == ["Mesh kit", "Care plan"]


def test_breached_service_deadline_blocks_offers(session: Session,
                                                 shop: dict[str, Any]) -> None:
    anna, boris = customer(session), customer(session)
    queue = make_queue(session)
    for c, due in ((anna, NOW - dt.timedelta(minutes=5)), (boris, NOW + dt.timedelta(hours=1))):
        buy(session, c, shop["Router"])
        session.add(RoutingItem(kind="call", channel="voice", queue_id=queue.id,
                                customer_id=c.id, state=ItemState.WAITING, priority=0,
                                priority_reason="", manual_priority="normal", due_at=due,
                                enqueued_at=NOW - dt.timedelta(hours=1),
                                rules_since=NOW - dt.timedelta(hours=1)))
    session.commit()
    assert names(session, anna) == []
    assert names(session, boris) == ["Mesh kit", "Care plan"]
    assert names(session, anna, SalesConfig(exclude_breached_sla=False)) == [
        "Mesh kit", "Care plan"]


def test_declined_offer_rests_for_the_cooldown(session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Router"])
    session.commit()
    offers = offers_for_customer(session, anna.id, None, now=NOW, config=CFG)
    record_outcome(session, offers[0]["id"], "declined", None, now=NOW)
    record_outcome(session, offers[1]["id"], "not_relevant", None, now=NOW)
    session.commit()
    assert names(session, anna, now=NOW + dt.timedelta(days=29)) == []
    assert names(session, anna, now=NOW + dt.timedelta(days=31)) == ["Mesh kit", "Care plan"]


def test_unsellable_product_is_not_offered(session: Session, shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Router"])
    shop["Mesh kit"].sellable = False
    session.commit()
    assert names(session, anna) == ["Care plan"]


def test_renewal_offered_before_expiry_and_after_lapse_only_in_windows(
        session: Session, shop: dict[str, Any]) -> None:
    today = NOW.date()
    soon, lapsed, far, old, renewed = (customer(session) for _ in range(5))
    care = shop["Care plan"]
    contract(session, soon, care, today - dt.timedelta(days=300), today + dt.timedelta(days=10))
    contract(session, lapsed, care, today - dt.timedelta(days=400),
             today - dt.timedelta(days=20), value="500.00")
    contract(session, far, care, today, today + dt.timedelta(days=200))
    contract(session, old, care, today - dt.timedelta(days=500), today - dt.timedelta(days=90))
    contract(session, renewed, care, today - dt.timedelta(days=300), today + dt.timedelta(days=5))
    contract(session, renewed, care, today + dt.timedelta(days=6), today + dt.timedelta(days=371))
    session.commit()
    offer = offers_for_customer(session, soon.id, None, now=NOW, config=CFG)
    assert [(o["product"]["name"], o["source"]) for o in offer] == [("Care plan", "renewal")]
    assert offer[0]["reason"] == "Gold contract ends in 10 days"
    assert offer[0]["probability"] == pytest.approx(0.4)
    gone = offers_for_customer(session, lapsed.id, None, now=NOW, config=CFG)
    assert gone[0]["reason"] == "Gold contract lapsed 20 days ago"
    assert names(session, far) == []
    assert names(session, old) == []
    assert names(session, renewed) == []


def test_approved_rules_only_with_confidence_as_prior(session: Session,
                                                      shop: dict[str, Any]) -> None:
    anna = customer(session)
    buy(session, anna, shop["Pro"])
    rule = AssociationRule(antecedent_product_id=shop["Pro"].id,
                           consequent_product_id=shop["Router"].id, pair_count=30,
                           antecedent_count=60, consequent_count=80, baskets=400, support=0.075,
                           confidence=0.5, lift=2.5)
    session.add(rule)
    session.commit()
    assert names(session, anna) == []                     # proposed: not used
    decide_rule(session, rule.id, True, None)
    session.commit()
    offers = offers_for_customer(session, anna.id, None, now=NOW, config=CFG)
    assert [o["product"]["name"] for o in offers] == ["Router"]
    assert offers[0]["probability"] == pytest.approx(0.5)
    assert offers[0]["reason"] == "Bought by 50% of Pro buyers (lift 2.5)"


def test_acceptance_estimate_is_beta_smoothed_in_two_levels() -> None:
    # Prior 0.1 with strength 20: 2 pseudo-accepts in 20.
    assert acceptance_probability(0.1, 20, None, None) == pytest.approx(0.1)
    # 8 accepted of 20: (8 + 2) / (20 + 20) = 0.25.
    overall = Counts(accepted=8, declined=10, not_relevant=2)
    assert acceptance_probability(0.1, 20, overall, None) == pytest.approx(0.25)
    # In the tier, 0.25 is the prior: (5 + 5) / (5 + 20) = 0.4.
    assert acceptance_probability(0.1, 20, overall, Counts(accepted=5)) == pytest.approx(0.4)


def test_outcomes_feed_back_into_the_ranking(session: Session, shop: dict[str, Any]) -> None:
    agent = make_user(session, "agent")
    buyers = [customer(session, f"Buyer {i}") for i in range(12)]
    for c in buyers:
        buy(session, c, shop["Router"])
    session.commit()
    assert names(session, buyers[0], user=agent)[0] == "Mesh kit"
    # Ten customers decline the mesh kit and accept the care plan.
    for c in buyers[1:11]:
        offers = {o["product"]["name"]: o["id"] for o in
                  offers_for_customer(session, c.id, agent, now=NOW, config=CFG)}
        record_outcome(session, offers["Mesh kit"], "declined", agent, now=NOW)
        record_outcome(session, offers["Care plan"], "accepted", agent, now=NOW)
    session.commit()
    # Mesh: 80 * (0 + 2) / (10 + 20) = 5.33; care: 54 * (10 + 2) / 30 = 21.60.
    ranked = offers_for_customer(session, buyers[11].id, agent, now=NOW, config=CFG)
    assert [o["product"]["name"] for o in ranked] == ["Care plan", "Mesh kit"]
    assert ranked[0]["probability"] == pytest.approx(12 / 30)


def test_outcome_is_idempotent_correctable_and_creates_follow_ups(
        session: Session, shop: dict[str, Any]) -> None:
    from contactcenter.sales.models import OfferStat

    agent = make_user(session, "agent")
    anna = customer(session, value_tier="A")
    buy(session, anna, shop["Router"])
    session.commit()
    first = offers_for_customer(session, anna.id, agent, now=NOW, config=CFG)
    again = offers_for_customer(session, anna.id, agent, now=NOW + dt.timedelta(minutes=5),
                                config=CFG)
    assert [o["id"] for o in first] == [o["id"] for o in again]     # reload: same impressions
    mesh = first[0]["id"]
    record_outcome(session, mesh, "declined", agent, now=NOW)
    record_outcome(session, mesh, "accepted", agent, follow_up="order", quantity=2, now=NOW)
    record_outcome(session, mesh, "accepted", agent, follow_up="order", quantity=2, now=NOW)
    session.commit()
    stats = {(s.key, s.tier): (s.accepted, s.declined) for s in session.scalars(
        select(OfferStat))}
    key = f"product:{shop['Mesh kit'].id}"
    assert stats[(key, "")] == (1, 0) and stats[(key, "A")] == (1, 0)
    orders = list(session.scalars(select(SalesFollowUp)))
    assert [(o.kind, o.quantity, o.amount) for o in orders] == [("order", 2, Decimal("400.00"))]
    record_outcome(session, first[1]["id"], "accepted", agent, follow_up="task",
                   note="Call back about the care plan", now=NOW)
    session.commit()
    task = session.scalars(select(SalesFollowUp).where(SalesFollowUp.kind == "task")).one()
    assert task.due_at == NOW + dt.timedelta(days=1) and task.status == "open"
    imp = session.get(OfferImpression, mesh)
    assert imp is not None and imp.source == OfferSource.RELATION and imp.tier == "A"


def test_outcome_input_is_validated(session: Session, shop: dict[str, Any]) -> None:
    from contactcenter.sales.errors import OfferNotFoundError, SalesError

    anna = customer(session)
    buy(session, anna, shop["Router"])
    session.commit()
    offer = offers_for_customer(session, anna.id, None, now=NOW, config=CFG)[0]
    with pytest.raises(SalesError):
        record_outcome(session, offer["id"], "maybe", None)
    with pytest.raises(SalesError):
        record_outcome(session, offer["id"], "declined", None, follow_up="order")
    with pytest.raises(SalesError):
        record_outcome(session, offer["id"], "accepted", None, follow_up="order", quantity=0)
    with pytest.raises(OfferNotFoundError):
        record_outcome(session, 999999, "accepted", None)
    with pytest.raises(SalesError):
        offers_for_customer(session, anna.id, None, channel="<script>", config=CFG)
