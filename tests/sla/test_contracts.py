"""Contract entitlement at intake, allowance usage, alerts sent exactly once, their e-mail."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from contactcenter.customers.models import Contract, Organisation
from contactcenter.events import EventLog
from contactcenter.sla.contracts import ContractFacts, decide_entitlement, send_contract_alerts
from contactcenter.sla.models import (
    ContractAlert,
    ContractUsage,
    Entitlement,
    SlaNotification,
    TicketSla,
)
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import change_status
from tests.factories import make_contact, make_customer, make_inbox, make_queue, make_user
from tests.sla.conftest import MONDAY

TODAY = MONDAY.date()


def contract(session, customer=None, organisation=None, **fields):
    row = Contract(external_id=fields.pop("external_id", f"C-{id(fields)}"),
                   customer_id=customer.id if customer else None,
                   organisation_id=organisation.id if organisation else None,
                   level=fields.pop("level", "Gold"),
                   starts_on=fields.pop("starts_on", dt.date(2026, 1, 1)),
                   ends_on=fields.pop("ends_on", dt.date(2026, 12, 31)), **fields)
    session.add(row)
    session.commit()
    return row


def facts(**kw):
    base = dict(id=1, external_id="C-1", level="Gold", starts_on=dt.date(2026, 1, 1),
                ends_on=dt.date(2026, 12, 31))
    return ContractFacts(**{**base, **kw})


@pytest.mark.parametrize(("contracts", "state", "note"), [
    ([], Entitlement.NONE, ""),
    ([facts()], Entitlement.COVERED, "Gold, until 2026-12-31"),
    ([facts(allowance_kind="incidents", allowance_amount=Decimal(10),
            allowance_used=Decimal(7))], Entitlement.COVERED, "Gold, 3 of 10 incidents left"),
    ([facts(allowance_kind="hours", allowance_amount=Decimal("20"),
            allowance_used=Decimal("12.5"))], Entitlement.COVERED, "Gold, 7.5 of 20 hours left"),
    ([facts(allowance_kind="incidents", allowance_amount=Decimal(10),
            allowance_used=Decimal(10))], Entitlement.EXHAUSTED,
     "Gold allowance used up: 10 of 10 incidents used"),
    ([facts(ends_on=dt.date(2026, 2, 18))], Entitlement.EXPIRED,
     "contract expired 12 days ago (Gold, C-1)"),
    ([facts(ends_on=dt.date(2026, 3, 1))], Entitlement.EXPIRED,
     "contract expired 1 day ago (Gold, C-1)"),
    ([facts(starts_on=dt.date(2026, 4, 1))], Entitlement.PENDING,
     "Gold contract starts on 2026-04-01"),
    ([facts(id=1, ends_on=dt.date(2026, 1, 1)), facts(id=2, level="Silver")],
     Entitlement.COVERED, "Silver, until 2026-12-31"),
])
def test_decide_entitlement(contracts, state, note):
    result = decide_entitlement(contracts, TODAY)
    assert (result.state, result.note) == (state, note)


def ingest(session, settings, sender, now=MONDAY, queue=None):
    inbox = make_inbox(session, queue or make_queue(session))
    result = ingest_inbound(session, make_contact(sender=sender, inbox_id=inbox.id),
                            settings=settings, now=now)
    return session.get(Ticket, result.ticket_id)


def test_active_contract_sets_the_sla_and_raises_priority(session, settings, sla_config):
    customer = make_customer(session, email="gold@example.com")
    contract(session, customer, external_id="C-GOLD", allowance_kind="incidents",
             allowance_amount=Decimal(10), allowance_used=Decimal(6))
    ticket = ingest(session, settings, "gold@example.com")
    sla = session.get(TicketSla, ticket.id)
    assert ticket.priority == "high"
    assert sla.policy_name == "Gold" and sla.entitlement == "covered"
    assert "contract level = Gold" in sla.reason
    assert sla.entitlement_note == "Gold, 4 of 10 incidents left"
    # The incident is counted once, however often the customer writes on the ticket.
    ingest_inbound(session, make_contact(sender="gold@example.com", inbox_id=ticket.inbox_id),
                   settings=settings, now=MONDAY + dt.timedelta(minutes=5))
    row = session.scalars(select(Contract).where(Contract.external_id == "C-GOLD")).one()
    assert row.allowance_used == 7
    assert session.scalar(select(func.count(ContractUsage.id))) == 1


def test_contract_response_commitment_selects_its_policy(session, settings, sla_config):
    from contactcenter.sla.models import SlaPolicy

    standard = session.scalars(select(SlaPolicy).where(SlaPolicy.name == "Standard")).one()
    customer = make_customer(session, email="committed@example.com")
    contract(session, customer, external_id="C-COMMIT", level="Bronze",
             sla_policy_id=standard.id, response_minutes=30)
    ticket = ingest(session, settings, "committed@example.com")
    sla = session.get(TicketSla, ticket.id)
    assert sla.policy_name == "Standard"
    assert sla.reason.startswith("contract C-COMMIT (Bronze) commits to Standard")
    assert "first response within 30 min" in sla.reason


def test_organisation_contract_covers_its_people(session, settings, sla_config):
    org = Organisation(name="Acme", external_id="ACME")
    session.add(org)
    session.flush()
    make_customer(session, email="worker@acme.example", organisation=org)
    contract(session, organisation=org, external_id="C-ORG")
    ticket = ingest(session, settings, "worker@acme.example")
    assert session.get(TicketSla, ticket.id).entitlement == "covered"


def test_expired_contract_flags_the_ticket_and_routes_to_renewals(session, settings,
                                                                   sla_config):
    renewals = make_queue(session, "renewals")
    settings = settings.replace(sla_entitlement_queue="renewals")
    customer = make_customer(session, email="lapsed@example.com")
    contract(session, customer, external_id="C-OLD", ends_on=dt.date(2026, 2, 18))
    from contactcenter import hooks
    from contactcenter.sla import hooks as sla_hooks

    seen: list[list[str]] = []

    def spy(ctx):
        seen.append(list(ctx.flags))

    hooks.INTAKE_HOOKS.insert(hooks.INTAKE_HOOKS.index(sla_hooks.start_clocks) + 1, spy)
    try:
        ticket = ingest(session, settings, "lapsed@example.com")
    finally:
        hooks.INTAKE_HOOKS.remove(spy)
    sla = session.get(TicketSla, ticket.id)
    assert sla.entitlement == "expired"
    assert sla.entitlement_note == "contract expired 12 days ago (Gold, C-OLD)"
    assert seen == [["contract expired 12 days ago (Gold, C-OLD)"]]
    assert ticket.queue_id == renewals.id and ticket.priority == "normal"
    assert sla.policy_name == "Standard"


def test_exhausted_allowance_flags_and_does_not_count_again(session, settings, sla_config):
    customer = make_customer(session, email="spent@example.com")
    contract(session, customer, external_id="C-SPENT", allowance_kind="incidents",
             allowance_amount=Decimal(2), allowance_used=Decimal(2))
    ticket = ingest(session, settings, "spent@example.com")
    sla = session.get(TicketSla, ticket.id)
    assert sla.entitlement == "exhausted"
    assert sla.entitlement_note == "Gold allowance used up: 2 of 2 incidents used"
    assert session.scalar(select(func.count(ContractUsage.id))) == 0


def test_hours_allowance_counts_handling_time_at_solve_without_doubling(session, settings,
                                                                        sla_config):
    from contactcenter.routing.models import RoutingItem

    customer = make_customer(session, email="hours@example.com")
    row = contract(session, customer, external_id="C-HOURS", allowance_kind="hours",
                   allowance_amount=Decimal(10))
    ticket = ingest(session, settings, "hours@example.com")
    item = session.scalars(select(RoutingItem).where(RoutingItem.ticket_id == ticket.id)).one()
    item.handle_seconds = 90 * 60
    change_status(session, ticket, "solved", None, MONDAY + dt.timedelta(hours=2))
    session.commit()
    assert session.get(Contract, row.id).allowance_used == Decimal("1.50")
    change_status(session, ticket, "open", None, MONDAY + dt.timedelta(hours=3))
    change_status(session, ticket, "solved", None, MONDAY + dt.timedelta(hours=4))
    session.commit()
    assert session.get(Contract, row.id).allowance_used == Decimal("1.50")


def alerts(session):
    return sorted((a.contract_id, a.kind) for a in session.scalars(select(ContractAlert)))


def test_expiry_alerts_go_out_exactly_once_at_30_7_and_1_days(session, settings):
    owner = make_user(session, email="owner@example.test")
    make_user(session, "supervisor", email="boss@example.test")
    customer = make_customer(session)
    row = contract(session, customer, external_id="C-END", ends_on=dt.date(2026, 4, 30),
                   account_owner_id=owner.id)
    day = dt.datetime(2026, 3, 20, 8, tzinfo=dt.UTC)   # 41 days before: nothing yet
    assert send_contract_alerts(session, settings, day) == []
    sent = []
    for offset in range(0, 45):
        now = day + dt.timedelta(days=offset)
        sent += send_contract_alerts(session, settings, now)
        sent += send_contract_alerts(session, settings, now)  # a repeated run adds nothing
        session.commit()
    assert sent == [f"{row.id}:expiry_30d", f"{row.id}:expiry_7d", f"{row.id}:expiry_1d",
                    f"{row.id}:expired"]
    events = session.scalars(select(EventLog.type).where(EventLog.type.like("contract.%"))).all()
    assert events == ["contract.expiring"] * 3 + ["contract.expired"]
    recipients = set(session.scalars(select(SlaNotification.recipient)))
    assert recipients == {"owner@example.test", "boss@example.test"}
    assert session.scalar(select(func.count(SlaNotification.id))) == 8


def test_a_contract_entered_late_gets_only_the_tightest_alert(session, settings):
    customer = make_customer(session)
    row = contract(session, customer, ends_on=TODAY + dt.timedelta(days=5))
    send_contract_alerts(session, settings, MONDAY)
    session.commit()
    assert alerts(session) == [(row.id, "expiry_7d")]


def test_allowance_alert_at_80_percent_once(session, settings, sla_config):
    customer = make_customer(session, email="eighty@example.com")
    row = contract(session, customer, allowance_kind="incidents", allowance_amount=Decimal(5),
                   allowance_used=Decimal(3))
    send_contract_alerts(session, settings, MONDAY)
    assert alerts(session) == []
    ingest(session, settings, "eighty@example.com")          # the 4th incident: 80 %
    session.commit()
    assert send_contract_alerts(session, settings, MONDAY) == [f"{row.id}:allowance_80"]
    session.commit()
    ingest(session, settings, "eighty@example.com", now=MONDAY + dt.timedelta(days=20))
    assert send_contract_alerts(session, settings, MONDAY) == []


def test_notifications_are_delivered_through_a_real_smtp_server(session, settings):
    from aiosmtpd.controller import Controller

    from contactcenter.sla.notify import deliver_notifications, queue_notification
    from tests.sla.conftest import free_port

    received: list[tuple[str, list[str], bytes]] = []
    done = threading.Event()

    class Handler:
        async def handle_DATA(self, server, smtp_session, envelope):  # noqa: N802
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
            done.set()
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = settings.replace(smtp_relay_host="127.0.0.1", smtp_relay_port=port)
        queue_notification(session, "k1", "ops@example.test", "SLA breached\r\nBcc: x@y",
                           "body", MONDAY)
        queue_notification(session, "k1", "ops@example.test", "again", "body", MONDAY)
        queue_notification(session, "k2", "bad\r\naddress@example.test", "x", "y", MONDAY)
        session.commit()
        counts = deliver_notifications(session, settings, MONDAY)
        assert counts == {"sent": 1, "retry": 0, "failed": 0}
        assert done.wait(5)
        mail_from, rcpts, content = received[0]
        assert rcpts == ["ops@example.test"]
        headers = content.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert not any(h.lower().startswith(b"bcc") for h in headers)
        assert b"Subject: SLA breached Bcc: x@y" in headers
        assert deliver_notifications(session, settings, MONDAY)["sent"] == 0
    finally:
        controller.stop()


def test_relay_down_is_retried_later(session, settings):
    from contactcenter.sla.notify import deliver_notifications, queue_notification
    from tests.sla.conftest import free_port

    settings = settings.replace(smtp_relay_host="127.0.0.1", smtp_relay_port=free_port(),
                                smtp_relay_timeout_seconds=2)
    queue_notification(session, "k", "ops@example.test", "s", "b", MONDAY)
    session.commit()
    assert deliver_notifications(session, settings, MONDAY) == {"sent": 0, "retry": 1,
                                                                "failed": 0}
    row = session.scalars(select(SlaNotification)).one()
    assert row.state == "pending" and row.next_attempt_at > MONDAY


def test_import_contracts_with_sla_columns(session, sla_config):
    from contactcenter.customers.import_rows import RowProblem, apply_contract
    from contactcenter.customers.models import Product
    from contactcenter.sla.models import contract_products

    org = Organisation(name="Acme", external_id="ACME")
    owner = make_user(session, email="am@example.test")
    session.add_all([org, Product(sku="SUP-GOLD", name="Gold support"),
                     Product(sku="ROUTER", name="Router")])
    session.commit()
    record = {"external_id": "C-IMP", "organisation_external_id": "ACME", "level": "Gold",
              "starts_on": "2026-01-01", "ends_on": "2026-12-31",
              "calendar": "office berlin", "sla_policy": "Gold", "allowance_kind": "Hours",
              "allowance_amount": "40", "renewal_state": "pending",
              "account_owner": "AM@example.test", "products": "SUP-GOLD; ROUTER"}
    assert apply_contract(session, record) == "created"
    assert apply_contract(session, record) == "unchanged"
    row = session.scalars(select(Contract).where(Contract.external_id == "C-IMP")).one()
    assert (row.organisation_id, row.customer_id, row.allowance_kind, row.account_owner_id) \
        == (org.id, None, "hours", owner.id)
    assert row.allowance_amount == 40 and row.renewal_state == "pending"
    assert len(session.execute(select(contract_products)).all()) == 2
    for bad in ({"allowance_kind": "beers"}, {"calendar": "nowhere"},
                {"organisation_external_id": ""}):
        with pytest.raises(RowProblem):
            apply_contract(session, {**record, "external_id": "C-BAD", **bad})
