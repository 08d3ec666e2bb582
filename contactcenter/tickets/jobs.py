"""Background jobs of intake and the outbox, with the sweeps that repair lost jobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from contactcenter.db import utcnow
from contactcenter.events import trim_event_log
from contactcenter.jobs import JobContext, job
from contactcenter.tickets import previews as _previews  # noqa: F401 (registers its jobs)
from contactcenter.tickets.intake import process_raw
from contactcenter.tickets.models import RawInbound, RawState
from contactcenter.tickets.outbox import deliver_message, sweep_outbox

PENDING_GRACE = dt.timedelta(minutes=2)


@job("intake.process_raw", queue="inbound")
def process_raw_job(ctx: JobContext, raw_id: int) -> dict[str, Any] | None:
    """Parse and ingest one stored raw payload (email: with its acknowledgement)."""
    from contactcenter.tickets.intake import process_stored

    with ctx.db.session() as session:
        result = process_stored(session, raw_id, ctx.registry, ctx.settings, jobs=ctx.jobs)
        return result.to_json() if result else None


def _process_pending(ctx: JobContext, session: Any, raw_id: int, channel: str) -> None:
    """Process one stored payload the way its channel's own receiver does.

    Email goes through ``receive.process_email``: a new ticket gets the same
    acknowledgement (loop caps and all) as mail processed right after its 250.
    """
    if channel == "email":
        from contactcenter.channels.email.receive import process_email

        process_email(session, raw_id, ctx.registry, ctx.settings, jobs=ctx.jobs)
    else:
        process_raw(session, raw_id, ctx.registry, ctx.settings)


@job("intake.sweep", queue="inbound", every=60)
def sweep_pending_raw(ctx: JobContext) -> int:
    """Process raw payloads whose processing job was lost (pending past a grace period)."""
    cutoff = utcnow() - PENDING_GRACE
    with ctx.db.session() as session:
        rows = session.execute(select(RawInbound.id, RawInbound.channel).where(
            RawInbound.state == RawState.PENDING, RawInbound.received_at < cutoff
        ).order_by(RawInbound.id).limit(500)).all()
        for raw_id, channel in rows:
            _process_pending(ctx, session, raw_id, channel)
    return len(rows)


@job("outbox.deliver", queue="outbound")
def deliver_job(ctx: JobContext, message_id: int) -> str:
    """Deliver one reply."""
    with ctx.db.session() as session:
        return deliver_message(session, message_id, ctx.registry, ctx.settings)


@job("outbox.sweep", queue="outbound", every=60)
def outbox_sweep_job(ctx: JobContext) -> dict[str, int]:
    """Deliver replies whose delivery job was lost or failed and is due again."""
    with ctx.db.session() as session:
        return sweep_outbox(session, ctx.registry, ctx.settings)


@job("events.trim", queue="default", every=600)
def trim_events_job(ctx: JobContext) -> int:
    """Keep the event log at its configured length."""
    with ctx.db.session() as session:
        removed = trim_event_log(session, ctx.settings.event_retention)
        session.commit()
        return removed
