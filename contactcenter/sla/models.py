"""Business calendars, SLA policies and targets, per-ticket clocks, contract usage and alerts.

The sweep's one question, "which clocks have a threshold to act on by now?", is
one indexed range scan on ``sla_clocks.next_check_at``: the column holds the next
unreported instant (the warning, else the breach) and is NULL once nothing is left
to report, so the index only holds clocks that may still need the sweep, and a
sweep reads only what is due however many tickets are open.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow


class ClockKind(StrEnum):
    """The targets a ticket is measured against."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    """Where a clock is: counting, stopped while the ticket waits on someone else, done."""

    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"


class Entitlement(StrEnum):
    """What intake found about the customer's service contracts."""

    NONE = "none"
    COVERED = "covered"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    PENDING = "pending"


class NotificationState(StrEnum):
    """Delivery state of a notification e-mail in the SLA outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class SlaCalendar(TimestampMixin, Base):
    """A business calendar: timezone, weekly hours, a country's public holidays.

    ``hours`` is the weekly schedule in the text form ``calendar.parse_hours``
    reads (``"mon-fri 09:00-13:00,14:00-18:00; sat 10:00-14:00"`` or ``"24x7"``);
    it is only ever read whole, never filtered on.
    """

    __tablename__ = "sla_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hours: Mapped[str] = mapped_column(String(1000), default="24x7")
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))


class SlaCalendarException(Base):
    """A day that differs from the week: closed (``hours`` empty) or special opening hours."""

    __tablename__ = "sla_calendar_exceptions"
    __table_args__ = (UniqueConstraint("calendar_id", "day",
                                       name="uq_sla_calendar_exceptions_calendar_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id", ondelete="CASCADE"))
    day: Mapped[dt.date]
    hours: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(200), default="")


class SlaPolicy(TimestampMixin, Base):
    """Targets and the conditions a ticket must meet for them to apply.

    Policies are tried in ``position`` order; the first whose every set
    condition matches wins (a contract's committed policy wins before any).
    ``calendar_id`` None means the clocks run 24x7.
    """

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    position: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    pause_on_hold: Mapped[bool] = mapped_column(default=True)
    warn_percent: Mapped[int] = mapped_column(default=80)
    match_channel: Mapped[str | None] = mapped_column(String(16))
    match_queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"))
    match_tier: Mapped[str | None] = mapped_column(String(8))
    match_organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"))
    match_contract_level: Mapped[str | None] = mapped_column(String(50))


class SlaTarget(Base):
    """One target of a policy: business minutes for a kind, for one priority or any (None)."""

    __tablename__ = "sla_targets"
    __table_args__ = (UniqueConstraint("policy_id", "kind", "priority",
                                       name="uq_sla_targets_policy_kind_priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str | None] = mapped_column(String(16))
    minutes: Mapped[int]


contract_products = Table(
    "contract_products",
    Base.metadata,
    Column("contract_id", Integer, ForeignKey("contracts.id", ondelete="CASCADE"),
           primary_key=True),
    Column("product_id", Integer, ForeignKey("products.id", ondelete="CASCADE"),
           primary_key=True),
)


class TicketSla(TimestampMixin, Base):
    """Which policy applied to a ticket and why, and what intake found about its contract."""

    __tablename__ = "ticket_sla"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"), index=True)
    policy_name: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), index=True)
    entitlement: Mapped[str] = mapped_column(String(16), default=Entitlement.NONE)
    entitlement_note: Mapped[str] = mapped_column(String(300), default="")


class SlaClock(TimestampMixin, Base):
    """One target's clock on one ticket (``cycle`` counts next-response rounds).

    While running, ``due_at`` and ``warn_at`` are computed from ``running_since``
    and the business time already used (``elapsed_seconds``) on the calendar;
    a pause folds the time used into ``elapsed_seconds`` and clears them, a
    resume computes them again with the remaining time. ``breached_at`` is the
    true instant the target passed, whenever it was noticed.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", "cycle", name="uq_sla_clocks_ticket_kind_cycle"),
        Index("ix_sla_clocks_next_check", "next_check_at",
              postgresql_where=text("next_check_at IS NOT NULL"),
              sqlite_where=text("next_check_at IS NOT NULL")),
        Index("ix_sla_clocks_started", "started_at"),
        Index("ix_sla_clocks_policy", "policy_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    cycle: Mapped[int] = mapped_column(default=1)
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"))
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    target_minutes: Mapped[int]
    warn_percent: Mapped[int] = mapped_column(default=80)
    pause_on_hold: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(16), default=ClockState.RUNNING)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    running_since: Mapped[dt.datetime | None]
    elapsed_seconds: Mapped[int] = mapped_column(default=0)
    warn_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None]
    next_check_at: Mapped[dt.datetime | None]
    warned_at: Mapped[dt.datetime | None]
    breached_at: Mapped[dt.datetime | None]
    breach_reported_at: Mapped[dt.datetime | None]
    met_at: Mapped[dt.datetime | None]
    business_seconds: Mapped[int | None]


class ContractUsage(Base):
    """What one ticket used of a contract's allowance (one row per contract and ticket)."""

    __tablename__ = "contract_usage"
    __table_args__ = (UniqueConstraint("contract_id", "ticket_id",
                                       name="uq_contract_usage_contract_ticket"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    incidents: Mapped[int] = mapped_column(default=1)
    minutes: Mapped[int] = mapped_column(default=0)
    counted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContractAlert(Base):
    """An alert sent about a contract: its unique (contract, kind) makes each one happen once."""

    __tablename__ = "contract_alerts"
    __table_args__ = (UniqueConstraint("contract_id", "kind",
                                       name="uq_contract_alerts_contract_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SlaNotification(Base):
    """A notification e-mail waiting for (or done with) delivery through the relay."""

    __tablename__ = "sla_notifications"
    __table_args__ = (Index("ix_sla_notifications_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default=NotificationState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

