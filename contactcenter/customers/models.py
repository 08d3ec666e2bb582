"""Customers with many identities, organisations, products, purchases and contracts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contactcenter.db import Base, TimestampMixin, utcnow

MONEY = Numeric(14, 2)


class IdentityKind(StrEnum):
    """The kinds of address a customer can be reached or recognised by."""

    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    EXTERNAL = "external"


class Organisation(TimestampMixin, Base):
    """A company a customer may belong to."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    domain: Mapped[str | None] = mapped_column(String(253))

    customers: Mapped[list[Customer]] = relationship(back_populates="organisation")


class Customer(TimestampMixin, Base):
    """One person, however many addresses and channels they use."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    value_tier: Mapped[str | None] = mapped_column(String(8))
    lifetime_value: Mapped[Decimal | None] = mapped_column(MONEY)
    balance: Mapped[Decimal | None] = mapped_column(MONEY)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Customer value (contactcenter/customers/value.py): recomputed by the job
    # ``sales.recompute_values`` after imports and nightly; windows are settings.
    marketing_opt_out: Mapped[bool] = mapped_column(default=False)
    revenue_short: Mapped[Decimal | None] = mapped_column(MONEY)
    revenue_long: Mapped[Decimal | None] = mapped_column(MONEY)
    revenue_total: Mapped[Decimal | None] = mapped_column(MONEY)
    purchase_frequency: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    last_purchase_at: Mapped[dt.datetime | None]
    value_reason: Mapped[str] = mapped_column(String(300), default="")
    value_computed_at: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation | None] = relationship(back_populates="customers")
    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer", lazy="selectin", order_by="CustomerIdentity.id"
    )

    def address_of(self, kind: IdentityKind) -> str | None:
        """Return the first identity of a kind, or None."""
        for identity in self.identities:
            if identity.kind == kind:
                return identity.address
        return None


class CustomerIdentity(TimestampMixin, Base):
    """An address that identifies exactly one customer (unique by kind and address)."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_customer_identities_kind_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(default=False)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Product(TimestampMixin, Base):
    """A product or plan the company sells."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), default="")
    price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    margin: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Offers (contactcenter/sales): plans of one family are ranked, so a customer who owns
    # a higher plan is never offered a lower one; unsellable products are never offered.
    sellable: Mapped[bool] = mapped_column(default=True)
    plan_family: Mapped[str | None] = mapped_column(String(64))
    plan_rank: Mapped[int | None]
    pitch: Mapped[str] = mapped_column(String(300), default="")


class Purchase(TimestampMixin, Base):
    """One purchase of a product by a customer."""

    __tablename__ = "purchases"
    __table_args__ = (Index("ix_purchases_customer_date", "customer_id", "purchased_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    purchased_at: Mapped[dt.datetime]

    product: Mapped[Product] = relationship(lazy="joined")


class Contract(TimestampMixin, Base):
    """A service contract: coverage level, response commitment, term and value.

    It belongs to a customer or to a whole organisation (at least one is set).
    SLA columns (contactcenter/sla): the coverage calendar, the SLA policy its
    response commitment selects, an allowance of incidents or hours with what
    tickets used of it, the renewal state and the account owner alerted before
    it lapses. Covered products are in ``contract_products`` (sla/models.py).
    """

    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("customer_id IS NOT NULL OR organisation_id IS NOT NULL", name="owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    level: Mapped[str] = mapped_column(String(50))
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date] = mapped_column(index=True)
    response_minutes: Mapped[int | None]
    # Field service: business minutes from a visit's creation to the technician on site;
    # None takes the level's commitment (CONTACTCENTER_FIELD_ONSITE_COMMITMENTS).
    onsite_minutes: Mapped[int | None]
    value: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    sla_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"))
    allowance_kind: Mapped[str | None] = mapped_column(String(16))  # incidents | hours
    allowance_amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    allowance_used: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    renewal_state: Mapped[str] = mapped_column(String(16), default="none")
    account_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    def status_on(self, day: dt.date, expiring_days: int = 30) -> str:
        """Return ``pending``, ``active``, ``expiring`` or ``lapsed`` on a given day."""
        if day < self.starts_on:
            return "pending"
        if day > self.ends_on:
            return "lapsed"
        if (self.ends_on - day).days <= expiring_days:
            return "expiring"
        return "active"


class CustomerMerge(Base):
    """A merge of one customer into another, with what moved, so it can be undone."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    moved: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    merged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[dt.datetime | None]
