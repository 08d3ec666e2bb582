"""Shared pieces of the desk tests: cheap password hashing, a small world, signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Inbox, Queue, Ticket
from contactcenter.tickets.service import get_ticket
from tests.factories import PASSWORD, make_contact, make_inbox, make_queue, make_user


@dataclass
class Desk:
    queue_a: Queue
    queue_b: Queue
    inbox_a: Inbox
    inbox_b: Inbox
    agent: User
    supervisor: User
    editor: User
    mine: Ticket
    theirs: Ticket


def ingest(session: Any, settings: Settings, **kwargs: Any) -> Ticket:
    """Ingest one contact (committing) and return its ticket."""
    result = ingest_inbound(session, make_contact(**kwargs), settings=settings)
    assert result.ticket_number is not None
    return get_ticket(session, result.ticket_number)


@pytest.fixture
def desk(session: Any, settings: Settings) -> Desk:
    queue_a, queue_b = make_queue(session, "billing"), make_queue(session, "tech")
    inbox_a, inbox_b = make_inbox(session, queue_a), make_inbox(session, queue_b)
    agent = make_user(session, "agent", email="agent@example.test", queues=(queue_a,))
    supervisor = make_user(session, "supervisor", email="super@example.test")
    editor = make_user(session, "knowledge_editor", email="kb@example.test")
    session.commit()
    mine = ingest(session, settings, inbox_id=inbox_a.id, subject="Invoice is wrong",
                  sender="olga@example.com", name="Olga Smirnova")
    theirs = ingest(session, settings, inbox_id=inbox_b.id, subject="Secret other queue",
                    sender="boris@example.com", name="Boris Hidden")
    return Desk(queue_a, queue_b, inbox_a, inbox_b, agent, supervisor, editor, mine, theirs)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


def login(client: Any, email: str, password: str = PASSWORD, next_: str | None = None) -> Any:
    """Post the sign-in form as a browser would; return the response."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    url = "/login" if next_ is None else "/login?" + _query(next_)
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def csrf_headers(client: Any) -> dict[str, str]:
    """The header a signed-in page sends with its writes (read from the desk page)."""
    return {"X-CSRFToken": csrf_of(client.get("/").get_data(as_text=True))}


@pytest.fixture
def agent(client: Any, desk: Desk) -> dict[str, str]:
    """Sign the desk's agent in on ``client``; return the CSRF header for writes."""
    assert login(client, "agent@example.test").status_code == 302
    return csrf_headers(client)


def _query(next_: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": next_})
