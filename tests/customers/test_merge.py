"""Merging two customers into one, and undoing exactly that merge."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AuditLog, User
from contactcenter.accounts.service import create_user
from contactcenter.config import Settings
from contactcenter.customers.errors import CustomerNotFoundError, MergeError
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    CustomerMerge,
    Organisation,
    Product,
    Purchase,
)
from contactcenter.customers.service import (
    add_identity,
    find_customer_by_identity,
    get_customer,
    identify_customer,
    merge_customers,
    undo_merge,
)
from contactcenter.events import RecordingPublisher
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Message, Ticket
from tests.factories import make_contact, make_customer, seq

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def make_supervisor(session: Session) -> User:
    return create_user(session, f"sup{seq()}@example.test", "Sue", None, ["supervisor"])


def add_purchase(session: Session, customer: Customer, product: Product,
                 amount: str = "10.00") -> Purchase:
    purchase = Purchase(external_id=f"P-{seq()}", customer_id=customer.id, product_id=product.id,
                        amount=Decimal(amount), purchased_at=T0)
    session.add(purchase)
    session.flush()
    return purchase


def add_contract(session: Session, customer: Customer) -> Contract:
    contract = Contract(external_id=f"K-{seq()}", customer_id=customer.id, level="gold",
                        starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31),
                        value=Decimal("1200.00"))
    session.add(contract)
    session.flush()
    return contract


def ids_of(session: Session, model: Any, customer_id: int) -> set[int]:
    return set(session.scalars(select(model.id).where(model.customer_id == customer_id)))


def owners(session: Session) -> dict[str, dict[int, set[int]]]:
    """Every record's id by customer, per kind."""
    result: dict[str, dict[int, set[int]]] = {}
    for name, model in (("identities", CustomerIdentity), ("tickets", Ticket),
                        ("messages", Message), ("purchases", Purchase),
                        ("contracts", Contract)):
        table: dict[int, set[int]] = {}
        for rid, cid in session.execute(select(model.id, model.customer_id)):
            assert cid is not None
            table.setdefault(cid, set()).add(rid)
        result[name] = table
    return result


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, Any]:
    """Two customers with identities, tickets, messages, purchases and contracts."""
    product = Product(sku=f"SKU-{seq()}", name="Router", price=Decimal("99.00"))
    org = Organisation(name="Romashka LLC")
    session.add_all([product, org])
    survivor = make_customer(session, "Anna Petrova", email="anna@example.com")
    merged = make_customer(session, "Boris", email="boris@example.com", phone="+79161234567",
                           language="ru", organisation=org, external_id="CRM-B")
    session.commit()
    survivor_ticket = ingest_inbound(session, make_contact(sender="anna@example.com"),
                                     settings=settings, now=T0)
    merged_tickets = [
        ingest_inbound(session, make_contact(sender="boris@example.com"), settings=settings,
                       now=T0),
        ingest_inbound(session, make_contact(sender="boris@example.com"), settings=settings,
                       now=T0),  # appended to the same ticket
        ingest_inbound(session, make_contact(kind="phone", sender="+7 916 123 45 67",
                                             channel="sms"), settings=settings, now=T0),
    ]
    purchases = [add_purchase(session, merged, product), add_purchase(session, merged, product)]
    contract = add_contract(session, merged)
    survivor_purchase = add_purchase(session, survivor, product)
    actor = make_supervisor(session)
    session.commit()
    return {"survivor": survivor, "merged": merged, "product": product, "org": org,
            "actor": actor, "survivor_ticket": survivor_ticket, "merged_tickets": merged_tickets,
            "purchases": purchases, "contract": contract, "survivor_purchase": survivor_purchase}


