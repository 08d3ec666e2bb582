"""Intake, migrations, time zones, concurrency and merges on a real PostgreSQL server.

Every test uses ``pg_db`` (a throwaway database migrated to head with Alembic and
emptied after each test). Without a server they are skipped, unless ``CI=true``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from contactcenter.config import Settings
from contactcenter.customers.models import Customer, CustomerIdentity, CustomerMerge
from contactcenter.customers.service import (
    find_customer_by_identity,
    identify_customer,
    merge_customers,
    undo_merge,
)
from contactcenter.db import Base, Database, import_models
from contactcenter.tickets.intake import TICKET_NUMBER_START, IntakeResult, ingest_inbound
from contactcenter.tickets.models import Message, Ticket, TicketStatus
from tests.factories import make_contact, seq

pytestmark = pytest.mark.postgres

THREADS = 8
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def pg_settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-not-for-production",
                    testing=True)


def count(db: Database, model: Any, *where: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def run_threads(fn: Callable[[int], Any], n: int = THREADS) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(i)`` in ``n`` threads released together; return results and exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung (deadlock?)"
    return results, errors


# --- schema --------------------------------------------------------------------------

def test_migrations_at_head_match_the_models(pg_db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import_models()
    with pg_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
        diff = compare_metadata(context, Base.metadata)
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert diff == []
    assert version is not None
    assert set(inspect(pg_db.engine).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}


# --- intake behaves as on SQLite -----------------------------------------------------

def _scenario(db: Database, settings: Settings) -> list[tuple[Any, ...]]:
    """Create, thread (four ways), deduplicate and open a second ticket; return the outcomes."""
    tag = seq()
    sender = f"scenario{tag}@example.com"
    outcomes: list[IntakeResult] = []

    def ingest(**kw: Any) -> IntakeResult:
        contact = make_contact(sender=sender, **kw)
        with db.session() as s:
            result = ingest_inbound(s, contact, settings=settings, now=NOW)
        outcomes.append(result)
        return result

    first = ingest(external_id=f"<a{tag}@mail>", subject="Router blinks red")
    ingest(external_id=f"<b{tag}@mail>", in_reply_to=(f"<a{tag}@mail>",), subject="Re: router")
    ingest(external_id=f"<c{tag}@mail>", ticket_number=first.ticket_number, subject="[#n]")
    ingest(external_id=f"<d{tag}@mail>", subject="Still broken")
    ingest(external_id=f"<b{tag}@mail>", in_reply_to=(f"<a{tag}@mail>",), subject="Re: router")
    ingest(external_id=f"<e{tag}@mail>", subject="Another thing", thread_on_open_ticket=False)
    # A stranger quoting the ticket number without the reply token gets a new ticket.
    with db.session() as s:
        stranger = ingest_inbound(s, make_contact(sender=f"stranger{tag}@example.com",
                                                  ticket_number=first.ticket_number),
                                  settings=settings, now=NOW)
    outcomes.append(stranger)
    # With the ticket's reply token the number is enough, whoever writes.
    with db.session() as s:
        token = s.scalar(select(Ticket.reply_token).where(Ticket.id == first.ticket_id))
        helper = ingest_inbound(s, make_contact(sender=f"helper{tag}@example.com",
                                                ticket_number=first.ticket_number,
                                                reply_token=token),
                                settings=settings, now=NOW)
    outcomes.append(helper)
    first_number = first.ticket_number or 0
    return [(r.status, r.rule, (r.ticket_number or 0) - first_number, r.reopened)
            for r in outcomes]


EXPECTED_SCENARIO = [
    ("created", "new_ticket", 0, False),
    ("appended", "reply_headers", 0, False),
    ("appended", "explicit_reference", 0, False),
    ("appended", "open_ticket", 0, False),
    ("duplicate", "duplicate", 0, False),
    ("created", "new_ticket", 1, False),
    ("created", "new_ticket", 2, False),
    ("appended", "explicit_reference", 0, False),
]


def test_intake_creates_threads_and_deduplicates_like_sqlite(
        pg_db: Database, db: Database, pg_settings: Settings) -> None:
    on_postgres = _scenario(pg_db, pg_settings)
    on_sqlite = _scenario(db, pg_settings)
    assert on_postgres == EXPECTED_SCENARIO
    assert on_postgres == on_sqlite
    assert count(pg_db, Ticket) == 3
    assert count(pg_db, Message) == 7  # eight contacts, one redelivery
    assert count(pg_db, Customer) == 3
    with pg_db.session() as s:
        numbers = sorted(s.scalars(select(Ticket.number)))
    assert numbers == [TICKET_NUMBER_START, TICKET_NUMBER_START + 1, TICKET_NUMBER_START + 2]


def test_intake_reopens_a_solved_ticket(pg_db: Database, pg_settings: Settings) -> None:
    sender = f"reopen{seq()}@example.com"
    with pg_db.session() as s:
        first = ingest_inbound(s, make_contact(sender=sender), settings=pg_settings, now=NOW)
        ticket = s.get(Ticket, first.ticket_id)
        assert ticket is not None
        ticket.status = TicketStatus.SOLVED
        ticket.solved_at = NOW
        s.commit()
    with pg_db.session() as s:
        again = ingest_inbound(s, make_contact(sender=sender), settings=pg_settings,
                               now=NOW + dt.timedelta(days=2))
    assert (again.status, again.ticket_id, again.reopened) == ("appended", first.ticket_id, True)
    with pg_db.session() as s:
        ticket = s.get(Ticket, first.ticket_id)
        assert ticket is not None
        assert (ticket.status, ticket.reopen_count, ticket.solved_at) == ("open", 1, None)


# --- time zones ----------------------------------------------------------------------

def test_timestamps_come_back_timezone_aware_utc(pg_db: Database, pg_settings: Settings) -> None:
    moscow = dt.timezone(dt.timedelta(hours=3))
    received = dt.datetime(2026, 3, 2, 12, 30, 15, 123456, tzinfo=moscow)
    contact = dataclasses.replace(make_contact(), received_at=received)
    with pg_db.session() as s:
        result = ingest_inbound(s, contact, settings=pg_settings, now=NOW)
    with pg_db.session() as s:
        message = s.get(Message, result.message_id)
        ticket = s.get(Ticket, result.ticket_id)
        assert message is not None and ticket is not None
        stamps = [message.received_at, message.created_at, message.updated_at,
                  ticket.created_at, ticket.last_activity_at, ticket.last_customer_message_at,
                  ticket.customer.created_at]
        for stamp in stamps:
            assert stamp is not None
            assert stamp.tzinfo is not None
            assert stamp.utcoffset() == dt.timedelta(0)
        assert message.received_at == received
        assert message.received_at.hour == 9 and message.received_at.microsecond == 123456
        assert ticket.last_activity_at == NOW
        column_type = s.scalar(text(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'messages' AND column_name = 'received_at'"))
    assert column_type == "timestamp with time zone"
    # The session's time zone must not matter.
    with pg_db.engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'America/New_York'"))
        raw = conn.scalar(select(Message.received_at).where(Message.id == result.message_id))
    assert raw == received and raw.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused(pg_db: Database) -> None:
    with pg_db.session() as s:
        s.add(Customer(name="Naive", created_at=dt.datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            s.flush()
        s.rollback()


# --- concurrency ---------------------------------------------------------------------

def test_concurrent_ingest_of_the_same_contact_stores_it_once(
        pg_db: Database, pg_settings: Settings) -> None:
    contact = make_contact(sender=f"race{seq()}@example.com", external_id=f"<race-{seq()}@mail>")

    def ingest(_i: int) -> IntakeResult:
        with pg_db.session() as s:
            return ingest_inbound(s, contact, settings=pg_settings, now=NOW)

    results, errors = run_threads(ingest)
    assert errors == []
    statuses = Tally(r.status for r in results)
    assert statuses == {"created": 1, "duplicate": THREADS - 1}
    assert len({(r.ticket_id, r.message_id, r.customer_id) for r in results}) == 1
    assert count(pg_db, Message, Message.external_id == contact.external_id) == 1
    assert count(pg_db, Ticket) == 1
    assert count(pg_db, Customer) == 1


def test_concurrent_contacts_from_one_new_sender_make_one_customer(
        pg_db: Database, pg_settings: Settings) -> None:
    sender = f"newcomer{seq()}@example.com"
    contacts = [make_contact(sender=sender.upper() if i % 2 else sender,
                             external_id=f"<newcomer-{i}-{seq()}@mail>") for i in range(THREADS)]

    def ingest(i: int) -> IntakeResult:
        with pg_db.session() as s:
            return ingest_inbound(s, contacts[i], settings=pg_settings, now=NOW)

    results, errors = run_threads(ingest)
    assert errors == []
    assert all(r.status in ("created", "appended") for r in results)
    assert len({r.customer_id for r in results}) == 1
    assert count(pg_db, Customer) == 1
    assert count(pg_db, CustomerIdentity) == 1
    assert count(pg_db, Message) == THREADS
    with pg_db.session() as s:
        owners = set(s.scalars(select(Ticket.customer_id)))
    assert owners == {results[0].customer_id}


def test_concurrent_identify_customer_falls_back_to_the_winner(pg_db: Database) -> None:
    address = f"identify{seq()}@example.com"

    def identify(_i: int) -> tuple[int, bool]:
        with pg_db.session() as s:
            customer, created = identify_customer(s, "email", address, name="Racer")
            s.commit()
            return customer.id, created

    results, errors = run_threads(identify)
    assert errors == []
    assert len({cid for cid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert count(pg_db, CustomerIdentity, CustomerIdentity.address == address) == 1


def test_concurrent_new_tickets_get_unique_consecutive_numbers(
        pg_db: Database, pg_settings: Settings) -> None:
    per_thread = 5
    contacts = [[make_contact(sender=f"numbers{seq()}@example.com") for _ in range(per_thread)]
                for _ in range(THREADS)]

    def ingest(i: int) -> list[int]:
        numbers = []
        for contact in contacts[i]:
            with pg_db.session() as s:
                result = ingest_inbound(s, contact, settings=pg_settings, now=NOW)
            assert result.status == "created"
            numbers.append(result.ticket_number)
        return numbers

    # No counter row yet: the first tickets also race to create it.
    assert count(pg_db, Ticket) == 0
    results, errors = run_threads(ingest)
    assert errors == []
    numbers = sorted(n for chunk in results for n in chunk)
    total = THREADS * per_thread
    assert numbers == list(range(TICKET_NUMBER_START, TICKET_NUMBER_START + total))
    with pg_db.session() as s:
        stored = sorted(s.scalars(select(Ticket.number)))
        counter = s.scalar(text("SELECT value FROM counters WHERE name = 'ticket'"))
    assert stored == numbers
    assert counter == TICKET_NUMBER_START + total - 1


# --- merges --------------------------------------------------------------------------

def test_customer_merge_and_undo(pg_db: Database, pg_settings: Settings) -> None:
    anna_mail, anna_phone = f"anna{seq()}@example.com", f"anna.work{seq()}@example.com"
    with pg_db.session() as s:
        a1 = ingest_inbound(s, make_contact(sender=anna_mail, name="Anna"), settings=pg_settings,
                            now=NOW)
        a2 = ingest_inbound(s, make_contact(sender=anna_mail), settings=pg_settings,
                            now=NOW + dt.timedelta(minutes=1))
        b1 = ingest_inbound(s, make_contact(sender=anna_phone, name=""), settings=pg_settings,
                            now=NOW + dt.timedelta(minutes=2))
    survivor_id, merged_id = a1.customer_id, b1.customer_id
    assert survivor_id is not None and merged_id is not None and survivor_id != merged_id
    with pg_db.session() as s:
        merged = s.get(Customer, merged_id)
        assert merged is not None
        merged.language = "ru"
        merged.external_id = f"crm-{seq()}"
        s.commit()
        external_id = merged.external_id

    with pg_db.session() as s:
        record = merge_customers(s, survivor_id, merged_id, None)
        s.commit()
        merge_id = record.id
    with pg_db.session() as s:
        survivor = s.get(Customer, survivor_id)
        merged = s.get(Customer, merged_id)
        assert survivor is not None and merged is not None
        assert merged.merged_into_id == survivor_id
        assert sorted(i.address for i in survivor.identities) == sorted([anna_mail, anna_phone])
        assert (survivor.language, survivor.external_id, merged.external_id) == \
            ("ru", external_id, None)
        assert set(s.scalars(select(Ticket.customer_id))) == {survivor_id}
        assert set(s.scalars(select(Message.customer_id))) == {survivor_id}
        found = find_customer_by_identity(s, "email", anna_phone)
        assert found is not None and found.id == survivor_id
        moved = s.get(CustomerMerge, merge_id)
        assert moved is not None and moved.moved["tickets"] == [b1.ticket_id]
    # New mail from the merged address now lands on the survivor's side.
    with pg_db.session() as s:
        later = ingest_inbound(s, make_contact(sender=anna_phone), settings=pg_settings,
                               now=NOW + dt.timedelta(minutes=3))
    # It threads on the survivor's most recent open ticket: the one that moved over.
    assert (later.customer_id, later.ticket_id) == (survivor_id, b1.ticket_id)

    with pg_db.session() as s:
        undo_merge(s, merge_id, None)
        s.commit()
    with pg_db.session() as s:
        survivor = s.get(Customer, survivor_id)
        merged = s.get(Customer, merged_id)
        assert survivor is not None and merged is not None
        assert merged.merged_into_id is None
        assert [i.address for i in survivor.identities] == [anna_mail]
        assert [i.address for i in merged.identities] == [anna_phone]
        assert (merged.language, merged.external_id) == ("ru", external_id)
        assert (survivor.language, survivor.external_id) == (None, None)
        tickets = {tid: cid for tid, cid in s.execute(select(Ticket.id, Ticket.customer_id))}
        assert tickets[a1.ticket_id] == survivor_id
        assert tickets[b1.ticket_id] == merged_id
        assert a2.ticket_id == a1.ticket_id
        # Undo moves back exactly what the merge moved: the ticket goes home, but the
        # message that arrived on the survivor after the merge stays with it.
        later_owner = s.scalar(select(Message.customer_id).where(Message.id == later.message_id))
        assert later_owner == survivor_id
        assert set(s.scalars(select(Message.customer_id)
                             .where(Message.id != later.message_id))) == {survivor_id, merged_id}
        record = s.get(CustomerMerge, merge_id)
        assert record is not None and record.undone_at is not None
        assert record.undone_at.utcoffset() == dt.timedelta(0)
        audit = s.scalars(text("SELECT action FROM audit_log ORDER BY id")).all()
    assert audit == ["customer.merge", "customer.unmerge"]
