"""Marketing's page: approve a mined rule, add a relation, read the conversion chart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.sales.marketing import create_relation
from contactcenter.sales.models import AssociationRule, OfferRelation, RelationKind, RuleState
from contactcenter.sales.service import offers_for_customer, record_outcome
from tests.browser_support import (  # noqa: F401 - fixtures
    collect_errors,
    live_port,
    live_url,
    settings,
    sign_in,
)
from tests.factories import make_user
from tests.sales.helpers import buy, customer, product


@pytest.fixture
def catalogue(session: Session) -> dict[str, Any]:
    router, mesh = product(session, "Router"), product(session, "Mesh kit")
    care = product(session, "Care plan", "60.00", "0.9")
    create_relation(session, RelationKind.CROSS_SELL, router.id, mesh.id)
    session.add(AssociationRule(antecedent_product_id=router.id, consequent_product_id=care.id,
                                pair_count=12, antecedent_count=40, consequent_count=30,
                                baskets=200, support=0.06, confidence=0.3, lift=2.0))
    supervisor = make_user(session, "supervisor", email="boss@example.test")
    agent = make_user(session, "agent", email="agent@example.test")
    anna = customer(session)
    buy(session, anna, router)
    session.commit()
    offer = offers_for_customer(session, anna.id, agent, channel="phone")[0]
    record_outcome(session, offer["id"], "accepted", agent)
    session.commit()
    return {"router": router, "mesh": mesh, "care": care, "supervisor": supervisor}


def _login(client: Any, email: str) -> None:
    from tests.agent_ui.conftest import login

    assert login(client, email).status_code == 302


def test_page_needs_the_supervise_permission(client: Any, catalogue: dict[str, Any]) -> None:
    assert client.get("/sales").status_code == 302          # to sign in
    _login(client, "agent@example.test")
    assert client.get("/sales").status_code == 403
    assert client.post("/sales/rules/1/decision", data={"decision": "approve"}).status_code in (
        400, 403)


def test_forms_refuse_a_missing_csrf_token(client: Any, catalogue: dict[str, Any]) -> None:
    _login(client, "boss@example.test")
    page = client.get("/sales")
    assert page.status_code == 200 and b"Router" in page.data
    assert client.post("/sales/relations", data={"kind": "up_sell", "source_id": "1",
                                                  "target_id": "2"}).status_code == 400


# --- in a real browser --------------------------------------------------------------------

# The live server comes from tests/browser_support.py; its ``settings`` (a file database)
# apply to the whole module, the in-memory client tests above included.

@pytest.mark.browser
def test_marketing_page_in_chromium(page: Any, session: Session,
                                    catalogue: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    errors = collect_errors(page)
    sign_in(page, "boss@example.test", "/sales")
    # The conversion report: one product shown once and accepted, drawn by Chart.js.
    expect(page.locator("#conv-table tbody tr")).to_have_count(1)
    expect(page.locator("#conv-table tbody")).to_contain_text("Mesh kit")
    expect(page.locator("#conv-table tbody")).to_contain_text("100.0%")
    assert page.evaluate("() => typeof window.Chart === 'function'")
    assert page.evaluate("() => !!window.Chart.getChart(document.getElementById('conv-chart'))")
    page.select_option("#conv-by", "channel")
    expect(page.locator("body")).to_have_attribute("data-loaded", "channel")
    expect(page.locator("#conv-table tbody")).to_contain_text("phone")
    # Approve the proposed rule with a script.
    row = page.locator("#proposed tr[data-rule]")
    expect(row).to_have_count(1)
    row.locator("input[name=script]").fill("Add the care plan?")
    row.locator("button[value=approve]").click()
    expect(page.locator("#approved")).to_contain_text("Router → Care plan")
    expect(page.locator("#proposed tr[data-rule]")).to_have_count(0)
    # Add an up-sell relation.
    form = page.locator("#add-relation")
    form.locator("select[name=kind]").select_option("up_sell")
    form.locator("select[name=source_id]").select_option(label="Mesh kit")
    form.locator("select[name=target_id]").select_option(label="Care plan")
    form.locator("button[type=submit]").click()
    expect(page.locator("#relations tr[data-relation]")).to_have_count(2)
    assert errors == []
    session.expire_all()
    rule = session.scalars(select(AssociationRule)).one()
    assert (rule.state, rule.script) == (RuleState.APPROVED, "Add the care plan?")
    kinds = {r.kind for r in session.scalars(select(OfferRelation))}
    assert kinds == {"cross_sell", "up_sell"}
    assert dt.datetime.now(dt.UTC) >= rule.decided_at  # type: ignore[operator]
