"""The supervisors' SLA page in a real browser: policies, expiring contracts, the chart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import expect

from contactcenter.customers.models import Contract
from contactcenter.db import utcnow
from contactcenter.sla.loader import load_config
from contactcenter.tickets.intake import ingest_inbound
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    live_port,
    live_url,
    settings,
)
from tests.factories import PASSWORD, make_contact, make_customer, make_inbox, make_queue
from tests.factories import make_user
from tests.sla.conftest import CONFIG

pytestmark = pytest.mark.browser


def test_supervisor_sees_policies_contracts_and_the_attainment_chart(
        page: Any, db: Any, settings: Any, console_errors: list[str]) -> None:  # noqa: F811
    with db.session() as session:
        load_config(session, CONFIG)
        inbox = make_inbox(session, make_queue(session, "support"))
        for _ in range(3):
            ingest_inbound(session, make_contact(inbox_id=inbox.id), settings=settings,
                           now=utcnow() - dt.timedelta(days=1))
        customer = make_customer(session)
        session.add(Contract(external_id="C-ENDING", customer_id=customer.id, level="Gold",
                             starts_on=dt.date(2020, 1, 1),
                             ends_on=utcnow().date() + dt.timedelta(days=6)))
        make_user(session, "supervisor", email="sup@example.test")
        make_user(session, email="agent@example.test")
        session.commit()
    page.goto("/login")
    page.fill("input[name=email]", "sup@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/sla")
    assert "Gold" in page.locator("#policies").inner_text()
    assert "Office Berlin" in page.locator("#calendars").inner_text()
    assert "C-ENDING" in page.locator("#expiring").inner_text()
    page.wait_for_selector("#attainment-chart[data-drawn='1']", timeout=10_000)
    assert "Support" in page.locator("#attainment").inner_text()
    page.select_option("#group-by", "kind")
    expect(page.locator("#attainment")).to_contain_text("resolution")
    assert console_errors == []


def test_agents_may_not_open_the_sla_page(page: Any, db: Any) -> None:
    with db.session() as session:
        make_user(session, email="agent@example.test")
        session.commit()
    page.goto("/login")
    page.fill("input[name=email]", "agent@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    response = page.goto("/sla")
    assert response.status == 403
