"""Several contacts in one transaction (``ingest email``'s batches) see what the transaction changed.

Intake reads settings-like rows (inboxes, SLA policies, who holds contracts, which
tickets have open article uses) once per transaction; a change written in that same
transaction, or committed before the next one, must still be seen. Attachment
files are fsynced together just before the commit that names them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import AttachmentRef
from contactcenter.config import Settings
from contactcenter.customers.models import Contract
from contactcenter.db import Database
from contactcenter.knowledge.models import Article, ArticleUse, UseOutcome
from contactcenter.sla.models import Entitlement, TicketSla
from contactcenter.tickets import attachments, intake
from contactcenter.tickets.intake import apply_contact, ingest_inbound
from contactcenter.tickets.models import Inbox, Ticket
from tests.factories import make_contact, make_customer, make_inbox, make_queue


def apply(session: Session, settings: Settings, **kwargs: Any) -> Ticket:
    """Apply one contact in a SAVEPOINT of the open transaction, as the batch writer does."""
    with session.begin_nested():
        result = apply_contact(session, make_contact(**kwargs), settings)
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None
    return ticket


def test_an_inbox_changed_in_the_batch_is_seen_by_its_next_contact(
        session: Session, settings: Settings) -> None:
    first_queue, second_queue = make_queue(session), make_queue(session)
    inbox = make_inbox(session, first_queue)
    session.commit()
    assert apply(session, settings, inbox_id=inbox.id).queue_id == first_queue.id
    inbox.queue_id = second_queue.id  # same transaction, not committed
    assert apply(session, settings, inbox_id=inbox.id).queue_id == second_queue.id
    session.commit()


def test_a_change_committed_elsewhere_is_seen_by_the_next_transaction(
        session: Session, settings: Settings, db: Database) -> None:
    first_queue, second_queue = make_queue(session), make_queue(session)
    inbox = make_inbox(session, first_queue)
    session.commit()
    assert apply(session, settings, inbox_id=inbox.id).queue_id == first_queue.id
    session.commit()
    with db.session() as other:  # an administrator moves the inbox meanwhile
        other.execute(Inbox.__table__.update().where(Inbox.id == inbox.id)
                      .values(queue_id=second_queue.id))
        other.commit()
    assert apply(session, settings, inbox_id=inbox.id).queue_id == second_queue.id
    session.rollback()
    # A rolled-back transaction's reads are forgotten too.
    assert apply(session, settings, inbox_id=inbox.id).queue_id == second_queue.id


def test_a_contract_added_in_the_batch_covers_the_next_contact(
        session: Session, settings: Settings) -> None:
    inbox = make_inbox(session, make_queue(session))
    customer = make_customer(session, email="gold@example.com")
    session.commit()
    before = apply(session, settings, sender="gold@example.com", inbox_id=inbox.id,
                   thread_on_open_ticket=False)
    sla = session.get(TicketSla, before.id)
    assert sla is not None and sla.entitlement == Entitlement.NONE
    session.add(Contract(external_id="C-BATCH", customer_id=customer.id, level="Gold",
                         starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2099, 12, 31)))
    session.flush()
    after = apply(session, settings, sender="gold@example.com", inbox_id=inbox.id,
                  thread_on_open_ticket=False)
    sla = session.get(TicketSla, after.id)
    assert sla is not None and sla.entitlement == Entitlement.COVERED
    assert after.priority != before.priority  # entitlement raised it
    # Somebody else's first message in the batch is not slowed by a contract look-up,
    # and is still not covered.
    other = apply(session, settings, sender="new@example.com", inbox_id=inbox.id)
    assert session.get(TicketSla, other.id).entitlement == Entitlement.NONE  # type: ignore[union-attr]
    session.commit()


def test_an_article_use_recorded_in_the_batch_is_failed_by_the_next_message(
        session: Session, settings: Settings) -> None:
    inbox = make_inbox(session, make_queue(session))
    article = Article(title="Restart the router", body="Unplug it.", status="published")
    session.add(article)
    session.commit()
    ticket = apply(session, settings, sender="olga@example.com", inbox_id=inbox.id)
    other = apply(session, settings, sender="boris@example.com", inbox_id=inbox.id)
    # Boris writes again: the batch has now read which tickets have open uses (none).
    assert apply(session, settings, sender="boris@example.com", inbox_id=inbox.id,
                 ticket_number=other.number).id == other.id
    session.add(ArticleUse(article_id=article.id, ticket_id=ticket.id))
    session.flush()
    again = apply(session, settings, sender="olga@example.com", inbox_id=inbox.id,
                  ticket_number=ticket.number, text="Still broken")
    assert again.id == ticket.id
    use = session.scalars(select(ArticleUse)).one()
    assert use.outcome == UseOutcome.FAILED
    session.commit()


def test_attachment_files_are_synced_together_before_the_commit(
        session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[list[Path]] = []
    real = attachments.sync_files

    def recording(paths: list[Path]) -> None:
        synced.append(list(paths))
        real(paths)

    monkeypatch.setattr(intake, "sync_files", recording)
    inbox = make_inbox(session, make_queue(session))
    session.commit()
    files = (AttachmentRef(filename="a.txt", content_type="text/plain", data=b"first file"),
             AttachmentRef(filename="b.txt", content_type="text/plain", data=b"second file"))
    apply(session, settings, inbox_id=inbox.id, attachments=files[:1])
    apply(session, settings, inbox_id=inbox.id, attachments=files[1:])
    assert synced == []  # nothing committed yet, nothing synced yet
    session.commit()
    digests = [hashlib.sha256(f.data).hexdigest() for f in files]
    assert synced == [[attachments.attachment_path(settings.data_dir, d) for d in digests]]
    assert intake.UNSYNCED not in session.info
    # One contact committed on its own: its file is synced at its commit.
    result = ingest_inbound(session, make_contact(inbox_id=inbox.id, attachments=(
        AttachmentRef(filename="c.txt", content_type="text/plain", data=b"third file"),)),
        settings=settings)
    assert result.status == "created" and len(synced) == 2 and len(synced[1]) == 1
    # A rolled-back transaction leaves nothing to sync for the next one.
    apply(session, settings, inbox_id=inbox.id, attachments=(
        AttachmentRef(filename="d.txt", content_type="text/plain", data=b"fourth file"),))
    session.rollback()
    assert intake.UNSYNCED not in session.info
    session.commit()
    assert len(synced) == 2
