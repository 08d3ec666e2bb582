"""Models of the field package: technicians, visits, slot offers, parts, photos, surveys.

Everything dispatch filters on is a plain indexed column: a technician's skills
and service areas are rows (``field_technician_skills``, ``field_technician_areas``)
so that "who has these skills in this area" is an indexed join, and a visit's
technician and window are indexed together so a technician's day is one range
scan. The visit carries its own commitment (``due_at``, computed at creation from
the customer's contract on the contract's calendar) so the sweep never has to
reread contracts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow

MONEY = Numeric(12, 2)


class VisitState(StrEnum):
    """Where a visit is in its life."""

    PENDING = "pending"          # not assigned to a technician yet
    ASSIGNED = "assigned"        # a technician has it in their day
    IN_PROGRESS = "in_progress"  # checked in on site
    COMPLETED = "completed"      # checked out with an outcome
    CANCELLED = "cancelled"


OPEN_STATES = (VisitState.PENDING, VisitState.ASSIGNED, VisitState.IN_PROGRESS)


class Outcome(StrEnum):
    """How a visit ended."""

    FIXED = "fixed"
    ANOTHER_VISIT = "another_visit"
    CUSTOMER_ABSENT = "customer_absent"


class Confirmation(StrEnum):
    """Where the customer is with the visit's time window."""

    NONE = "none"
    OFFERED = "offered"
    CONFIRMED = "confirmed"


class Technician(TimestampMixin, Base):
    """A technician's field profile: working calendar, cost rate and daily limit.

    The user holds the ``technician`` role; ``calendar_id`` is an SLA calendar
    (None: 24x7), read through ``contactcenter.sla.service.calendar_of``.
    """

    __tablename__ = "field_technicians"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    home_area: Mapped[str] = mapped_column(String(64), default="")
    hourly_rate: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    max_visits_per_day: Mapped[int] = mapped_column(default=6)
    active: Mapped[bool] = mapped_column(default=True)


class TechnicianSkill(Base):
    """One skill of a technician (``fiber``, ``router``...)."""

    __tablename__ = "field_technician_skills"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("field_technicians.user_id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TechnicianArea(Base):
    """One service area a technician covers (a postcode prefix, a district...)."""

    __tablename__ = "field_technician_areas"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("field_technicians.user_id", ondelete="CASCADE"), primary_key=True)
    area: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class CustomerSite(TimestampMixin, Base):
    """The customer's site address and service area, the default for their visits."""

    __tablename__ = "field_customer_sites"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             primary_key=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    area: Mapped[str] = mapped_column(String(64), default="")


class Visit(TimestampMixin, Base):
    """One technician visit for a ticket, from creation to outcome and cost."""

    __tablename__ = "field_visits"
    __table_args__ = (
        Index("ix_field_visits_technician_window", "technician_id", "window_start"),
        Index("ix_field_visits_state_due", "state", "due_at"),
        Index("ix_field_visits_state_window", "state", "window_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), index=True)
    follow_up_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("field_visits.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    address: Mapped[str] = mapped_column(String(500))
    area: Mapped[str] = mapped_column(String(64), default="")
    problem: Mapped[str] = mapped_column(Text)
    skills: Mapped[str] = mapped_column(String(500), default="")
    parts_needed: Mapped[str] = mapped_column(String(500), default="")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    duration_minutes: Mapped[int] = mapped_column(default=60)
    state: Mapped[str] = mapped_column(String(16), default=VisitState.PENDING)
    window_start: Mapped[dt.datetime | None]
    window_end: Mapped[dt.datetime | None]
    confirmation: Mapped[str] = mapped_column(String(16), default=Confirmation.NONE)
    confirmed_at: Mapped[dt.datetime | None]
    confirmed_via: Mapped[str | None] = mapped_column(String(16))
    onsite_minutes: Mapped[int | None]
    due_at: Mapped[dt.datetime | None]
    warned_at: Mapped[dt.datetime | None]
    breached_at: Mapped[dt.datetime | None]
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[dt.datetime | None]
    travel_started_at: Mapped[dt.datetime | None]
    checked_in_at: Mapped[dt.datetime | None]
    checked_out_at: Mapped[dt.datetime | None]
    travel_minutes: Mapped[int | None]
    work_minutes: Mapped[int | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    signed_by: Mapped[str] = mapped_column(String(200), default="")
    labour_cost: Mapped[Decimal | None] = mapped_column(MONEY)
    parts_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))

    @property
    def skill_list(self) -> list[str]:
        """Return the required skills as a list."""
        return [s for s in self.skills.split(",") if s]

    @property
    def total_cost(self) -> Decimal:
        """Return labour plus parts."""
        return (self.labour_cost or Decimal(0)) + self.parts_cost


class VisitPart(Base):
    """A part used on a visit, with its cost at the time."""

    __tablename__ = "field_visit_parts"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("field_visits.id", ondelete="CASCADE"),
                                          index=True)
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int] = mapped_column(default=1)
    unit_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VisitPhoto(Base):
    """A photo taken on a visit; the bytes live under their SHA-256 in the data folder."""

    __tablename__ = "field_visit_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("field_visits.id", ondelete="CASCADE"),
                                          index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SlotOffer(Base):
    """Time windows offered to the customer, answered through a signed link."""

    __tablename__ = "field_slot_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("field_visits.id", ondelete="CASCADE"),
                                          index=True)
    nonce: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    chosen_slot_id: Mapped[int | None]


class OfferedSlot(Base):
    """One window of an offer."""

    __tablename__ = "field_offered_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("field_slot_offers.id", ondelete="CASCADE"),
                                          index=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]


class VisitSurvey(Base):
    """The short satisfaction survey after a visit (one per visit, signed link)."""

    __tablename__ = "field_visit_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("field_visits.id", ondelete="CASCADE"),
                                          unique=True)
    nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    score: Mapped[int | None]
    on_time: Mapped[bool | None]
    comment: Mapped[str] = mapped_column(Text, default="")
