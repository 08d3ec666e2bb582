"""Decide which ticket a contact belongs to (pure: the candidates are looked up by intake)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class ThreadRule(StrEnum):
    """Why a contact landed on a ticket."""

    EXPLICIT = "explicit_reference"
    REPLY_HEADERS = "reply_headers"
    OPEN_TICKET = "open_ticket"
    NEW = "new_ticket"
    SENDER_LIMIT = "sender_limit"  # over the per-sender new-ticket limit: grouped


@dataclass(frozen=True)
class Candidate:
    """What threading needs to know of a ticket."""

    ticket_id: int
    customer_id: int
    organisation_id: int | None
    status: str
    last_activity_at: dt.datetime


@dataclass(frozen=True)
class ThreadDecision:
    """The chosen ticket (None means open a new one) and the rule that chose it."""

    ticket_id: int | None
    rule: ThreadRule


def is_within_window(last_activity: dt.datetime, now: dt.datetime, days: int) -> bool:
    """Whether a ticket's last activity is recent enough to thread onto."""
    return now - last_activity <= dt.timedelta(days=days)


def may_follow_reference(candidate: Candidate, customer_id: int,
                         organisation_id: int | None, reply_token_ok: bool) -> bool:
    """Whether a contact may be threaded onto a ticket it names explicitly.

    A ticket number alone is guessable: it counts only for the ticket's own
    customer or a colleague in the same organisation, or with the ticket's
    secret reply token. A closed ticket is never written to.
    """
    if candidate.status == "closed":
        return False
    if reply_token_ok or candidate.customer_id == customer_id:
        return True
    return organisation_id is not None and candidate.organisation_id == organisation_id


def choose_thread(
    *,
    customer_id: int,
    organisation_id: int | None,
    explicit: Candidate | None,
    reply_token_ok: bool,
    replied_to: Candidate | None,
    recent: Candidate | None,
    thread_on_open_ticket: bool,
    now: dt.datetime,
    window_days: int,
) -> ThreadDecision:
    """Pick a ticket: explicit reference, then reply headers, then recent open ticket, else new."""
    if explicit is not None and may_follow_reference(
        explicit, customer_id, organisation_id, reply_token_ok
    ):
        return ThreadDecision(explicit.ticket_id, ThreadRule.EXPLICIT)
    if replied_to is not None and replied_to.status != "closed" and may_follow_reference(
        replied_to, customer_id, organisation_id, False
    ):
        return ThreadDecision(replied_to.ticket_id, ThreadRule.REPLY_HEADERS)
    if (
        thread_on_open_ticket
        and recent is not None
        and recent.customer_id == customer_id
        and recent.status != "closed"
        and is_within_window(recent.last_activity_at, now, window_days)
    ):
        return ThreadDecision(recent.ticket_id, ThreadRule.OPEN_TICKET)
    return ThreadDecision(None, ThreadRule.NEW)
