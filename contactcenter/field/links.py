"""Signed links the customer opens: time-window offers and the post-visit survey.

An offer lists windows from the visit's calendar (the contract's, else 24x7
daytime) that no other visit of the assigned technician takes, and is sent as
an outbound message on the ticket by email or SMS (the outbox delivers it), or
read out on the phone. The link carries a token signed with the secret key
(itsdangerous, salted per purpose) naming the row and its random nonce, so it
cannot be guessed or moved to another visit; it works until the offer expires
and takes one answer. Picking a window schedules the visit.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.customers.models import Contract, IdentityKind
from contactcenter.db import utcnow
from contactcenter.events import SUPERVISORS_ROOM, record_event
from contactcenter.field.models import (
    OPEN_STATES,
    Confirmation,
    OfferedSlot,
    SlotOffer,
    Visit,
    VisitState,
    VisitSurvey,
)
from contactcenter.field.planning import offer_windows
from contactcenter.field.service import FieldError, note, schedule_visit
from contactcenter.tickets.models import Ticket

OFFER_SALT = "contactcenter.field.offer"
SURVEY_SALT = "contactcenter.field.survey"
CHANNELS = ("email", "sms", "phone")


def _token(secret_key: str, salt: str, ident: int, nonce: str) -> str:
    return str(URLSafeSerializer(secret_key, salt=salt).dumps({"i": ident, "n": nonce}))


def _read(secret_key: str, salt: str, token: str) -> tuple[int, str] | None:
    if not token or len(token) > 300:
        return None
    try:
        data = URLSafeSerializer(secret_key, salt=salt).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int):
        return None
    return data["i"], str(data.get("n", ""))


def offer_token(settings: Settings, offer: SlotOffer) -> str:
    """Return the signed token of an offer's link."""
    return _token(settings.secret_key or "", OFFER_SALT, offer.id, offer.nonce)


def survey_token(settings: Settings, survey: VisitSurvey) -> str:
    """Return the signed token of a survey's link."""
    return _token(settings.secret_key or "", SURVEY_SALT, survey.id, survey.nonce)


def find_offer(session: Session, settings: Settings, token: str) -> SlotOffer | None:
    """Return the offer a token names, or None for a bad or foreign token."""
    found = _read(settings.secret_key or "", OFFER_SALT, token)
    offer = session.get(SlotOffer, found[0]) if found else None
    if offer is None or found is None or not secrets.compare_digest(offer.nonce, found[1]):
        return None
    return offer


def find_survey(session: Session, settings: Settings, token: str) -> VisitSurvey | None:
    """Return the survey a token names, or None for a bad or foreign token."""
    found = _read(settings.secret_key or "", SURVEY_SALT, token)
    survey = session.get(VisitSurvey, found[0]) if found else None
    if survey is None or found is None or not secrets.compare_digest(survey.nonce, found[1]):
        return None
    return survey


def _link(settings: Settings, path: str) -> str:
    base = (settings.public_url or "http://127.0.0.1:5000").rstrip("/")
    return f"{base}{path}"


def candidate_windows(session: Session, settings: Settings, visit: Visit, now: dt.datetime
                      ) -> list[tuple[dt.datetime, dt.datetime]]:
    """Return the windows to offer: working time of the contract's calendar, technician free."""
    from contactcenter.sla.service import calendar_of

    contract = session.get(Contract, visit.contract_id) if visit.contract_id else None
    calendar = calendar_of(session, contract.calendar_id if contract else None)
    busy: list[tuple[dt.datetime, dt.datetime]] = []
    if visit.technician_id is not None:
        rows = session.execute(select(Visit.window_start, Visit.window_end).where(
            Visit.technician_id == visit.technician_id, Visit.id != visit.id,
            Visit.state.in_(OPEN_STATES), Visit.window_start >= now))
        busy = [(s, e) for s, e in rows if s is not None and e is not None]
    return offer_windows(calendar, now + dt.timedelta(hours=1), settings.field_slot_minutes,
                         settings.field_slot_count, busy)


def offer_slots(session: Session, settings: Settings, visit: Visit, channel: str,
                actor_id: int, now: dt.datetime | None = None,
                windows: list[tuple[dt.datetime, dt.datetime]] | None = None
                ) -> tuple[SlotOffer, str]:
    """Offer windows to the customer; return the offer and its link.

    By ``email`` or ``sms`` the link goes out as a message on the ticket; by
    ``phone`` the agent reads the windows out and confirms the chosen one.
    """
    now = now or utcnow()
    if channel not in CHANNELS:
        raise FieldError("channel must be email, sms or phone")
    if visit.state not in (VisitState.PENDING, VisitState.ASSIGNED):
        raise FieldError("windows can be offered only before the visit starts")
    windows = windows if windows is not None else candidate_windows(session, settings, visit, now)
    if not windows:
        raise FieldError("no free window in the coming weeks")
    offer = SlotOffer(visit_id=visit.id, nonce=secrets.token_hex(16), channel=channel,
                      created_at=now,
                      expires_at=now + dt.timedelta(days=settings.field_offer_valid_days))
    session.add(offer)
    session.flush()
    for start, end in windows:
        session.add(OfferedSlot(offer_id=offer.id, starts_at=start, ends_at=end))
    visit.confirmation = Confirmation.OFFERED
    link = _link(settings, f"/field/slots/{offer_token(settings, offer)}")
    listed = "\n".join(f"- {s:%a %d %b %H:%M}-{e:%H:%M} UTC" for s, e in windows)
    ticket = session.get(Ticket, visit.ticket_id)
    assert ticket is not None
    if channel == "phone":
        note(session, visit, actor_id, f"Windows offered by phone:\n{listed}", now)
    else:
        from contactcenter.tickets.service import add_reply

        text = (f"We will send a technician for your request #{ticket.number}. Please confirm "
                f"one of these times, or pick another, here: {link}"
                if channel == "sms" else
                f"Hello,\n\nwe will send a technician to {visit.address} for your request. "
                f"These times are free:\n{listed}\n\nPlease confirm one, or pick another, "
                f"here:\n{link}\n")
        try:
            add_reply(session, ticket, actor_id, text, channel=channel, now=now, live=True)
        except ValueError as exc:  # no address on that channel, or a closed ticket
            raise FieldError(str(exc)) from None
    session.flush()
    return offer, link


