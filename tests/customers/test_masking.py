"""Financial fields are masked at serialisation by role, and every unmasked view is audited."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AuditLog, User
from contactcenter.accounts.service import create_user
from contactcenter.customers.models import Contract, Customer, Organisation, Product, Purchase
from contactcenter.customers.serialize import (
    serialize_customer,
    serialize_customer_brief,
    serialize_identity_list,
)
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.serialize import serialize_ticket, serialize_ticket_brief
from tests.factories import make_contact, make_customer, seq

FINANCIAL_KEYS = {"lifetime_value", "balance", "purchases", "contracts", "amount", "value",
                  "price", "margin", "masked"}


def user(session: Session, *roles: str, financial: bool = False, active: bool = True) -> User:
    account = create_user(session, f"u{seq()}@example.test", "Test", None, roles,
                          financial_access=financial)
    account.is_active = active
    session.flush()
    return account


@pytest.fixture
def customer(session: Session) -> Customer:
    org = Organisation(name="Romashka LLC")
    product = Product(sku=f"SKU-{seq()}", name="Router", price=Decimal("99.00"),
                      margin=Decimal("0.3100"))
    session.add_all([org, product])
    c = make_customer(session, "Anna Petrova", email="anna@example.com", organisation=org,
                      lifetime_value=Decimal("12345.67"), balance=Decimal("-12.50"),
                      value_tier="gold")
    session.add_all([
        Purchase(external_id=f"P-{seq()}", customer_id=c.id, product_id=product.id, quantity=2,
                 amount=Decimal("198.00"),
                 purchased_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)),
        Purchase(external_id=f"P-{seq()}", customer_id=c.id, product_id=product.id,
                 amount=Decimal("99.00"), purchased_at=dt.datetime(2026, 2, 5, tzinfo=dt.UTC)),
        Contract(external_id=f"K-{seq()}", customer_id=c.id, product_id=product.id,
                 level="gold", starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31),
                 response_minutes=60, value=Decimal("1200.00")),
    ])
    session.commit()
    return c


def audit_rows(session: Session, action: str | None = "financial.view") -> list[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.id)
    if action is not None:
        query = query.where(AuditLog.action == action)
    return list(session.scalars(query))


def all_keys(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        keys = set(obj)
        for value in obj.values():
            keys |= all_keys(value)
        return keys
    if isinstance(obj, list):
        return set().union(*(all_keys(v) for v in obj)) if obj else set()
    return set()


def test_agent_sees_masked_figures_and_no_audit_row(session: Session, customer: Customer) -> None:
    agent = user(session, "agent")
    session.commit()
    before = len(audit_rows(session, None))  # creating the user is audited

    data = serialize_customer(session, customer, agent)

    assert data["masked"] is True
    assert data["lifetime_value"] is None
    assert data["balance"] is None
    assert len(data["purchases"]) == 2
    assert [p["amount"] for p in data["purchases"]] == [None, None]
    assert len(data["contracts"]) == 1
    assert data["contracts"][0]["value"] is None
    # What is not financial is still there.
    assert [p["product"] for p in data["purchases"]] == ["Router", "Router"]
    assert [p["quantity"] for p in data["purchases"]] == [1, 2]  # newest first
    assert data["contracts"][0]["level"] == "gold"
    assert data["contracts"][0]["response_minutes"] == 60
    assert data["value_tier"] == "gold"
    # Nowhere in the document is a figure left.
    text = json.dumps(data)
    for figure in ("12345.67", "12.50", "198.00", "99.00", "1200.00", "0.31"):
        assert figure not in text
    session.commit()
    assert len(audit_rows(session, None)) == before
    assert audit_rows(session) == []


def test_inactive_supervisor_is_masked(session: Session, customer: Customer) -> None:
    former = user(session, "supervisor", active=False)
    data = serialize_customer(session, customer, former)
    assert data["masked"] is True and data["lifetime_value"] is None
    session.commit()
    assert audit_rows(session) == []


@pytest.mark.parametrize(("roles", "financial"), [
    pytest.param(("supervisor",), False, id="supervisor"),
    pytest.param(("admin",), False, id="admin"),
    pytest.param(("agent",), True, id="agent-with-financial-access"),
])
def test_privileged_viewers_see_figures_and_are_audited(
        session: Session, customer: Customer, roles: tuple[str, ...], financial: bool) -> None:
    viewer = user(session, *roles, financial=financial)
    session.commit()

    data = serialize_customer(session, customer, viewer, channel="desk")

    assert data["masked"] is False
    assert data["lifetime_value"] == "12345.67"
    assert data["balance"] == "-12.50"
    assert [p["amount"] for p in data["purchases"]] == ["99.00", "198.00"]
    assert [c["value"] for c in data["contracts"]] == ["1200.00"]
    session.commit()
    rows = audit_rows(session)
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor_user_id, row.action, row.object_type, row.object_id, row.channel) == (
        viewer.id, "financial.view", "customer", str(customer.id), "desk")
    assert row.at is not None


def test_each_unmasked_view_is_audited(session: Session, customer: Customer) -> None:
    supervisor = user(session, "supervisor")
    serialize_customer(session, customer, supervisor)
    serialize_customer(session, customer, supervisor)
    session.commit()
    assert session.scalar(select(func.count()).select_from(AuditLog)
                          .where(AuditLog.action == "financial.view")) == 2


def test_audit_row_is_part_of_the_callers_transaction(session: Session,
                                                      customer: Customer) -> None:
    supervisor = user(session, "supervisor")
    session.commit()
    serialize_customer(session, customer, supervisor)
    session.rollback()
    assert audit_rows(session) == []


def test_brief_serialisers_never_carry_financial_fields(session: Session, customer: Customer,
                                                        settings: Any) -> None:
    brief = serialize_customer_brief(customer)
    assert FINANCIAL_KEYS.isdisjoint(all_keys(brief))
    assert brief["organisation"] == {"id": customer.organisation_id, "name": "Romashka LLC"}
    assert FINANCIAL_KEYS.isdisjoint(all_keys(serialize_identity_list(customer)))

    result = ingest_inbound(session, make_contact(sender="anna@example.com"), settings=settings)
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None
    full = serialize_ticket(session, ticket)
    assert FINANCIAL_KEYS.isdisjoint(all_keys(full["customer"]))
    assert FINANCIAL_KEYS.isdisjoint(all_keys(serialize_ticket_brief(ticket)))
    text = json.dumps(full, default=str)
    for figure in ("12345.67", "12.50", "1200.00"):
        assert figure not in text
    session.commit()
    assert audit_rows(session) == []
