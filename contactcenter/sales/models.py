"""Models of the sales package: offer relations, mined rules, impressions, stats, follow-ups.

An *offer* is a product put in front of one customer for a reason: a relation
marketing maintains (cross-sell "X pairs with Y", up-sell "plan A upgrades to
B"), an association rule mined from purchase history and approved by
marketing, or the renewal of a contract that expires soon or lapsed. Each time
an agent (or the shop through the API) is shown an offer an ``OfferImpression``
is written; its outcome (accepted, declined, not relevant) is recorded on the
same row, and ``OfferStat`` keeps the running counts the acceptance estimate
reads, so that ranking never scans the impression history.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow

MONEY = Numeric(14, 2)


class RelationKind(StrEnum):
    """How marketing relates two products."""

    CROSS_SELL = "cross_sell"
    UP_SELL = "up_sell"


class RuleState(StrEnum):
    """Where a mined association rule is in marketing's review."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class OfferSource(StrEnum):
    """Why a product was offered."""

    RELATION = "relation"
    RULE = "rule"
    RENEWAL = "renewal"


class Outcome(StrEnum):
    """What the customer said to an offer."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_RELEVANT = "not_relevant"


class FollowUpKind(StrEnum):
    """What an accepted offer creates for sales."""

    ORDER = "order"
    TASK = "task"


class OfferRelation(TimestampMixin, Base):
    """A cross-sell or up-sell pairing maintained by marketing (source owned, target offered)."""

    __tablename__ = "offer_relations"
    __table_args__ = (
        UniqueConstraint("kind", "source_product_id", "target_product_id",
                         name="uq_offer_relations_kind_source_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True)
    target_product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True)
    script: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class AssociationRule(TimestampMixin, Base):
    """A rule "customers who bought X also bought Y" mined from purchase baskets.

    Metrics are over customers' product sets: ``support`` is the share of
    customers who bought both, ``confidence`` the share of X's buyers who bought
    Y, ``lift`` the confidence over Y's share of all customers. Only ``approved``
    rules produce offers.
    """

    __tablename__ = "association_rules"
    __table_args__ = (
        UniqueConstraint("antecedent_product_id", "consequent_product_id",
                         name="uq_association_rules_antecedent_consequent"),
        Index("ix_association_rules_state_lift", "state", "lift"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    antecedent_product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True)
    consequent_product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"))
    pair_count: Mapped[int]
    antecedent_count: Mapped[int]
    consequent_count: Mapped[int]
    baskets: Mapped[int]
    support: Mapped[float]
    confidence: Mapped[float]
    lift: Mapped[float]
    state: Mapped[str] = mapped_column(String(16), default=RuleState.PROPOSED)
    script: Mapped[str] = mapped_column(String(300), default="")
    mined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]
    decided_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class OfferImpression(Base):
    """One offer shown to one customer, and the outcome the agent recorded for it."""

    __tablename__ = "offer_impressions"
    __table_args__ = (
        Index("ix_offer_impressions_customer", "customer_id", "product_id", "shown_at"),
        Index("ix_offer_impressions_outcome", "customer_id", "outcome", "outcome_at"),
        Index("ix_offer_impressions_shown_at", "shown_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("offer_relations.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("association_rules.id", ondelete="SET NULL"))
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"))
    stat_key: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    channel: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(8), default="")
    probability: Mapped[float]
    expected_value: Mapped[Decimal] = mapped_column(MONEY)
    script: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(String(300), default="")
    shown_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_at: Mapped[dt.datetime | None]
    outcome_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class OfferStat(Base):
    """Running outcome counts per offer key and tier (``""`` is every tier).

    The key is ``product:<id>`` for cross-sell, up-sell and rule offers and
    ``renewal:<id>`` for renewals, which convert very differently.
    """

    __tablename__ = "offer_stats"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    tier: Mapped[str] = mapped_column(String(8), primary_key=True)
    accepted: Mapped[int] = mapped_column(default=0)
    declined: Mapped[int] = mapped_column(default=0)
    not_relevant: Mapped[int] = mapped_column(default=0)


class SalesFollowUp(TimestampMixin, Base):
    """An order record or a follow-up task for sales, created from an accepted offer."""

    __tablename__ = "sales_follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    impression_id: Mapped[int] = mapped_column(
        ForeignKey("offer_impressions.id", ondelete="CASCADE"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    note: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[dt.datetime | None]
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
