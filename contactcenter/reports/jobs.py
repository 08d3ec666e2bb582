"""Background jobs of the reports package: create and send CSAT surveys after a solve.

``reports.csat_create`` runs after every commit that recorded
``ticket.status_changed``; it creates the survey of a solved ticket and, for
email, enqueues ``reports.csat_send``. ``reports.csat_sweep`` (every 5 minutes)
creates surveys a lost job missed and re-sends unsent ones, so nothing depends
on a job surviving.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from contactcenter.db import utcnow
from contactcenter.jobs import JobContext, job, on_event
from contactcenter.reports.csat import create_survey, survey_token
from contactcenter.reports.models import CsatSurvey, SurveyChannel
from contactcenter.tickets.models import Ticket, TicketStatus

log = logging.getLogger(__name__)

SWEEP_LOOKBACK = dt.timedelta(days=2)


@job("reports.csat_create")
def csat_create(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Create the survey of a ticket that was just solved (idempotent)."""
    if not ctx.settings.csat_enabled or payload.get("status") != TicketStatus.SOLVED:
        return
    ticket_id = payload.get("id") or payload.get("ticket_id")
    if not isinstance(ticket_id, int):
        return
    with ctx.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return
        survey = create_survey(session, ticket, utcnow(), ctx.settings)
        session.commit()
        survey_id = survey.id if survey is not None and survey.sent_at is None else None
    if survey_id is not None and ctx.jobs is not None and ctx.settings.smtp_relay_host:
        ctx.jobs.enqueue("reports.csat_send", survey_id, key=f"csat-send:{survey_id}")


def survey_email(ctx: JobContext, survey: CsatSurvey, ticket: Ticket) -> Any:
    """Return the outbound email of a survey (one question, a link per score)."""
    from contactcenter.channels.base import OutboundMessage

    base = ctx.settings.public_url.rstrip("/")
    token = survey_token(ctx.settings.secret_key, survey)
    lines = [f"Your request [#{ticket.number}] \"{ticket.subject}\" was solved.", "",
             "How satisfied are you with the help you got? Choose a score from 1 (not at "
             "all) to 5 (very):", ""]
    lines += [f"  {score}: {base}/csat/{token}?score={score}" for score in range(5, 0, -1)]
    lines += ["", "You can add a comment on that page. Thank you!"]
    return OutboundMessage(
        message_id=survey.id, channel="email", recipient=survey.recipient,
        subject=f"How did we do? {ticket.subject}"[:200], text="\n".join(lines), html="",
        external_id=f"csat-{survey.id}.{survey.nonce}@{ctx.settings.smtp_domain}",
        ticket_number=ticket.number, reply_token=ticket.reply_token, auto_submitted=True)


@job("reports.csat_send", queue="outbound")
def csat_send(ctx: JobContext, survey_id: int) -> None:
    """Send one email survey (skipped once sent; the sweep retries a failed send)."""
    from contactcenter.channels.email.outbound import send_email

    with ctx.db.session() as session:
        survey = session.get(CsatSurvey, survey_id)
        if survey is None or survey.sent_at is not None or survey.via != SurveyChannel.EMAIL:
            return
        ticket = session.get(Ticket, survey.ticket_id)
        if ticket is None or utcnow() >= survey.expires_at:
            return
        send_email(survey_email(ctx, survey, ticket), ctx.settings)
        survey.sent_at = utcnow()
        session.commit()


@job("reports.csat_sweep", every=300)
def csat_sweep(ctx: JobContext) -> None:
    """Create surveys for recently solved tickets that have none, and send unsent ones."""
    if not ctx.settings.csat_enabled:
        return
    now = utcnow()
    with ctx.db.session() as session:
        missing = session.scalars(
            select(Ticket).where(Ticket.status == TicketStatus.SOLVED,
                                 Ticket.solved_at >= now - SWEEP_LOOKBACK,
                                 ~select(CsatSurvey.id).where(
                                     CsatSurvey.ticket_id == Ticket.id,
                                     CsatSurvey.solve_round == Ticket.reopen_count).exists())
            .limit(500)).all()
        for ticket in missing:
            create_survey(session, ticket, now, ctx.settings)
        session.commit()
        unsent = list(session.scalars(
            select(CsatSurvey.id).where(CsatSurvey.sent_at.is_(None),
                                        CsatSurvey.via == SurveyChannel.EMAIL,
                                        CsatSurvey.expires_at > now).limit(200)))
    if not ctx.settings.smtp_relay_host:
        return
    for survey_id in unsent:
        try:
            csat_send(ctx, survey_id)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("CSAT survey %s not sent", survey_id)


on_event("ticket.status_changed", "reports.csat_create")
