"""Decide which ticket a contact belongs to (pure: the candidates are looked up by intake).

Channels whose sender is authenticated by the provider (a chat session, a signed
Twilio webhook) may thread on a ticket number when the sender is the ticket's
customer or a colleague. E-mail's From proves nothing, so an e-mail contact sets
``verify_sender`` (RELIABILITY ID-1): then only proof counts, namely a reply token
minted for this ticket and the sender's address (``reply_token_ok``), or reply
headers naming a message this same sender address wrote to us before
(``replied_to_ok``: the sender's own earlier Message-ID, known only to their mail
system and to us, which is how customer replies in the wild and in the benchmark
corpus thread). A contact that names a ticket without such proof opens a new
ticket which records the claim (``claimed_ticket_id``) and is marked unverified;
it never falls through to the "recent open ticket" rule, which would let a forged
From land on the victim's ticket after all.
"""

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
    # A ticket the contact named (number, token, reply headers) without proving it may
    # write there: the new ticket is marked unverified and shows the claim.
    claimed_ticket_id: int | None = None


def is_within_window(last_activity: dt.datetime, now: dt.datetime, days: int) -> bool:
    """Whether a ticket's last activity is recent enough to thread onto."""
    return now - last_activity <= dt.timedelta(days=days)


def may_follow_reference(candidate: Candidate, customer_id: int,
                         organisation_id: int | None, reply_token_ok: bool, *,
                         verify_sender: bool = False) -> bool:
    """Whether a contact may be threaded onto a ticket it names explicitly.

    A ticket number alone is guessable: it counts only for the ticket's own
    customer or a colleague in the same organisation, or with the ticket's
    secret reply token. A closed ticket is never written to. With
    ``verify_sender`` (a sender that may be forged) only the token counts.
    """
    if candidate.status == "closed":
        return False
    if reply_token_ok:
        return True
    if verify_sender:
        return False
    if candidate.customer_id == customer_id:
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
    verify_sender: bool = False,
    replied_to_ok: bool = False,
) -> ThreadDecision:
    """Pick a ticket: explicit reference, then reply headers, then recent open ticket, else new.

    ``replied_to_ok`` (read only with ``verify_sender``): the reply headers name a
    message this very sender address wrote.
    """
    if explicit is not None and may_follow_reference(
        explicit, customer_id, organisation_id, reply_token_ok, verify_sender=verify_sender
    ):
        return ThreadDecision(explicit.ticket_id, ThreadRule.EXPLICIT)
    if replied_to is not None and replied_to.status != "closed" and (
        replied_to_ok if verify_sender
        else may_follow_reference(replied_to, customer_id, organisation_id, False)
    ):
        return ThreadDecision(replied_to.ticket_id, ThreadRule.REPLY_HEADERS)
    if verify_sender:
        claimed = next((c.ticket_id for c in (explicit, replied_to)
                        if c is not None and c.status != "closed"), None)
        if claimed is not None:
            return ThreadDecision(None, ThreadRule.NEW, claimed)
    if (
        thread_on_open_ticket
        and recent is not None
        and recent.customer_id == customer_id
        and recent.status != "closed"
        and is_within_window(recent.last_activity_at, now, window_days)
    ):
        return ThreadDecision(recent.ticket_id, ThreadRule.OPEN_TICKET)
    return ThreadDecision(None, ThreadRule.NEW)
