"""The SLA API: a ticket's clocks for whoever may view it, reports and contracts for supervisors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.models import Contract
from contactcenter.db import utcnow
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import add_reply
from tests.factories import bearer, make_contact, make_customer, make_inbox, make_queue, make_token
from tests.factories import make_user


def world(session, settings):
    queue = make_queue(session, "support")
    other = make_queue(session, "other")
    inbox = make_inbox(session, queue)
    now = utcnow() - dt.timedelta(hours=2)
    result = ingest_inbound(session, make_contact(inbox_id=inbox.id), settings=settings, now=now)
    ticket = session.get(Ticket, result.ticket_id)
    agent = make_user(session, queues=(queue,))
    add_reply(session, ticket, agent.id, "hi", now=now + dt.timedelta(minutes=30))
    ingest_inbound(session, make_contact(inbox_id=make_inbox(session, queue).id),
                   settings=settings, now=now)
    session.commit()
    return ticket, agent, make_user(session, queues=(other,)), make_user(session, "supervisor")


def test_ticket_sla_for_viewers_only(client, session, settings, sla_config):
    ticket, agent, outsider, _sup = world(session, settings)
    res = client.get(f"/api/v1/tickets/{ticket.number}/sla",
                     headers=bearer(make_token(session, agent)))
    assert res.status_code == 200
    body = res.get_json()
    assert body["policy"] == "Standard"
    kinds = {c["kind"]: c for c in body["clocks"]}
    assert kinds["first_response"]["state"] == "met"
    assert kinds["resolution"]["paused"] is True
    assert body["entitlement"]["state"] == "none"
    res = client.get(f"/api/v1/tickets/{ticket.number}/sla",
                     headers=bearer(make_token(session, outsider)))
    assert res.status_code == 404
    assert client.get(f"/api/v1/tickets/{ticket.number}/sla").status_code == 401
    assert client.get("/api/v1/tickets/999999/sla",
                      headers=bearer(make_token(session, agent))).status_code == 404


def test_report_for_supervisors(client, session, settings, sla_config):
    _ticket, agent, _outsider, sup = world(session, settings)
    token = make_token(session, sup)
    res = client.get("/api/v1/sla/report?group_by=queue", headers=bearer(token))
    assert res.status_code == 200
    rows = res.get_json()["rows"]
    assert rows[0]["label"] == "Support" and rows[0]["total"] == 4
    assert rows[0]["met"] == 1 and rows[0]["open"] == 3
    res = client.get("/api/v1/sla/report?group_by=kind&kind=first_response",
                     headers=bearer(token))
    assert [(r["label"], r["total"], r["attainment_percent"]) for r in res.get_json()["rows"]] \
        == [("first_response", 2, 100.0)]
    for bad in ("group_by=priority;drop", "since=yesterday", "kind=lunch",
                "since=2020-01-01&until=2026-01-01"):
        assert client.get(f"/api/v1/sla/report?{bad}", headers=bearer(token)).status_code == 400
    assert client.get("/api/v1/sla/report",
                      headers=bearer(make_token(session, agent))).status_code == 403


def test_policies_and_calendars(client, session, settings, sla_config):
    sup = make_user(session, "supervisor")
    token = make_token(session, sup)
    policies = client.get("/api/v1/sla/policies", headers=bearer(token)).get_json()["items"]
    assert [p["name"] for p in policies] == ["Gold", "Standard"]
    assert policies[0]["calendar"] == "Office Berlin"
    assert {"kind": "first_response", "priority": "urgent", "minutes": 15} \
        in policies[0]["targets"]
    cals = client.get("/api/v1/sla/calendars", headers=bearer(token)).get_json()["items"]
    assert cals[0]["holiday_country"] == "DE"


def test_expiring_contracts_show_value_to_finance_and_audit_it(client, session):
    customer = make_customer(session)
    session.add(Contract(external_id="C-SOON", customer_id=customer.id, level="Gold",
                         starts_on=dt.date(2020, 1, 1),
                         ends_on=utcnow().date() + dt.timedelta(days=9), value=Decimal("1200")))
    session.commit()
    agent = make_user(session)
    sup = make_user(session, "supervisor")
    assert client.get("/api/v1/sla/contracts/expiring",
                      headers=bearer(make_token(session, agent))).status_code == 403
    shown = client.get("/api/v1/sla/contracts/expiring?days=30",
                       headers=bearer(make_token(session, sup))).get_json()["items"]
    assert shown[0]["value"] == "1200.00" and shown[0]["days_left"] == 9
    assert session.scalars(select(AuditLog.object_type).where(
        AuditLog.action == "view_financial")).all() == ["contracts"]
    assert client.get("/api/v1/sla/contracts/expiring?days=x",
                      headers=bearer(make_token(session, sup))).status_code == 400


def test_expiring_contracts_are_masked_without_the_financial_permission(session):
    from contactcenter.sla.api import expiring_contracts

    customer = make_customer(session)
    session.add(Contract(external_id="C-MASK", customer_id=customer.id, level="Gold",
                         starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2026, 3, 10),
                         value=Decimal("99")))
    session.flush()
    rows = expiring_contracts(session, 30, dt.date(2026, 3, 1), unmasked=False)
    assert rows[0]["value"] is None and rows[0]["masked"] is True


def test_openapi_lists_the_sla_paths(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/tickets/{number}/sla" in spec["paths"]
    assert "SlaClock" in spec["components"]["schemas"]
