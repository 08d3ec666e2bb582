"""The desk's assist panels in Chromium: a knowledge suggestion is inserted (and its use
recorded), an offer's outcome is recorded in one click, the SLA clocks count down."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.customers.models import Product, Purchase
from contactcenter.knowledge.demo import seed_demo as seed_articles
from contactcenter.knowledge.models import ArticleUse
from contactcenter.sales.marketing import create_relation
from contactcenter.sales.models import OfferImpression
from tests.agent_ui.conftest import Desk, ingest
from tests.agent_ui.test_browser import (  # noqa: F401 - fixtures
    console_errors,
    dialogs,
    live_port,
    live_url,
    settings,
    sign_in,
)
from tests.agent_ui.test_desk_browser import wait_until

pytestmark = pytest.mark.browser


def test_insert_an_article_and_record_an_offer_outcome(page: Any, desk: Desk, session: Any,
                                                       settings: Any) -> None:  # noqa: F811
    seed_articles(session, settings)
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, sender="olga@example.com",
                    subject="Router light blinks red", text="My router blinks red, no internet",
                    thread_on_open_ticket=False, channel="email")
    router = Product(sku="RTR-A", name="Home Router", price=Decimal("120.00"),
                     margin=Decimal("0.30"))
    mesh = Product(sku="MESH-A", name="Mesh Extender", price=Decimal("80.00"),
                   margin=Decimal("0.40"))
    session.add_all([router, mesh])
    session.flush()
    session.add(Purchase(external_id="buy-1", customer_id=ticket.customer_id,
                         product_id=router.id, amount=Decimal("120.00"),
                         purchased_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)))
    create_relation(session, "cross_sell", router.id, mesh.id,
                    script="A mesh extender brings Wi-Fi to every room.")
    session.commit()

    sign_in(page)
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    page.goto(f"/#ticket-{ticket.number}")
    page.locator("#ws-title", has_text=f"#{ticket.number}").wait_for(timeout=10_000)

    suggestion = page.locator("#suggestions li.suggestion", has_text="blinks red").first
    suggestion.wait_for(timeout=15_000)
    suggestion.locator("button.insert").click()
    wait_until(page, "document.querySelector('#reply-text').value.length > 40")
    session.expire_all()
    uses = session.scalars(select(ArticleUse)).all()
    assert [u.ticket_id for u in uses] == [ticket.id]

    offer = page.locator("#offers li.offer", has_text="Mesh Extender")
    offer.wait_for(timeout=10_000)
    assert "every room" in offer.inner_text()
    offer.locator("button.outcome.accepted").click()
    page.locator("#offers li", has_text="Recorded").wait_for(timeout=10_000)
    session.expire_all()
    outcomes = [i.outcome for i in session.scalars(select(OfferImpression))]
    assert "accepted" in outcomes
