"""Choose which offers to show one customer: eligibility, acceptance estimate, expected value.

Everything here is pure: the store gathers the customer's facts and the
candidate offers, and these functions decide.

**Eligibility.** No offer at all to a customer who opted out of marketing, who
has an open complaint, or who has an open item past its service deadline
(the last two switchable). A candidate product is dropped when the customer
already owns it, owns a plan of the same family at the same or a higher rank,
declined it (or called it not relevant) within the cool-down, or when it is
not sellable. Renewal offers are for a contract the customer holds, so owning
its product does not exclude them.

**Acceptance probability.** A two-level Beta-Binomial estimate. The offer's
prior mean ``m`` is the marketing prior for relations, the renewal prior for
renewals and the rule's confidence for mined rules, with a strength of ``k``
pseudo-offers (``Beta(m*k, (1-m)*k)``). The offer's recorded outcomes across
all tiers update it: ``p_all = (accepted + m*k) / (decided + k)``. Within the
customer's tier that estimate is the prior for the tier's own outcomes:
``p = (accepted_tier + p_all*k) / (decided_tier + k)``. "Not relevant" counts
as not accepted. Few outcomes barely move the prior; many outcomes dominate it.

**Expected value** is ``p * margin``, where the margin is ``price * margin
fraction`` (the contract's value for a renewal, with the configured renewal
margin when its product has none). Offers are ranked by expected value, then
by probability; each product appears once (its best reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from contactcenter.sales.config import SalesConfig
from contactcenter.sales.models import OfferSource

CENT = Decimal("0.01")
SOURCE_ORDER = {OfferSource.RENEWAL: 0, OfferSource.RELATION: 1, OfferSource.RULE: 2}


@dataclass(frozen=True)
class Candidate:
    """A product that could be offered, with why and the numbers to weigh it."""

    product_id: int
    product_name: str
    source: str
    stat_key: str
    price: Decimal
    margin: Decimal
    prior_mean: float
    script: str
    reason: str
    plan_family: str | None = None
    plan_rank: int | None = None
    sellable: bool = True
    relation_id: int | None = None
    rule_id: int | None = None
    contract_id: int | None = None

    @property
    def margin_amount(self) -> Decimal:
        """What the company earns if the customer accepts."""
        return (self.price * self.margin).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class CustomerFacts:
    """What eligibility needs to know about the customer on the screen."""

    customer_id: int
    tier: str | None = None
    opted_out: bool = False
    open_complaint: bool = False
    breached_sla: bool = False
    owned: frozenset[int] = frozenset()
    owned_plans: Mapping[str, int] = field(default_factory=dict)
    recently_declined: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Counts:
    """Recorded outcomes of one offer key (in one tier or all)."""

    accepted: int = 0
    declined: int = 0
    not_relevant: int = 0

    @property
    def decided(self) -> int:
        """Offers with any outcome."""
        return self.accepted + self.declined + self.not_relevant


@dataclass(frozen=True)
class RankedOffer:
    """An eligible candidate with its estimate."""

    candidate: Candidate
    probability: float
    expected_value: Decimal


@dataclass(frozen=True)
class Ranking:
    """The ranked offers, what was excluded and why, or why nobody gets offers."""

    offers: list[RankedOffer]
    excluded: list[tuple[Candidate, str]]
    blocked: str | None = None


def customer_block(facts: CustomerFacts, config: SalesConfig) -> str | None:
    """Return why the customer gets no offers at all, or None."""
    if facts.opted_out:
        return "customer opted out of marketing"
    if config.exclude_open_complaint and facts.open_complaint:
        return "customer has an open complaint"
    if config.exclude_breached_sla and facts.breached_sla:
        return "customer has a breached service deadline"
    return None


def candidate_exclusion(candidate: Candidate, facts: CustomerFacts) -> str | None:
    """Return why this candidate may not be offered to this customer, or None."""
    if not candidate.sellable:
        return "product not sellable"
    if candidate.product_id in facts.recently_declined:
        return "declined recently"
    if candidate.source == OfferSource.RENEWAL:
        return None
    if candidate.product_id in facts.owned:
        return "already owned"
    if candidate.plan_family and candidate.plan_rank is not None:
        held = facts.owned_plans.get(candidate.plan_family)
        if held is not None and held >= candidate.plan_rank:
            return "owns the same or a higher plan"
    return None


def acceptance_probability(prior_mean: float, strength: float, overall: Counts | None,
                           in_tier: Counts | None) -> float:
    """Return the two-level Beta-smoothed acceptance estimate (see the module doc)."""
    m = min(max(prior_mean, 0.0), 1.0)
    k = max(strength, 1e-9)
    p = m
    if overall is not None:
        p = (overall.accepted + m * k) / (overall.decided + k)
    if in_tier is not None:
        p = (in_tier.accepted + p * k) / (in_tier.decided + k)
    return p


def rank_offers(candidates: Iterable[Candidate], facts: CustomerFacts,
                stats: Mapping[tuple[str, str], Counts], config: SalesConfig,
                limit: int | None = None) -> Ranking:
    """Rank the eligible candidates by expected value (``stats`` keyed by (key, tier))."""
    blocked = customer_block(facts, config)
    if blocked is not None:
        return Ranking([], [], blocked)
    excluded: list[tuple[Candidate, str]] = []
    best: dict[int, RankedOffer] = {}
    tier = facts.tier or ""
    for c in candidates:
        why = candidate_exclusion(c, facts)
        if why is not None:
            excluded.append((c, why))
            continue
        p = acceptance_probability(c.prior_mean, config.prior_strength,
                                   stats.get((c.stat_key, "")),
                                   stats.get((c.stat_key, tier)) if tier else None)
        ev = (c.margin_amount * Decimal(str(round(p, 6)))).quantize(CENT, ROUND_HALF_UP)
        offer = RankedOffer(c, p, ev)
        held = best.get(c.product_id)
        if held is None or _key(offer) < _key(held):
            best[c.product_id] = offer
    ranked = sorted(best.values(), key=_key)
    return Ranking(ranked[:limit] if limit is not None else ranked, excluded)


def _key(offer: RankedOffer) -> tuple[Decimal, float, int, int]:
    return (-offer.expected_value, -offer.probability,
            SOURCE_ORDER.get(OfferSource(offer.candidate.source), 9), offer.candidate.product_id)
