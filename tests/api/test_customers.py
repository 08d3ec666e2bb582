"""Customers over the API: masking of financial data, auditing, search, merge and undo."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.models import Contract, Product, Purchase
from tests.api.conftest import World
from tests.factories import bearer, make_customer, make_token, make_user


@pytest.fixture
def records(session: Any, world: World) -> None:
    product = Product(sku="RTR-1", name="Router", price=Decimal("99.00"))
    session.add(product)
    session.flush()
    session.add(Purchase(external_id="p-1", customer_id=world.olga.id, product_id=product.id,
                         amount=Decimal("99.00"),
                         purchased_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC)))
    session.add(Contract(external_id="c-1", customer_id=world.olga.id, level="gold",
                         starts_on=dt.date(2025, 1, 1), ends_on=dt.date(2030, 1, 1),
                         value=Decimal("500.00")))
    session.commit()


def audits(session: Any, action: str) -> list[AuditLog]:
    session.expire_all()
    return session.query(AuditLog).filter_by(action=action).all()


def test_agent_sees_financial_fields_masked(client: Any, world: World, records: None,
                                            session: Any) -> None:
    response = client.get(f"/api/v1/customers/{world.olga.id}", headers=world.headers("agent"))
    assert response.status_code == 200
    data = response.get_json()
    assert data["masked"] is True
    assert data["lifetime_value"] is None and data["balance"] is None
    assert [p["amount"] for p in data["purchases"]] == [None]
    assert [c["value"] for c in data["contracts"]] == [None]
    assert data["purchases"][0]["product"] == "Router"      # non-financial fields stay
    assert data["name"] == "Olga Smirnova"
    assert "1234.5" not in response.get_data(as_text=True)
    assert audits(session, "financial.view") == []


def test_supervisor_sees_financial_fields_and_is_audited(client: Any, world: World,
                                                        records: None, session: Any) -> None:
    response = client.get(f"/api/v1/customers/{world.olga.id}",
                          headers=world.headers("supervisor"))
    assert response.status_code == 200
    data = response.get_json()
    assert data["masked"] is False
    assert data["lifetime_value"] == "1234.50"
    assert data["balance"] == "-20.00"
    assert [p["amount"] for p in data["purchases"]] == ["99.00"]
    assert [c["value"] for c in data["contracts"]] == ["500.00"]
    rows = audits(session, "financial.view")
    assert len(rows) == 1
    assert rows[0].actor_user_id == world.supervisor.id
    assert rows[0].object_type == "customer" and rows[0].object_id == str(world.olga.id)
    assert rows[0].channel == "api"
    client.get(f"/api/v1/customers/{world.olga.id}", headers=world.headers("supervisor"))
    assert len(audits(session, "financial.view")) == 2


def test_agent_with_financial_grant_is_unmasked(client: Any, world: World, session: Any) -> None:
    finance = make_user(session, "agent", financial=True)
    token = make_token(session, finance)
    data = client.get(f"/api/v1/customers/{world.olga.id}", headers=bearer(token)).get_json()
    assert data["masked"] is False and data["lifetime_value"] == "1234.50"
    assert len(audits(session, "financial.view")) == 1


def test_unknown_customer_is_404(client: Any, world: World) -> None:
    response = client.get("/api/v1/customers/999999", headers=world.headers("agent"))
    assert response.status_code == 404
    assert set(response.get_json()) == {"error"}


def test_knowledge_editor_cannot_see_customers(client: Any, world: World) -> None:
    response = client.get(f"/api/v1/customers/{world.olga.id}", headers=world.headers("editor"))
    assert response.status_code == 403
    assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize("q", ["olga@example.com", "+7 916 123-45-67", "Smirnova", "olga@"])
def test_customer_search(client: Any, world: World, q: str) -> None:
    response = client.get("/api/v1/customers", query_string={"q": q},
                          headers=world.headers("agent"))
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [c["id"] for c in items] == [world.olga.id]
    assert "lifetime_value" not in items[0] and "balance" not in items[0]


def test_customer_search_needs_q(client: Any, world: World) -> None:
    assert client.get("/api/v1/customers", headers=world.headers("agent")).status_code == 400


# --- merge and undo ---------------------------------------------------------------------

def test_merge_and_undo(client: Any, world: World, session: Any, events: Any) -> None:
    duplicate = make_customer(session, "Olga S.", email="olga.work@example.com")
    session.commit()
    headers = world.headers("supervisor")
    response = client.post(f"/api/v1/customers/{world.olga.id}/merge",
                           json={"merged_id": duplicate.id}, headers=headers)
    assert response.status_code == 201
    data = response.get_json()
    assert data["survivor_id"] == world.olga.id and data["merged_id"] == duplicate.id
    merge_id = data["merge_id"]

    # The merged customer now resolves to the survivor, with both addresses.
    merged = client.get(f"/api/v1/customers/{duplicate.id}", headers=headers).get_json()
    assert merged["id"] == world.olga.id
    assert {i["address"] for i in merged["identities"]} >= {"olga@example.com",
                                                            "olga.work@example.com"}
    assert len(audits(session, "customer.merge")) == 1
    assert "customer.merged" in [e.type for e in events.published]

    # Merging it again is a conflict.
    again = client.post(f"/api/v1/customers/{world.olga.id}/merge",
                        json={"merged_id": duplicate.id}, headers=headers)
    assert again.status_code == 409

    undo = client.post(f"/api/v1/merges/{merge_id}/undo", headers=headers)
    assert undo.status_code == 200
    assert undo.get_json()["merge_id"] == merge_id
    assert undo.get_json()["undone_at"]
    revived = client.get(f"/api/v1/customers/{duplicate.id}", headers=headers).get_json()
    assert revived["id"] == duplicate.id
    assert [i["address"] for i in revived["identities"]] == ["olga.work@example.com"]
    assert len(audits(session, "customer.unmerge")) == 1

    twice = client.post(f"/api/v1/merges/{merge_id}/undo", headers=headers)
    assert twice.status_code == 409
    assert set(twice.get_json()) == {"error"}

    unknown = client.post("/api/v1/merges/999999/undo", headers=headers)
    assert unknown.status_code == 404
    assert unknown.get_json() == {"error": "not found"}


def test_merge_moves_tickets_and_undo_moves_them_back(client: Any, world: World) -> None:
    headers = world.headers("supervisor")
    merge = client.post(f"/api/v1/customers/{world.olga.id}/merge",
                        json={"merged_id": world.boris.id}, headers=headers).get_json()
    moved = client.get(f"/api/v1/tickets/{world.theirs.number}", headers=headers).get_json()
    assert moved["customer_id"] == world.olga.id
    client.post(f"/api/v1/merges/{merge['merge_id']}/undo", headers=headers)
    back = client.get(f"/api/v1/tickets/{world.theirs.number}", headers=headers).get_json()
    assert back["customer_id"] == world.boris.id


@pytest.mark.parametrize("body,status", [
    ({"merged_id": "2"}, 400), ({"merged_id": True}, 400), ({}, 400), ([], 400),
    ({"merged_id": 999999}, 404),
])
def test_merge_input_is_validated(client: Any, world: World, body: Any, status: int) -> None:
    response = client.post(f"/api/v1/customers/{world.olga.id}/merge", json=body,
                           headers=world.headers("supervisor"))
    assert response.status_code == status
    assert set(response.get_json()) == {"error"}


def test_merge_into_itself_is_409(client: Any, world: World) -> None:
    response = client.post(f"/api/v1/customers/{world.olga.id}/merge",
                           json={"merged_id": world.olga.id}, headers=world.headers("supervisor"))
    assert response.status_code == 409


def test_merge_unknown_survivor_is_404(client: Any, world: World) -> None:
    response = client.post("/api/v1/customers/999999/merge", json={"merged_id": world.olga.id},
                           headers=world.headers("supervisor"))
    assert response.status_code == 404


def test_agent_cannot_merge(client: Any, world: World, session: Any) -> None:
    response = client.post(f"/api/v1/customers/{world.olga.id}/merge",
                           json={"merged_id": world.boris.id}, headers=world.headers("agent"))
    assert response.status_code == 403
    assert set(response.get_json()) == {"error"}
    assert audits(session, "customer.merge") == []