def test_merge_moves_everything_to_the_survivor(session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    before = owners(session)
    merged_records = {kind: table.get(merged.id, set()) for kind, table in before.items()}
    assert {k: len(v) for k, v in merged_records.items()} == {
        "identities": 2, "tickets": 2, "messages": 3, "purchases": 2, "contracts": 1}

    record = merge_customers(session, survivor.id, merged.id, world["actor"].id)
    session.commit()

    after = owners(session)
    for kind, moved_ids in merged_records.items():
        assert merged.id not in after[kind], kind
        assert after[kind][survivor.id] == before[kind].get(survivor.id, set()) | moved_ids, kind
        assert set(record.moved[kind]) == moved_ids, kind
    session.expire_all()
    assert session.get(Customer, merged.id).merged_into_id == survivor.id  # type: ignore[union-attr]
    assert session.get(Customer, survivor.id).merged_into_id is None  # type: ignore[union-attr]
    assert (record.survivor_id, record.merged_id, record.actor_user_id, record.undone_at) == (
        survivor.id, merged.id, world["actor"].id, None)


def test_merge_fills_blank_survivor_fields(session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    survivor.name = ""
    session.commit()
    record = merge_customers(session, survivor.id, merged.id, None)
    session.commit()
    session.expire_all()
    s = session.get(Customer, survivor.id)
    m = session.get(Customer, merged.id)
    assert s is not None and m is not None
    assert (s.name, s.language, s.organisation_id, s.external_id) == (
        "Boris", "ru", world["org"].id, "CRM-B")
    assert m.external_id is None  # unique: it moved
    assert set(record.moved["filled"]) == {"name", "language", "organisation_id", "external_id"}

    undo_merge(session, record.id, None)
    session.commit()
    session.expire_all()
    s = session.get(Customer, survivor.id)
    m = session.get(Customer, merged.id)
    assert s is not None and m is not None
    assert (s.name, s.language, s.organisation_id, s.external_id) == ("", None, None, None)
    assert (m.name, m.language, m.organisation_id, m.external_id) == (
        "Boris", "ru", world["org"].id, "CRM-B")


def test_merge_keeps_the_survivors_own_fields(session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    survivor.language = "en"
    session.commit()
    merge_customers(session, survivor.id, merged.id, None)
    session.commit()
    session.expire_all()
    s = session.get(Customer, survivor.id)
    assert s is not None and (s.name, s.language) == ("Anna Petrova", "en")


def test_merged_addresses_identify_the_survivor(session: Session, world: dict[str, Any],
                                                settings: Settings) -> None:
    survivor, merged = world["survivor"], world["merged"]
    merge_customers(session, survivor.id, merged.id, None)
    session.commit()

    customer, created = identify_customer(session, "email", " BORIS@example.com ")
    assert (customer.id, created) == (survivor.id, False)
    customer, created = identify_customer(session, "phone", "+7 (916) 123-45-67")
    assert (customer.id, created) == (survivor.id, False)
    assert find_customer_by_identity(session, "email", "boris@example.com").id == survivor.id  # type: ignore[union-attr]
    assert get_customer(session, merged.id).id == survivor.id
    # New mail from the merged address lands on the survivor and one of its open tickets.
    result = ingest_inbound(session, make_contact(sender="boris@example.com"),
                            settings=settings, now=T0 + dt.timedelta(hours=1))
    assert (result.status, result.customer_id) == ("appended", survivor.id)
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None and ticket.customer_id == survivor.id
    assert session.scalar(select(Customer.id).where(Customer.id == merged.id)) == merged.id


def test_merge_writes_an_audit_row(session: Session, world: dict[str, Any]) -> None:
    survivor, merged, actor = world["survivor"], world["merged"], world["actor"]
    record = merge_customers(session, survivor.id, merged.id, actor.id)
    session.commit()
    rows = list(session.scalars(select(AuditLog).where(AuditLog.action == "customer.merge")))
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor_user_id, row.object_type, row.object_id) == (
        actor.id, "customer", str(survivor.id))
    assert str(merged.id) in row.detail and str(record.id) in row.detail


def test_merge_publishes_customer_merged_after_commit(
        session: Session, world: dict[str, Any], events: RecordingPublisher) -> None:
    survivor, merged = world["survivor"], world["merged"]
    events.published.clear()
    record = merge_customers(session, survivor.id, merged.id, None)
    assert events.published == []
    session.commit()
    assert [e.type for e in events.published] == ["customer.merged"]
    envelope = events.published[0]
    assert envelope.payload == {"survivor_id": survivor.id, "merged_id": merged.id,
                                "merge_id": record.id}
    assert set(envelope.rooms) >= {f"customer:{survivor.id}", f"customer:{merged.id}"}


def test_rolled_back_merge_changes_nothing(session: Session, world: dict[str, Any],
                                           events: RecordingPublisher) -> None:
    before = owners(session)
    events.published.clear()
    merge_customers(session, world["survivor"].id, world["merged"].id, None)
    session.rollback()
    assert owners(session) == before
    assert events.published == []
    assert session.scalar(select(CustomerMerge.id)) is None


def test_undo_puts_back_exactly_what_moved(session: Session, world: dict[str, Any],
                                           settings: Settings, events: RecordingPublisher
                                           ) -> None:
    survivor, merged, actor = world["survivor"], world["merged"], world["actor"]
    before = owners(session)
    record = merge_customers(session, survivor.id, merged.id, actor.id)
    session.commit()

    # Records that arrive on the survivor after the merge...
    late_ticket = ingest_inbound(session, make_contact(sender="boris@example.com",
                                                       thread_on_open_ticket=False),
                                 settings=settings, now=T0 + dt.timedelta(hours=2))
    survivor_row = session.get(Customer, survivor.id)
    assert survivor_row is not None
    late_identity = add_identity(session, survivor_row, "email", "anna.p@example.org")
    late_purchase = add_purchase(session, survivor_row, world["product"])
    late_contract = add_contract(session, survivor_row)
    session.commit()
    assert late_ticket.customer_id == survivor.id
    events.published.clear()

    undone = undo_merge(session, record.id, actor.id)
    session.commit()

    after = owners(session)
    assert late_ticket.ticket_id is not None and late_ticket.message_id is not None
    late = {"identities": {late_identity.id}, "tickets": {late_ticket.ticket_id},
            "messages": {late_ticket.message_id}, "purchases": {late_purchase.id},
            "contracts": {late_contract.id}}
    for kind in after:
        # ...stay with the survivor; everything that moved goes back.
        assert after[kind].get(merged.id, set()) == before[kind].get(merged.id, set()), kind
        assert after[kind][survivor.id] == before[kind].get(survivor.id, set()) | late[kind], kind
    session.expire_all()
    assert session.get(Customer, merged.id).merged_into_id is None  # type: ignore[union-attr]
    assert session.get(CustomerMerge, record.id).undone_at is not None  # type: ignore[union-attr]
    assert undone.id == record.id
    customer, _ = identify_customer(session, "email", "boris@example.com")
    assert customer.id == merged.id

    audit = list(session.scalars(select(AuditLog).where(AuditLog.action == "customer.unmerge")))
    assert [(a.actor_user_id, a.object_id) for a in audit] == [(actor.id, str(merged.id))]
    assert [e.type for e in events.published] == ["customer.unmerged"]


def test_undo_twice_is_refused(session: Session, world: dict[str, Any]) -> None:
    record = merge_customers(session, world["survivor"].id, world["merged"].id, None)
    session.commit()
    undo_merge(session, record.id, None)
    session.commit()
    before = owners(session)
    with pytest.raises(MergeError, match="already undone"):
        undo_merge(session, record.id, None)
    assert owners(session) == before


def test_undo_of_unknown_merge_is_refused(session: Session) -> None:
    with pytest.raises(CustomerNotFoundError, match="no merge 999999"):
        undo_merge(session, 999_999, None)


def test_merging_into_itself_is_refused(session: Session, world: dict[str, Any]) -> None:
    survivor = world["survivor"]
    with pytest.raises(MergeError):
        merge_customers(session, survivor.id, survivor.id, None)
    assert session.scalar(select(CustomerMerge.id)) is None


def test_merging_into_a_customer_it_already_became_is_refused(
        session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    merge_customers(session, survivor.id, merged.id, None)
    session.commit()
    with pytest.raises(MergeError):
        merge_customers(session, survivor.id, merged.id, None)  # already merged
    with pytest.raises(MergeError):
        merge_customers(session, merged.id, survivor.id, None)  # merged resolves to survivor


def test_merge_into_a_merged_customer_goes_to_its_survivor(
        session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    third = make_customer(session, "Carl", email="carl@example.com")
    session.commit()
    merge_customers(session, survivor.id, merged.id, None)
    session.commit()
    record = merge_customers(session, merged.id, third.id, None)
    session.commit()
    assert record.survivor_id == survivor.id
    customer, _ = identify_customer(session, "email", "carl@example.com")
    assert customer.id == survivor.id


def test_undo_out_of_order_is_refused(session: Session, world: dict[str, Any]) -> None:
    survivor, merged = world["survivor"], world["merged"]
    first = merge_customers(session, survivor.id, merged.id, None)
    session.commit()
    fourth = make_customer(session, "Dora", email="dora@example.com")
    session.commit()
    second = merge_customers(session, fourth.id, survivor.id, None)  # survivor merged away
    session.commit()
    with pytest.raises(MergeError, match=f"undo merge {second.id} first"):
        undo_merge(session, first.id, None)
    undo_merge(session, second.id, None)
    session.commit()
    undo_merge(session, first.id, None)
    session.commit()
    assert identify_customer(session, "email", "boris@example.com")[0].id == merged.id
    assert identify_customer(session, "email", "anna@example.com")[0].id == survivor.id
    assert identify_customer(session, "email", "dora@example.com")[0].id == fourth.id
