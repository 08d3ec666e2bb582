"""Fixtures shared by the email tests: a throwaway Dovecot, an IMAP-ready database, and
the inbox at a test module's ``INBOX`` address with a ``receive`` that delivers to it."""

from typing import Any

import pytest
from sqlalchemy.orm import Session

from contactcenter.channels.email.receive import Received, receive_email
from contactcenter.config import Settings
from contactcenter.tickets.models import Inbox
from tests.channels.email.dovecot import (  # noqa: F401 (fixtures, registered by import)
    dovecot_fixture,
    dovecot_without_idle_fixture,
    imap_db_fixture,
    imap_settings_fixture,
)


@pytest.fixture
def inbox(request: pytest.FixtureRequest, session: Session) -> Inbox:
    """The e-mail inbox at the requesting module's ``INBOX`` address."""
    box = Inbox(name="Help", channel="email", address=request.module.INBOX)
    session.add(box)
    session.commit()
    return box


@pytest.fixture
def receive(session: Session, settings: Settings, registry: Any, inbox: Inbox) -> Any:
    """Deliver raw bytes to ``inbox`` through the SMTP server's receive path."""
    def deliver(raw: bytes) -> Received:
        return receive_email(session, raw, registry, settings, inbox.id)

    return deliver
