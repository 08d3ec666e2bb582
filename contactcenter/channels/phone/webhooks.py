"""Keep every webhook raw, recognise repeats, and apply each one once.

A webhook is stored and applied in one transaction (one commit on the hot
path); when applying fails, the transaction rolls back and the raw row alone
is committed as ``failed`` with the error, so nothing Twilio told us is lost
and ``replay_failed`` can apply it later. The ``dedupe_key`` is unique: a
retried, replayed or fallback-URL copy of a callback finds its row and is
answered without being applied again (Twilio's ``I-Twilio-Idempotency-Token``
is kept too, for the record).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contactcenter.channels.phone.models import TwilioWebhook
from contactcenter.db import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PARAM = 4000
MAX_PARAMS = 200


@dataclass(frozen=True)
class Webhook:
    """One webhook as received: where, its parameters (first value each) and raw body."""

    endpoint: str
    params: Mapping[str, str]
    payload: bytes
    content_type: str = "application/x-www-form-urlencoded"
    query: str = ""
    idempotency_token: str = ""

    def get(self, name: str, default: str = "", limit: int = 500) -> str:
        """Return a parameter, stripped and bounded (unknown parameters are simply unread)."""
        return (self.params.get(name) or default).strip()[:limit]

    def number(self, name: str) -> int | None:
        """Return an integer parameter, or None when absent or malformed."""
        value = self.get(name, limit=20)
        return int(value) if value.isdigit() else None


def parse_params(body: bytes, query: str = "") -> dict[str, str]:
    """Parse a form body (plus the query string), keeping the first value of each name."""
    params: dict[str, str] = {}
    for text in (body.decode("utf-8", "replace"), query):
        for name, value in parse_qsl(text, keep_blank_values=True)[:MAX_PARAMS]:
            params.setdefault(name[:100], value[:MAX_PARAM])
    return params


class WebhookFailed(Exception):
    """Applying a webhook failed; its raw row is kept as failed (``webhook_id``)."""

    def __init__(self, webhook_id: int | None, error: str) -> None:
        super().__init__(error)
        self.webhook_id = webhook_id


def is_known(session: Session, key: str) -> bool:
    """Whether a webhook with this dedupe key was already received."""
    return session.scalar(select(TwilioWebhook.id).where(TwilioWebhook.dedupe_key == key)) \
        is not None


def _row(hook: Webhook, key: str | None, state: str, error: str = "") -> TwilioWebhook:
    return TwilioWebhook(
        endpoint=hook.endpoint[:32], sid=(hook.get("CallSid") or hook.get("MessageSid")
                                          or hook.get("RecordingSid"))[:64],
        dedupe_key=key[:200] if key else None, idempotency_token=hook.idempotency_token[:200],
        content_type=hook.content_type[:100], query=hook.query[:1000], payload=hook.payload,
        received_at=utcnow(), state=state, error=error[:5000])


def handle(session: Session, hook: Webhook, key: str | None,
           apply: Callable[[Session], T], duplicate: Callable[[Session], T],
           commit: Callable[[Session], object] | None = None) -> T:
    """Store ``hook`` and ``apply`` it in one transaction; a known key runs ``duplicate``.

    ``commit`` finishes the transaction (``commit_and_settle`` when routing was
    touched); on failure the raw row is committed as failed and ``WebhookFailed``
    is raised for the endpoint to answer safely.
    """
    if key is not None and is_known(session, key):
        return duplicate(session)
    row = _row(hook, key, "processed")
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return duplicate(session)
    try:
        result = apply(session)
        (commit or Session.commit)(session)
        return result
    except IntegrityError:
        session.rollback()
        if key is not None and is_known(session, key):
            return duplicate(session)
        error = "integrity error while applying"
        log.exception("twilio webhook %s failed", hook.endpoint)
    except Exception as exc:  # noqa: BLE001 - kept raw and failed, never dropped
        session.rollback()
        error = f"{type(exc).__name__}: {exc}"
        log.exception("twilio webhook %s (%s) failed", hook.endpoint, key)
    failed = _row(hook, key, "failed", error)
    session.add(failed)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return duplicate(session)
    raise WebhookFailed(failed.id, error)


def record(session: Session, hook: Webhook, key: str | None, state: str) -> bool:
    """Store a webhook that needs no processing (a keyword SMS); False when already known."""
    if key is not None and is_known(session, key):
        return False
    session.add(_row(hook, key, state))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
