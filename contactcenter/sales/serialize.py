"""Turn offers, customer value, rules and relations into JSON, masking financial fields.

Expected values, margins, prices, revenue and lifetime value are financial
data: a caller without ``financial.view`` gets ``null`` for each and
``"masked": true``. Masking happens here and only here; callers that return
unmasked data write the audit row (see ``service``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contactcenter.customers.models import Customer
from contactcenter.sales.models import AssociationRule, OfferImpression, OfferRelation
from contactcenter.sales.ranking import RankedOffer


def money(value: Decimal | None) -> str | None:
    """Format an amount with two decimals (None stays None)."""
    return None if value is None else f"{value:.2f}"


def serialize_offer(impression: OfferImpression, offer: RankedOffer, unmasked: bool
                    ) -> dict[str, Any]:
    """Return one ranked offer as the desk and the API show it."""
    c = offer.candidate
    return {
        "id": impression.id,
        "product": {"id": c.product_id, "name": c.product_name},
        "source": c.source,
        "script": c.script,
        "reason": c.reason,
        "probability": round(offer.probability, 4),
        "masked": not unmasked,
        "expected_value": money(offer.expected_value) if unmasked else None,
        "margin": money(c.margin_amount) if unmasked else None,
        "price": money(c.price) if unmasked else None,
        "outcome": impression.outcome,
    }


def value_summary(customer: Customer, unmasked: bool) -> dict[str, Any]:
    """Return a customer's value: tier and reason for everyone, amounts only when unmasked."""
    return {
        "customer_id": customer.id,
        "tier": customer.value_tier,
        "reason": customer.value_reason,
        "purchase_frequency": (f"{customer.purchase_frequency:.2f}"
                               if customer.purchase_frequency is not None else None),
        "last_purchase_at": (customer.last_purchase_at.isoformat()
                             if customer.last_purchase_at else None),
        "marketing_opt_out": customer.marketing_opt_out,
        "computed_at": (customer.value_computed_at.isoformat()
                        if customer.value_computed_at else None),
        "masked": not unmasked,
        "lifetime_value": money(customer.lifetime_value) if unmasked else None,
        "revenue_short": money(customer.revenue_short) if unmasked else None,
        "revenue_long": money(customer.revenue_long) if unmasked else None,
        "revenue_total": money(customer.revenue_total) if unmasked else None,
    }


def serialize_rule(rule: AssociationRule, names: dict[int, str]) -> dict[str, Any]:
    """Return a mined rule (its figures are counts and ratios, not money)."""
    return {
        "id": rule.id, "state": rule.state,
        "antecedent": {"id": rule.antecedent_product_id,
                       "name": names.get(rule.antecedent_product_id, "")},
        "consequent": {"id": rule.consequent_product_id,
                       "name": names.get(rule.consequent_product_id, "")},
        "support": round(rule.support, 4), "confidence": round(rule.confidence, 4),
        "lift": round(rule.lift, 3), "pair_count": rule.pair_count,
        "baskets": rule.baskets, "script": rule.script,
        "mined_at": rule.mined_at.isoformat(),
        "decided_at": rule.decided_at.isoformat() if rule.decided_at else None,
    }


def serialize_relation(rel: OfferRelation, names: dict[int, str]) -> dict[str, Any]:
    """Return a marketing relation."""
    return {
        "id": rel.id, "kind": rel.kind, "active": rel.active, "script": rel.script,
        "source": {"id": rel.source_product_id, "name": names.get(rel.source_product_id, "")},
        "target": {"id": rel.target_product_id, "name": names.get(rel.target_product_id, "")},
    }
