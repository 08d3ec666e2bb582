"""CSAT: one question after a ticket is solved, by email with a signed link or in the chat.

``create_survey`` runs when a ticket is solved (the ``reports.csat_create``
job on ``ticket.status_changed``): one survey per solve, keyed by the ticket
and its reopen count so a repeated job creates nothing new. Email surveys are
sent by ``reports.csat_send`` and re-sent by the periodic sweep while unsent
and unexpired (the relay may be down). The link carries a token signed with
the secret key (itsdangerous), naming the survey and its random nonce, so it
cannot be guessed or moved to another survey; it works until the survey
expires and takes one answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.customers.models import IdentityKind
from contactcenter.events import record_event, room
from contactcenter.reports.models import CsatSurvey, SurveyChannel
from contactcenter.tickets.models import Ticket, TicketStatus

MAX_COMMENT = 2000
SALT = "contactcenter.csat"


class SurveyError(ValueError):
    """A survey answer that cannot be taken (expired, answered, bad score)."""


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def survey_token(secret_key: str, survey: CsatSurvey) -> str:
    """Return the signed token of a survey's link."""
    return str(_serializer(secret_key).dumps({"s": survey.id, "n": survey.nonce}))


def find_survey(session: Session, secret_key: str, token: str) -> CsatSurvey | None:
    """Return the survey a signed token names, or None for a bad or foreign token."""
    if not token or len(token) > 300:
        return None
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        return None
    survey = session.get(CsatSurvey, data["s"])
    if survey is None or not secrets.compare_digest(survey.nonce, str(data.get("n", ""))):
        return None
    return survey


def survey_channel_for(ticket: Ticket) -> tuple[str, str] | None:
    """Return how to ask (``chat`` or ``email``) and the address, or None if we cannot."""
    if ticket.channel == "chat":
        return SurveyChannel.CHAT.value, ""
    email = ticket.customer.address_of(IdentityKind.EMAIL) if ticket.customer else None
    if email:
        return SurveyChannel.EMAIL.value, email
    return None


def create_survey(session: Session, ticket: Ticket, now: dt.datetime,
                  settings: Settings) -> CsatSurvey | None:
    """Create the survey of a solved ticket (idempotent per solve); None when not asked."""
    if not settings.csat_enabled or ticket.status != TicketStatus.SOLVED:
        return None
    existing = session.scalar(select(CsatSurvey).where(
        CsatSurvey.ticket_id == ticket.id, CsatSurvey.solve_round == ticket.reopen_count))
    if existing is not None:
        return existing
    how = survey_channel_for(ticket)
    if how is None:
        return None
    via, recipient = how
    survey = CsatSurvey(
        ticket_id=ticket.id, solve_round=ticket.reopen_count, customer_id=ticket.customer_id,
        agent_id=ticket.assignee_id, queue_id=ticket.queue_id, channel=ticket.channel,
        via=via, recipient=recipient, nonce=secrets.token_hex(16), created_at=now,
        expires_at=now + dt.timedelta(days=settings.csat_survey_valid_days),
        sent_at=now if via == SurveyChannel.CHAT else None)
    session.add(survey)
    session.flush()
    return survey


def answer_survey(session: Session, survey: CsatSurvey, score: Any, comment: Any,
                  now: dt.datetime) -> CsatSurvey:
    """Record the customer's answer: a score of 1 to 5 and an optional plain-text comment."""
    if survey.answered_at is not None:
        raise SurveyError("this survey has already been answered, thank you")
    if now >= survey.expires_at:
        raise SurveyError("this survey has expired")
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise SurveyError("the score must be a whole number from 1 to 5")
    text = comment if isinstance(comment, str) else ""
    # Plain text only: it is shown escaped; control characters other than newlines go.
    text = "".join(c for c in text if c == "\n" or c >= " ")[:MAX_COMMENT].strip()
    survey.score = score
    survey.comment = text
    survey.answered_at = now
    rooms = [room("ticket", survey.ticket_id)]
    if survey.agent_id is not None:
        rooms.append(room("agent", survey.agent_id))
    record_event(session, "csat.answered",
                 {"survey_id": survey.id, "ticket_id": survey.ticket_id,
                  "agent_id": survey.agent_id, "queue_id": survey.queue_id, "score": score},
                 rooms)
    session.flush()
    return survey


def agent_summary(session: Session, agent_id: int, since: dt.datetime,
                  limit: int = 20) -> dict[str, Any]:
    """Return an agent's own CSAT since a time: average, count and latest answers."""
    rows = session.execute(
        select(CsatSurvey.score, CsatSurvey.comment, CsatSurvey.answered_at, Ticket.number)
        .join(Ticket, Ticket.id == CsatSurvey.ticket_id)
        .where(CsatSurvey.agent_id == agent_id, CsatSurvey.answered_at >= since,
               CsatSurvey.score.is_not(None))
        .order_by(CsatSurvey.answered_at.desc())).all()
    scores = [int(r[0]) for r in rows]
    return {"responses": len(scores),
            "average": round(sum(scores) / len(scores), 2) if scores else None,
            "satisfied_share": round(sum(1 for s in scores if s >= 4) / len(scores), 4)
            if scores else None,
            "latest": [{"score": r[0], "comment": r[1], "answered_at": r[2].isoformat(),
                        "ticket": r[3]} for r in rows[:limit]]}


def chat_survey_link(session: Session, settings: Settings, ticket_id: int,
                     now: dt.datetime) -> str | None:
    """Return the survey link to show at the end of a chat (creating the survey if due).

    For the chat channel to call when a solved chat ends: the widget shows the
    one question with this link (``/csat/<token>``), which works without signing
    in. None when surveys are off, the ticket is not solved, or it was answered.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    survey = create_survey(session, ticket, now, settings)
    if survey is None or survey.answered_at is not None:
        return None
    return f"{settings.public_url.rstrip('/')}/csat/{survey_token(settings.secret_key, survey)}"
