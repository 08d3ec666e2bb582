"""``seed_demo(session)``: a small catalogue with margins, relations and purchase history.

Called by the demo data set. Idempotent: products are matched on their SKU
and nothing is added twice. Customer values are recomputed and rules mined at
the end, so the desk shows tiers and offers straight away (one mined rule is
approved so that the demo shows each kind of offer).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract, Customer, Product, Purchase
from contactcenter.customers.value import recompute_values
from contactcenter.db import utcnow
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.marketing import create_relation
from contactcenter.sales.mining import mine_rules
from contactcenter.sales.models import AssociationRule, RelationKind, RuleState

CATALOGUE = [  # sku, name, category, price, margin, family, rank, pitch
    ("RT-100", "Home router", "hardware", "89.00", "0.25", None, None,
     "Fast Wi-Fi for a flat."),
    ("MESH-3", "Mesh Wi-Fi kit", "hardware", "199.00", "0.35", None, None,
     "Covers every room with one network."),
    ("CARE-1", "Device care plan", "service", "59.00", "0.80", None, None,
     "Replacement within two days if it breaks."),
    ("NET-S", "Internet Start", "plan", "25.00", "0.55", "internet", 1, ""),
    ("NET-P", "Internet Plus", "plan", "39.00", "0.60", "internet", 2,
     "Twice the speed for a little more."),
    ("NET-M", "Internet Max", "plan", "59.00", "0.62", "internet", 3,
     "Our fastest plan, with priority support."),
    ("TV-1", "TV package", "plan", "19.00", "0.50", None, None, "120 channels."),
    ("SEC-1", "Security suite", "software", "49.00", "0.85", None, None,
     "Protects five devices."),
]


def seed_demo(session: Session, customers: list[Customer] | None = None,
              seed: int = 7) -> None:
    """Add the demo catalogue, relations, purchases for some customers; score and mine."""
    products: dict[str, Product] = {}
    for sku, name, category, price, margin, family, rank, pitch in CATALOGUE:
        product = session.scalars(select(Product).where(Product.sku == sku)).first()
        if product is None:
            product = Product(sku=sku, name=name, category=category, price=Decimal(price),
                              margin=Decimal(margin), plan_family=family, plan_rank=rank,
                              pitch=pitch)
            session.add(product)
        products[sku] = product
    session.flush()
    for kind, src, dst in ((RelationKind.CROSS_SELL, "RT-100", "MESH-3"),
                           (RelationKind.CROSS_SELL, "RT-100", "CARE-1"),
                           (RelationKind.CROSS_SELL, "MESH-3", "CARE-1"),
                           (RelationKind.UP_SELL, "NET-S", "NET-P"),
                           (RelationKind.UP_SELL, "NET-P", "NET-M")):
        create_relation(session, kind, products[src].id, products[dst].id)
    people = customers if customers is not None else list(
        session.scalars(select(Customer).where(Customer.merged_into_id.is_(None))
                        .order_by(Customer.id).limit(40)))
    now = utcnow()
    rng = random.Random(seed)
    bundles = [["NET-S", "RT-100"], ["NET-P", "RT-100", "SEC-1"], ["NET-S", "TV-1"],
               ["NET-P", "RT-100", "MESH-3"], ["NET-M", "MESH-3", "SEC-1", "TV-1"]]
    for person in people:
        if session.scalars(select(Purchase.id).where(Purchase.customer_id == person.id)
                           .limit(1)).first() is not None:
            continue
        for sku in rng.choice(bundles):
            product = products[sku]
            quantity = 1 + (rng.random() < 0.2)
            session.add(Purchase(
                external_id=f"demo-{person.id}-{sku}", customer_id=person.id,
                product_id=product.id, quantity=quantity, amount=product.price * quantity,
                purchased_at=now - dt.timedelta(days=rng.randint(1, 500))))
        if rng.random() < 0.3:
            today = now.date()
            ends = today + dt.timedelta(days=rng.randint(-40, 200))
            session.add(Contract(
                external_id=f"demo-care-{person.id}", customer_id=person.id,
                product_id=products["CARE-1"].id, level=rng.choice(["Gold", "Silver"]),
                starts_on=ends - dt.timedelta(days=365), ends_on=ends, response_minutes=240,
                value=Decimal("240.00")))
    session.flush()
    recompute_values(session, now)
    mine_rules(session, now, SalesConfig(rule_min_support=0.02, rule_min_count=2))
    best = session.scalars(select(AssociationRule).where(
        AssociationRule.state == RuleState.PROPOSED)
        .order_by(AssociationRule.lift.desc()).limit(1)).first()
    if best is not None:
        best.state = RuleState.APPROVED
        best.decided_at = now
    session.flush()
