"""Models of the phone package: call records, the raw webhook log, SMS parts, media, opt-outs.

A ``Call`` is keyed by Twilio's CallSid and links to the ticket message that
tells its story; its ``status`` only ever moves forward (``callstate``). Every
webhook is kept raw in ``TwilioWebhook``; its ``dedupe_key`` (CallSid or
MessageSid plus the callback's status and sequence) is unique, so a replayed or
retried callback is recognised and applied once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow


class Call(TimestampMixin, Base):
    """One phone call, inbound or outbound, with its outcome and durations."""

    __tablename__ = "phone_calls"
    __table_args__ = (
        Index("ix_phone_calls_phase", "phase", "bridge_next_at"),
        Index("ix_phone_calls_ticket", "ticket_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    from_number: Mapped[str] = mapped_column(String(64), default="")
    to_number: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    routing_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_items.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="ringing")
    phase: Mapped[str] = mapped_column(String(16), default="ivr")
    outcome: Mapped[str | None] = mapped_column(String(16))
    ivr_choices: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    fast_track: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    wait_seconds: Mapped[int | None]
    talk_seconds: Mapped[int | None]
    duration_seconds: Mapped[int | None]
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_seconds: Mapped[int | None]
    transcription: Mapped[str] = mapped_column(Text, default="")
    voicemail_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"))
    bridge_attempts: Mapped[int] = mapped_column(default=0)
    bridge_next_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class TwilioWebhook(Base):
    """A webhook exactly as Twilio sent it, kept before (or with) its processing."""

    __tablename__ = "twilio_webhooks"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_twilio_webhooks_dedupe_key"),
        Index("ix_twilio_webhooks_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(32))
    sid: Mapped[str] = mapped_column(String(64), default="", index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    idempotency_token: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    query: Mapped[str] = mapped_column(String(1000), default="")
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="processed")
    error: Mapped[str] = mapped_column(Text, default="")


class SmsPart(Base):
    """One message Twilio accepted for a (possibly split) outbound reply, with its status."""

    __tablename__ = "phone_sms_parts"
    __table_args__ = (UniqueConstraint("message_id", "part", name="uq_phone_sms_parts_message_id_part"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    part: Mapped[int]
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_code: Mapped[str] = mapped_column(String(16), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SmsMedia(Base):
    """A media file of an inbound MMS or WhatsApp message: its URL, then its download."""

    __tablename__ = "phone_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(127), default="")
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    attachment_id: Mapped[int | None] = mapped_column(
        ForeignKey("attachments.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SmsOptOut(Base):
    """A number that texted STOP: nothing is sent to it until it texts START."""

    __tablename__ = "phone_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    keyword: Mapped[str] = mapped_column(String(16), default="STOP")
    opted_out_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AgentPhone(Base):
    """How an agent takes calls: the browser softphone, or a forwarding number."""

    __tablename__ = "phone_agents"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    forward_number: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
