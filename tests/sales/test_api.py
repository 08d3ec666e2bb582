"""The sales API: offers and outcomes for other systems, masking by role, marketing endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.value import recompute_values
from contactcenter.sales.marketing import create_relation
from contactcenter.sales.models import AssociationRule, RelationKind, RuleState
from tests.factories import bearer, make_token, make_user
from tests.sales.helpers import buy, customer, product

ROLES = {  # role -> (roles, financial grant, may see amounts)
    "agent": (("agent",), False, False),
    "supervisor": (("supervisor",), False, True),
    "admin": (("admin",), False, True),
    "finance_agent": (("agent",), True, True),
}


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    router = product(session, "Router", "100.00", "0.30")
    mesh = product(session, "Mesh kit", "200.00", "0.40")
    create_relation(session, RelationKind.CROSS_SELL, router.id, mesh.id)
    anna = customer(session, "Anna")
    buy(session, anna, router, "1234.56", dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    session.commit()
    recompute_values(session, dt.datetime.now(dt.UTC))
    session.commit()
    tokens = {}
    for name, (roles, financial, _see) in ROLES.items():
        tokens[name] = make_token(session, make_user(session, *roles, financial=financial))
    tokens["editor"] = make_token(session, make_user(session, "knowledge_editor"))
    return {"anna": anna, "router": router, "mesh": mesh, "tokens": tokens}


def _audits(session: Session) -> list[AuditLog]:
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.action == "financial.view")))


@pytest.mark.parametrize("role", list(ROLES))
def test_offers_and_value_masked_by_role_and_audited(client: Any, session: Session,
                                                     world: dict[str, Any], role: str) -> None:
    sees = ROLES[role][2]
    h = bearer(world["tokens"][role])
    anna = world["anna"]
    response = client.get(f"/api/v1/customers/{anna.id}/offers", headers=h)
    assert response.status_code == 200
    offer = response.get_json()["offers"][0]
    assert offer["product"]["name"] == "Mesh kit" and offer["script"] and offer["reason"]
    # 200 * 0.40 = 80 margin, prior 10%: expected 8.00.
    assert offer["masked"] is (not sees)
    assert offer["expected_value"] == ("8.00" if sees else None)
    assert offer["margin"] == ("80.00" if sees else None)
    value = client.get(f"/api/v1/customers/{anna.id}/value", headers=h).get_json()
    assert value["tier"] == "A" and value["reason"].startswith("Tier A")
    assert value["revenue_long"] == ("1234.56" if sees else None)
    assert (value["lifetime_value"] is None) is (not sees)
    body = response.get_data(as_text=True) + str(value)
    if not sees:
        assert "1234" not in body and "80.00" not in body
    audits = _audits(session)
    assert len(audits) == (2 if sees else 0)
    if sees:
        assert {a.object_type for a in audits} == {"customer_offers", "customer_value"}
        assert all(a.object_id == str(anna.id) for a in audits)


def test_knowledge_editor_and_anonymous_callers_are_refused(client: Any,
                                                            world: dict[str, Any]) -> None:
    anna = world["anna"]
    h = bearer(world["tokens"]["editor"])
    assert client.get(f"/api/v1/customers/{anna.id}/offers", headers=h).status_code == 403
    assert client.get(f"/api/v1/customers/{anna.id}/value", headers=h).status_code == 403
    assert client.post("/api/v1/offers/1/outcome", json={"outcome": "accepted"},
                       headers=h).status_code == 403
    assert client.get(f"/api/v1/customers/{anna.id}/offers").status_code == 401
    assert client.get("/api/v1/sales/rules",
                      headers=bearer(world["tokens"]["agent"])).status_code == 403


def test_outcome_through_the_api_with_an_order(client: Any, session: Session,
                                               world: dict[str, Any]) -> None:
    h = bearer(world["tokens"]["agent"])
    anna = world["anna"]
    offer = client.get(f"/api/v1/customers/{anna.id}/offers?channel=shop",
                       headers=h).get_json()["offers"][0]
    bad = client.post(f"/api/v1/offers/{offer['id']}/outcome",
                      json={"outcome": "accepted", "priority": "urgent"}, headers=h)
    assert bad.status_code == 400 and "unknown fields" in bad.get_json()["error"]
    assert client.post(f"/api/v1/offers/{offer['id']}/outcome", json={"outcome": "yes"},
                       headers=h).status_code == 400
    assert client.post("/api/v1/offers/999999/outcome", json={"outcome": "accepted"},
                       headers=h).status_code == 404
    ok = client.post(f"/api/v1/offers/{offer['id']}/outcome",
                     json={"outcome": "accepted", "follow_up": "order", "quantity": 1},
                     headers=h)
    assert ok.status_code == 200
    assert ok.get_json()["outcome"] == "accepted"
    conversion = client.get("/api/v1/sales/conversion?by=channel",
                            headers=bearer(world["tokens"]["supervisor"])).get_json()
    assert conversion["items"] == [{"key": "shop", "shown": 1, "accepted": 1, "declined": 0,
                                    "not_relevant": 0, "conversion": 1.0}]
    assert client.get("/api/v1/sales/conversion?by=1;drop",
                      headers=bearer(world["tokens"]["supervisor"])).status_code == 400


def test_opt_out_through_the_api_stops_offers(client: Any, session: Session,
                                              world: dict[str, Any]) -> None:
    h = bearer(world["tokens"]["agent"])
    anna = world["anna"]
    r = client.post(f"/api/v1/customers/{anna.id}/marketing-opt-out", json={"opt_out": True},
                    headers=h)
    assert r.status_code == 200
    assert client.get(f"/api/v1/customers/{anna.id}/offers",
                      headers=h).get_json()["offers"] == []
    assert client.get("/api/v1/customers/999999/offers", headers=h).status_code == 404


def test_marketing_manages_relations_and_approves_rules(client: Any, session: Session,
                                                        world: dict[str, Any]) -> None:
    h = bearer(world["tokens"]["supervisor"])
    router, mesh = world["router"], world["mesh"]
    care = product(session, "Care plan", "60.00", "0.9")
    rule = AssociationRule(antecedent_product_id=router.id, consequent_product_id=care.id,
                           pair_count=10, antecedent_count=20, consequent_count=30,
                           baskets=100, support=0.1, confidence=0.5, lift=1.67)
    session.add(rule)
    session.commit()
    listed = client.get("/api/v1/sales/rules?state=proposed", headers=h).get_json()["items"]
    assert [(r["antecedent"]["name"], r["consequent"]["name"]) for r in listed] == [
        ("Router", "Care plan")]
    decided = client.post(f"/api/v1/sales/rules/{rule.id}/decision",
                          json={"approve": True, "script": "Add care?"}, headers=h)
    assert decided.status_code == 200 and decided.get_json()["state"] == "approved"
    session.expire_all()
    assert session.get(AssociationRule, rule.id).state == RuleState.APPROVED  # type: ignore
    made = client.post("/api/v1/sales/relations", json={
        "kind": "up_sell", "source_id": router.id, "target_id": mesh.id}, headers=h)
    assert made.status_code == 201
    rel_id = made.get_json()["id"]
    assert client.patch(f"/api/v1/sales/relations/{rel_id}", json={"active": False},
                        headers=h).get_json()["active"] is False
    assert client.post("/api/v1/sales/relations", json={
        "kind": "side_sell", "source_id": router.id, "target_id": mesh.id},
        headers=h).status_code == 400
    assert client.post("/api/v1/sales/relations", json={
        "kind": "up_sell", "source_id": router.id, "target_id": 99999},
        headers=h).status_code == 404
    kinds = {r["kind"] for r in client.get("/api/v1/sales/relations",
                                           headers=h).get_json()["items"]}
    assert kinds == {"cross_sell", "up_sell"}


def test_value_of_an_unknown_customer_is_404(client: Any, world: dict[str, Any]) -> None:
    h = bearer(world["tokens"]["admin"])
    assert client.get("/api/v1/customers/424242/value", headers=h).status_code == 404


@pytest.mark.parametrize(("roles", "financial", "sees"), [
    (("agent",), False, False), (("supervisor",), False, True),
    (("knowledge_editor",), False, False), (("admin",), False, True),
    (("agent",), True, True)])
def test_value_summary_masks_by_role_at_serialisation(session: Session, world: dict[str, Any],
                                                      roles: tuple[str, ...], financial: bool,
                                                      sees: bool) -> None:
    from contactcenter.sales.service import customer_value

    user = make_user(session, *roles, financial=financial)
    before = len(_audits(session))
    data = customer_value(session, world["anna"].id, user)
    session.commit()
    money = ("lifetime_value", "revenue_short", "revenue_long", "revenue_total")
    assert all((data[k] is not None) is sees for k in money)
    assert data["masked"] is (not sees) and data["tier"] == "A"
    assert len(_audits(session)) == before + (1 if sees else 0)
