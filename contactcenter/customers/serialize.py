"""Turn customers and their records into JSON, masking financial fields by role.

Masking happens here, once per object type, never in templates: a caller
without ``financial.view`` gets ``null`` for every amount and ``"masked": true``;
a caller with it gets the figures, and the view is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.audit import audit
from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can
from contactcenter.customers.models import Contract, Customer, Purchase

MASK = None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def serialize_identity_list(customer: Customer) -> list[dict[str, Any]]:
    """Return a customer's identities (with ids, which the panel's remove buttons name)."""
    return [{"id": i.id, "kind": i.kind, "address": i.address, "verified": i.verified}
            for i in customer.identities]


def serialize_customer_brief(customer: Customer) -> dict[str, Any]:
    """Return the fields every agent may see (no financial data)."""
    return {
        "id": customer.id,
        "name": customer.name,
        "language": customer.language,
        "external_id": customer.external_id,
        "organisation": ({"id": customer.organisation.id, "name": customer.organisation.name}
                         if customer.organisation else None),
        "value_tier": customer.value_tier,
        # The tier's one-line reason never holds an amount (customers/value.py).
        "value_reason": customer.value_reason,
        "identities": serialize_identity_list(customer),
    }


def serialize_purchase(p: Purchase, unmasked: bool) -> dict[str, Any]:
    """Return a purchase; its amount only when unmasked."""
    return {"id": p.id, "external_id": p.external_id, "sku": p.product.sku,
            "product": p.product.name, "quantity": p.quantity,
            "amount": _money(p.amount) if unmasked else MASK,
            "currency": p.currency, "purchased_at": p.purchased_at.isoformat()}


def serialize_contract(c: Contract, unmasked: bool, today: dt.date | None = None
                       ) -> dict[str, Any]:
    """Return a contract; its value only when unmasked."""
    today = today or dt.date.today()
    return {"id": c.id, "external_id": c.external_id, "level": c.level,
            "starts_on": c.starts_on.isoformat(), "ends_on": c.ends_on.isoformat(),
            "status": c.status_on(today), "response_minutes": c.response_minutes,
            "onsite_minutes": c.onsite_minutes,
            "value": _money(c.value) if unmasked else MASK, "currency": c.currency}


def serialize_customer(session: Session, customer: Customer, user: User, *,
                       channel: str = "api", purchases_limit: int = 50) -> dict[str, Any]:
    """Return a customer with purchases and contracts, masked or audited by the viewer's role."""
    unmasked = can(user, Permission.FINANCIAL_VIEW)
    purchases = list(session.scalars(
        select(Purchase).where(Purchase.customer_id == customer.id)
        .order_by(Purchase.purchased_at.desc()).limit(purchases_limit)))
    contracts = list(session.scalars(
        select(Contract).where(Contract.customer_id == customer.id).order_by(Contract.ends_on)))
    data = serialize_customer_brief(customer)
    data.update({
        "masked": not unmasked,
        "lifetime_value": _money(customer.lifetime_value) if unmasked else MASK,
        "balance": _money(customer.balance) if unmasked else MASK,
        "revenue_short": _money(customer.revenue_short) if unmasked else MASK,
        "revenue_long": _money(customer.revenue_long) if unmasked else MASK,
        "marketing_opt_out": customer.marketing_opt_out,
        "purchases": [serialize_purchase(p, unmasked) for p in purchases],
        "contracts": [serialize_contract(c, unmasked) for c in contracts],
    })
    if unmasked:
        audit(session, user.id, "financial.view", "customer", customer.id,
              f"{len(purchases)} purchases, {len(contracts)} contracts", channel=channel)
    return data
