"""Notification e-mails of the SLA package: an outbox table and its delivery through the relay.

An alert or breach writes ``SlaNotification`` rows in its own transaction (one
per recipient, unique by key, so a repeated alert cannot mail twice); the
``sla.notify`` job sends what is due through ``CONTACTCENTER_SMTP_RELAY_*``.
A 4xx answer, a timeout or a relay that is down is retried with backoff; a 5xx
answer or a refused address fails the row with the reason. Addresses and
subjects go through the same checks as replies (``channels.email.outbound``):
no CR/LF or other control characters ever reach a header.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.email.outbound import fold_text, validate_address
from contactcenter.config import Settings
from contactcenter.sla.models import NotificationState, SlaNotification

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3600, 3600, 3600)


def queue_notification(session: Session, key: str, recipient: str, subject: str, body: str,
                       now: dt.datetime) -> SlaNotification | None:
    """Add a notification to the outbox unless one with the same key and recipient exists."""
    try:
        address = validate_address(recipient.strip())
    except ValueError as exc:
        log.warning("SLA notification to %r skipped: %s", recipient[:100], exc)
        return None
    dedupe = f"{key}:{address}"[:200]
    if session.scalar(select(SlaNotification.id).where(SlaNotification.dedupe_key == dedupe)):
        return None
    row = SlaNotification(dedupe_key=dedupe, recipient=address, subject=fold_text(subject, 250),
                          body=body[:20_000], state=NotificationState.PENDING,
                          next_attempt_at=now, created_at=now)
    session.add(row)
    return row


def _sender(settings: Settings) -> str:
    return settings.smtp_from_address or f"sla-alerts@{settings.smtp_domain}"


def _build(row: SlaNotification, settings: Settings, now: dt.datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = validate_address(_sender(settings), "sender")
    msg["To"] = validate_address(row.recipient)
    msg["Subject"] = fold_text(row.subject, 250)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(f"sla-{row.id}", domain=settings.smtp_domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg.set_content(row.body or row.subject)
    return msg


def _send(msg: EmailMessage, settings: Settings) -> None:
    host = settings.smtp_relay_host.strip()
    if not host:
        raise ConnectionError("no relay configured (CONTACTCENTER_SMTP_RELAY_HOST)")
    timeout = max(settings.smtp_relay_timeout_seconds, 1)
    smtp: smtplib.SMTP
    if settings.smtp_relay_port == 465:
        smtp = smtplib.SMTP_SSL(host, 465, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, settings.smtp_relay_port, timeout=timeout)
    try:
        smtp.ehlo()
        if settings.smtp_relay_starttls and settings.smtp_relay_port != 465:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_relay_user:
            smtp.login(settings.smtp_relay_user, settings.smtp_relay_password)
        smtp.send_message(msg)
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def deliver_notifications(session: Session, settings: Settings, now: dt.datetime,
                          limit: int = 50) -> dict[str, int]:
    """Send due notifications, one committed transaction each; return counts by outcome."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    query = (select(SlaNotification)
             .where(SlaNotification.state == NotificationState.PENDING,
                    SlaNotification.next_attempt_at <= now)
             .order_by(SlaNotification.next_attempt_at, SlaNotification.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.attempts += 1
        try:
            _send(_build(row, settings, now), settings)
        except smtplib.SMTPResponseException as exc:
            permanent = exc.smtp_code >= 500
            _failed(row, f"{exc.smtp_code} {exc.smtp_error!r}"[:500], permanent, now)
            counts["failed" if permanent else "retry"] += 1
        except smtplib.SMTPRecipientsRefused as exc:
            _failed(row, f"recipient refused: {exc.recipients!r}"[:500], True, now)
            counts["failed"] += 1
        except ValueError as exc:
            _failed(row, str(exc)[:500], True, now)
            counts["failed"] += 1
        except (smtplib.SMTPException, OSError) as exc:
            _failed(row, f"{type(exc).__name__}: {exc}"[:500], False, now)
            counts["retry"] += 1
        else:
            row.state = NotificationState.SENT
            row.sent_at = now
            row.next_attempt_at = None
            row.error = ""
            counts["sent"] += 1
        session.commit()
    return counts


def _failed(row: SlaNotification, error: str, permanent: bool, now: dt.datetime) -> None:
    row.error = error
    if permanent or row.attempts >= MAX_ATTEMPTS:
        row.state = NotificationState.FAILED
        row.next_attempt_at = None
        return
    delay = BACKOFF_SECONDS[min(row.attempts - 1, len(BACKOFF_SECONDS) - 1)]
    row.next_attempt_at = now + dt.timedelta(seconds=delay)
