"""The life of a call: Twilio's statuses only move forward, and the outcome at its end.

Status callbacks may arrive twice or out of order (Twilio retries, and the
``ringing`` and ``completed`` requests race). A call's status therefore has a
rank, and a callback applies only when it moves the call forward; the first
final status wins and is never replaced. ``SequenceNumber`` orders callbacks
of one call too, but it is per subscription, so the rank is what decides.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a call is in our handling (independent of Twilio's status)."""

    IVR = "ivr"            # greeting and menu
    QUEUED = "queued"      # waiting for an agent in a Twilio queue
    BRIDGING = "bridging"  # our router chose an agent; ringing them
    CONNECTED = "connected"
    VOICEMAIL = "voicemail"
    ENDED = "ended"


class Outcome(StrEnum):
    """How a call ended, as the ticket shows it."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up while waiting in the queue
    MISSED = "missed"        # nobody answered (or the caller left before the queue)
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    FAILED = "failed"


STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
               "completed": 4, "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
FINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank == 4)


def is_final(status: str) -> bool:
    """Whether a Twilio call status is final."""
    return status in FINAL_STATUSES


def next_status(current: str, reported: str) -> str | None:
    """Return the status a callback moves the call to, or None to ignore it.

    Unknown statuses, repeats, older ones and anything after a final status are ignored.
    """
    if reported not in STATUS_RANK:
        return None
    if is_final(current):
        return None
    if STATUS_RANK[reported] <= STATUS_RANK.get(current, -1):
        return None
    return reported


def outcome_of(direction: str, status: str, phase: str, answered: bool,
               voicemail: bool) -> Outcome:
    """Return how a call ended from its final status and how far we got with it."""
    if answered:
        return Outcome.ANSWERED
    if voicemail:
        return Outcome.VOICEMAIL
    if status == "busy":
        return Outcome.BUSY
    if status == "failed":
        return Outcome.FAILED
    if direction == "inbound" and phase in (Phase.QUEUED, Phase.BRIDGING):
        return Outcome.ABANDONED
    return Outcome.MISSED
