"""Small builders for the sales tests: products, purchases, contracts at fixed instants."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract, Customer, Product, Purchase
from tests.factories import make_customer, seq

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def product(session: Session, name: str, price: str = "100.00", margin: str | None = "0.5",
            **fields: Any) -> Product:
    p = Product(sku=f"SKU-{seq()}", name=name, price=Decimal(price),
                margin=Decimal(margin) if margin is not None else None, **fields)
    session.add(p)
    session.flush()
    return p


def buy(session: Session, customer: Customer, prod: Product, amount: str | None = None,
        when: dt.datetime | None = None) -> Purchase:
    row = Purchase(external_id=f"P-{seq()}", customer_id=customer.id, product_id=prod.id,
                   amount=Decimal(amount) if amount is not None else prod.price,
                   purchased_at=when or days_ago(10))
    session.add(row)
    session.flush()
    return row


def contract(session: Session, customer: Customer, prod: Product | None, starts: dt.date,
             ends: dt.date, value: str | None = "300.00", level: str = "Gold") -> Contract:
    row = Contract(external_id=f"K-{seq()}", customer_id=customer.id,
                   product_id=prod.id if prod else None, level=level, starts_on=starts,
                   ends_on=ends, value=Decimal(value) if value is not None else None)
    session.add(row)
    session.flush()
    return row


def customer(session: Session, name: str = "Anna", **fields: Any) -> Customer:
    return make_customer(session, name, **fields)
