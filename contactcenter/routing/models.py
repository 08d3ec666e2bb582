"""Routing items, agent states and capacities, offers and teams.

The columns a decision filters or orders on are plain indexed columns (never
JSON): the pick index ``(queue_id, state, kind, priority DESC, enqueued_at, id)``
makes "highest priority, then oldest" per queue and kind one index descent, and every other
sweep (offer expiry, rescoring, wrap-up ends, socket grace) has its own index.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contactcenter.db import Base, TimestampMixin, only_set, utcnow


class ItemKind(StrEnum):
    """What kind of work an item is; capacity, offer timeouts and wrap-up are per kind."""

    TICKET = "ticket"
    CALL = "call"
    CHAT = "chat"


class ItemState(StrEnum):
    """Where a routing item is in its life."""

    WAITING = "waiting"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


ACTIVE_STATES = (ItemState.WAITING, ItemState.OFFERED, ItemState.ASSIGNED)
HELD_STATES = (ItemState.OFFERED, ItemState.ASSIGNED)


class Presence(StrEnum):
    """An agent's presence; only ``available`` agents are offered work."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


class OfferOutcome(StrEnum):
    """What became of an offer."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class Team(TimestampMixin, Base):
    """A group of agents that routing rules can target (``team = "tier2"``)."""

    __tablename__ = "routing_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class RoutingItem(TimestampMixin, Base):
    """One piece of work an agent can be given: a waiting ticket, a live call or chat.

    The priority inputs (tier, lifetime value, contract, SLA deadline, manual
    priority) are kept on the item so that rescoring is a pure function of the row.
    """

    __tablename__ = "routing_items"
    # Indexes on a time most rows lack hold only the rows that have it
    # (``only_set``): every query on them compares that time, which PostgreSQL and
    # SQLite know implies it is set, and a write to a row without it (most
    # routing decisions) leaves them alone.
    __table_args__ = (
        Index("ix_routing_items_offer_expiry", "state", "offer_expires_at",
              **only_set("offer_expires_at")),
        Index("ix_routing_items_rescore", "state", "rescore_at", **only_set("rescore_at")),
        Index("ix_routing_items_ticket", "ticket_id", "state"),
        Index("ix_routing_items_customer", "customer_id", "answered_at"),
        Index("ix_routing_items_agent", "agent_id", "state", "kind"),
        Index("ix_routing_items_answered", "queue_id", "answered_at",
              **only_set("answered_at")),
        Index("ix_routing_items_abandoned", "queue_id", "abandoned_at",
              **only_set("abandoned_at")),
        Index("ix_routing_items_external_ref", "external_ref", **only_set("external_ref")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=ItemState.WAITING)
    priority: Mapped[int] = mapped_column(default=0)
    priority_reason: Mapped[str] = mapped_column(String(300), default="")
    rescore_at: Mapped[dt.datetime | None]
    manual_priority: Mapped[str] = mapped_column(String(16), default="normal")
    value_tier: Mapped[str | None] = mapped_column(String(8))
    lifetime_value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    contract_level: Mapped[str | None] = mapped_column(String(50))
    response_minutes: Mapped[int | None]
    due_at: Mapped[dt.datetime | None]
    enqueued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rules_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    preferred_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    offered_at: Mapped[dt.datetime | None]
    offer_expires_at: Mapped[dt.datetime | None]
    offer_count: Mapped[int] = mapped_column(default=0)
    answered_at: Mapped[dt.datetime | None]
    wait_seconds: Mapped[int | None]
    completed_at: Mapped[dt.datetime | None]
    handle_seconds: Mapped[int | None]
    abandoned_at: Mapped[dt.datetime | None]

    skills: Mapped[list[RoutingItemSkill]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="RoutingItemSkill.skill")


# "Highest priority, then oldest" per queue and kind: one descent of this index per pick.
Index("ix_routing_items_pick", RoutingItem.queue_id, RoutingItem.state, RoutingItem.kind,
      RoutingItem.priority.desc(), RoutingItem.enqueued_at, RoutingItem.id)


class RoutingItemSkill(Base):
    """A skill an item needs, with the lowest level that will do."""

    __tablename__ = "routing_item_skills"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("routing_items.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    min_level: Mapped[int] = mapped_column(default=1)

    item: Mapped[RoutingItem] = relationship(back_populates="skills")


class AgentState(Base):
    """An agent's routing state: presence, team, idle clock and missed offers.

    Its row is the agent's lock: every change to what an agent holds happens
    with this row locked, after the item rows involved.
    """

    __tablename__ = "agent_states"
    __table_args__ = (
        Index("ix_agent_states_presence", "presence", "last_assigned_at"),
        Index("ix_agent_states_wrap_up_until", "wrap_up_until", **only_set("wrap_up_until")),
        Index("ix_agent_states_disconnected_at", "disconnected_at",
              **only_set("disconnected_at")),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence: Mapped[str] = mapped_column(String(16), default=Presence.OFFLINE)
    presence_reason: Mapped[str] = mapped_column(String(200), default="")
    presence_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    wrap_up_until: Mapped[dt.datetime | None]
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_teams.id", ondelete="SET NULL"), index=True)
    last_assigned_at: Mapped[dt.datetime | None]
    lapsed_offers: Mapped[int] = mapped_column(default=0)
    # The kinds the agent has room for, as ",ticket,chat," (capacity left and no
    # excluding kind held), rewritten with the load under this row's lock. With
    # ``presence`` it feeds the partial index of free agents, so "who could take
    # this item?" reads only the free agents, however many are busy.
    free_kinds: Mapped[str] = mapped_column(String(32), default="", server_default="")
    disconnected_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Free agents only: available with room for some kind, longest idle first.
FREE_AGENTS = text("presence = 'available' AND free_kinds <> ''")
Index("ix_agent_states_free", AgentState.last_assigned_at, AgentState.user_id,
      postgresql_where=FREE_AGENTS, sqlite_where=FREE_AGENTS)


class AgentCapacity(Base):
    """How many items of one kind an agent may hold at once, and how many they hold.

    ``load`` counts offered and assigned items; it changes only with the agent's
    state row locked, so ``load <= maximum`` holds under concurrency.
    """

    __tablename__ = "agent_capacities"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("agent_states.user_id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    maximum: Mapped[int] = mapped_column(default=1)
    load: Mapped[int] = mapped_column(default=0)


class Offer(Base):
    """One offer of an item to an agent, with its outcome (the history of a routing)."""

    __tablename__ = "routing_offers"
    __table_args__ = (
        Index("ix_routing_offers_item_agent", "item_id", "agent_id", "ended_at"),
        Index("ix_routing_offers_agent_outcome", "agent_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("routing_items.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    made_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), default=OfferOutcome.PENDING)
    ended_at: Mapped[dt.datetime | None]
    reason: Mapped[str] = mapped_column(String(200), default="")
