"""Small builders with lazy defaults for tests."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.accounts.service import create_user, issue_token
from contactcenter.channels.base import AttachmentRef, Identity, InboundContact, ThreadHints
from contactcenter.customers.models import Customer, CustomerIdentity, Organisation
from contactcenter.tickets.models import Inbox, Queue, QueueMember

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def seq() -> int:
    """Return a number unique in this test run."""
    return next(_seq)


def make_contact(*, sender: str | None = None, kind: str = "email", channel: str = "api",
                 external_id: str | None = None, subject: str = "Help with my router",
                 text: str = "It blinks red.", html: str = "", name: str = "Anna Petrova",
                 ticket_number: int | None = None, reply_token: str | None = None,
                 in_reply_to: tuple[str, ...] = (), thread_on_open_ticket: bool = True,
                 inbox_id: int | None = None, attachments: tuple[AttachmentRef, ...] = (),
                 other: tuple[Identity, ...] = (), raw_id: int | None = None) -> InboundContact:
    """Return a contact with sensible defaults."""
    n = seq()
    return InboundContact(
        channel=channel, external_id=external_id or f"ext-{n}",
        sender=Identity(kind, sender or f"customer{n}@example.com", name),
        subject=subject, text=text, html=html, inbox_id=inbox_id,
        thread=ThreadHints(ticket_number=ticket_number, reply_token=reply_token,
                           in_reply_to=in_reply_to, thread_on_open_ticket=thread_on_open_ticket),
        attachments=attachments, other_identities=other, raw_id=raw_id,
    )


def make_customer(session: Session, name: str = "Ivan Ivanov", *, email: str | None = None,
                  phone: str | None = None, organisation: Organisation | None = None,
                  **fields: Any) -> Customer:
    """Create a customer with an email identity (and a phone one if given)."""
    customer = Customer(name=name, organisation=organisation, **fields)
    session.add(customer)
    customer.identities.append(CustomerIdentity(kind="email",
                                                address=email or f"c{seq()}@example.com"))
    if phone:
        customer.identities.append(CustomerIdentity(kind="phone", address=phone))
    session.flush()
    return customer


def make_queue(session: Session, slug: str | None = None) -> Queue:
    """Create a queue."""
    slug = slug or f"queue-{seq()}"
    queue = Queue(slug=slug, name=slug.title())
    session.add(queue)
    session.flush()
    return queue


def make_inbox(session: Session, queue: Queue | None = None, channel: str = "api",
               reopen_window_days: int | None = None) -> Inbox:
    """Create an inbox routed to a queue."""
    inbox = Inbox(name=f"Inbox {seq()}", channel=channel, address=f"support{seq()}@example.test",
                  queue_id=queue.id if queue else None, reopen_window_days=reopen_window_days)
    session.add(inbox)
    session.flush()
    return inbox


def make_user(session: Session, *roles: str, email: str | None = None,
              queues: tuple[Queue, ...] = (), financial: bool = False) -> User:
    """Create a user with roles (agent by default) and queue memberships."""
    user = create_user(session, email or f"user{seq()}@example.test", "Test User", PASSWORD,
                       roles or ("agent",), financial_access=financial)
    for queue in queues:
        session.add(QueueMember(queue_id=queue.id, user_id=user.id))
    session.flush()
    return user


def make_token(session: Session, user: User) -> str:
    """Issue an API token for a user and commit."""
    token = issue_token(session, user, "test")
    session.commit()
    return token


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}