def slots_of(session: Session, offer: SlotOffer) -> list[OfferedSlot]:
    """Return an offer's windows in time order."""
    return list(session.scalars(select(OfferedSlot).where(OfferedSlot.offer_id == offer.id)
                                .order_by(OfferedSlot.starts_at)))


def answer_offer(session: Session, settings: Settings, offer: SlotOffer, slot_id: Any,
                 now: dt.datetime | None = None) -> Visit:
    """Take the customer's choice of window (one answer per offer, until it expires)."""
    now = now or utcnow()
    if offer.answered_at is not None:
        raise FieldError("this offer was already answered")
    if now > offer.expires_at:
        raise FieldError("this offer has expired")
    try:
        chosen_id = int(slot_id)
    except (TypeError, ValueError):
        raise FieldError("pick one of the times") from None
    slot = session.get(OfferedSlot, chosen_id)
    if slot is None or slot.offer_id != offer.id:
        raise FieldError("pick one of the times")
    if slot.starts_at < now:
        raise FieldError("that time has passed; pick another")
    visit = session.get(Visit, offer.visit_id)
    assert visit is not None
    offer.answered_at, offer.chosen_slot_id = now, slot.id
    return schedule_visit(session, visit, slot.starts_at, slot.ends_at, None,
                          f"link-{offer.channel}", now)


def create_survey(session: Session, settings: Settings, visit: Visit, now: dt.datetime
                  ) -> VisitSurvey:
    """Create the visit's survey (once) and send its link by email, else SMS."""
    existing = session.scalar(select(VisitSurvey).where(VisitSurvey.visit_id == visit.id))
    if existing is not None:
        return existing
    survey = VisitSurvey(visit_id=visit.id, nonce=secrets.token_hex(16), created_at=now,
                         expires_at=now + dt.timedelta(days=settings.field_survey_valid_days))
    session.add(survey)
    session.flush()
    ticket = session.get(Ticket, visit.ticket_id)
    if ticket is None or ticket.status == "closed":
        return survey
    channel = None
    if ticket.customer.address_of(IdentityKind.EMAIL):
        channel = "email"
    elif ticket.customer.address_of(IdentityKind.PHONE):
        channel = "sms"
    if channel is not None:
        from contactcenter.tickets.service import add_reply

        link = _link(settings, f"/field/survey/{survey_token(settings, survey)}")
        add_reply(session, ticket, visit.technician_id or visit.created_by_id,  # type: ignore[arg-type]
                  f"How was our technician's visit? Two quick questions: {link}",
                  channel=channel, now=now, live=True)
    return survey


def answer_survey(session: Session, survey: VisitSurvey, score: Any, on_time: Any,
                  comment: Any, now: dt.datetime | None = None) -> VisitSurvey:
    """Take the one answer of a survey (score 1-5, on time yes/no, optional comment)."""
    now = now or utcnow()
    if survey.answered_at is not None:
        raise FieldError("already answered")
    if now > survey.expires_at:
        raise FieldError("this survey has expired")
    try:
        value = int(score)
    except (TypeError, ValueError):
        raise FieldError("score must be 1 to 5") from None
    if not 1 <= value <= 5:
        raise FieldError("score must be 1 to 5")
    text = comment if isinstance(comment, str) else ""
    survey.score, survey.comment, survey.answered_at = value, text.strip()[:2000], now
    survey.on_time = on_time in (True, "yes", "true", "1")
    session.flush()
    visit = session.get(Visit, survey.visit_id)
    assert visit is not None
    record_event(session, "field.survey_answered",
                 {"visit_id": visit.id, "score": value, "technician_id": visit.technician_id},
                 [SUPERVISORS_ROOM])
    return survey


def ask_other_time(session: Session, offer: SlotOffer, wish: Any,
                   now: dt.datetime | None = None) -> Visit:
    """Take the customer's "none of these suit me" with the time they would like instead.

    The offer is answered (its link takes nothing more); the wish goes on the
    ticket for the agent, who offers new windows or agrees one by phone.
    """
    now = now or utcnow()
    if offer.answered_at is not None:
        raise FieldError("this offer was already answered")
    if now > offer.expires_at:
        raise FieldError("this offer has expired")
    text = wish.strip()[:300] if isinstance(wish, str) else ""
    if not text:
        raise FieldError("tell us which day and time would suit you")
    visit = session.get(Visit, offer.visit_id)
    assert visit is not None
    offer.answered_at = now
    visit.confirmation = Confirmation.NONE
    note(session, visit, None, f"Customer asked for another time: {text}", now)
    record_event(session, "field.visit_updated", {"visit_id": visit.id,
                                                  "ticket_id": visit.ticket_id,
                                                  "state": visit.state,
                                                  "technician_id": visit.technician_id},
                 [SUPERVISORS_ROOM, f"ticket:{visit.ticket_id}"])
    return visit
