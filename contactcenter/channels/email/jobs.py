"""Periodic work of the email channel."""

from __future__ import annotations

from contactcenter.channels.email.loops import sweep_acknowledgements
from contactcenter.jobs import JobContext, job


@job("email.acknowledge_sweep", queue="outbound", every=60)
def acknowledge_sweep_job(ctx: JobContext) -> int:
    """Acknowledge new email tickets that were ingested without passing the SMTP/IMAP hook."""
    with ctx.db.session() as session:
        stored = sweep_acknowledgements(session, ctx.settings)
        session.commit()
        return stored
