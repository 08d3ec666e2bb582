"""The desk's JSON endpoints: roles, CSRF, visibility, masking, collision and the offer card."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.models import Contract, Product, Purchase
from contactcenter.db import utcnow
from contactcenter.routing import engine
from contactcenter.routing.models import Offer
from contactcenter.routing.policy import load_policy
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import add_reply
from tests.agent_ui.conftest import Desk, csrf_headers, ingest, login
from tests.factories import make_user


def test_anonymous_gets_401_and_editor_403(client: Any, desk: Desk) -> None:
    assert client.get("/desk/api/inbox").status_code == 401
    login(client, "kb@example.test")
    assert client.get("/desk/api/inbox").status_code == 403


def test_writes_need_the_csrf_header(client: Any, desk: Desk, agent: dict[str, str]) -> None:
    url = f"/desk/api/tickets/{desk.mine.number}/draft"
    assert client.put(url, json={"text": "x"}).status_code == 401
    assert client.put(url, json={"text": "x"}, headers=agent).status_code == 200


def test_inbox_lists_visible_tickets_with_their_priority(client: Any, desk: Desk,
                                                         agent: dict[str, str]) -> None:
    data = client.get("/desk/api/inbox?view=all").get_json()
    numbers = [t["number"] for t in data["items"]]
    assert numbers == [desk.mine.number]
    assert data["items"][0]["customer_name"] == "Olga Smirnova"
    assert client.get("/desk/api/inbox?view=bogus").status_code == 400
    assert client.get("/desk/api/inbox?status=bogus").status_code == 400


def test_another_queues_ticket_is_not_found(client: Any, desk: Desk,
                                            agent: dict[str, str]) -> None:
    n = desk.theirs.number
    assert client.get(f"/desk/api/tickets/{n}/workspace").status_code == 404
    assert client.post(f"/desk/api/tickets/{n}/reply", json={"text": "hi"},
                       headers=agent).status_code == 404
    assert client.patch(f"/desk/api/tickets/{n}", json={"status": "solved"},
                        headers=agent).status_code == 404


@pytest.fixture
def money(session: Any, desk: Desk) -> None:
    product = Product(sku="RTR-9", name="Router Pro", price=Decimal("149.00"))
    session.add(product)
    session.flush()
    customer_id = desk.mine.customer_id
    session.add(Purchase(external_id="p-9", customer_id=customer_id, product_id=product.id,
                         amount=Decimal("149.00"),
                         purchased_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)))
    session.add(Contract(external_id="c-9", customer_id=customer_id, level="gold",
                         starts_on=dt.date(2025, 1, 1), ends_on=dt.date(2030, 1, 1),
                         value=Decimal("900.00")))
    session.commit()


def test_workspace_masks_money_for_an_agent(client: Any, desk: Desk, money: None,
                                            agent: dict[str, str], session: Any) -> None:
    data = client.get(f"/desk/api/tickets/{desk.mine.number}/workspace").get_json()
    customer = data["customer"]
    assert customer["masked"] is True
    assert customer["lifetime_value"] is None
    assert customer["purchases"][0]["amount"] is None
    assert customer["contracts"][0]["value"] is None
    assert "149" not in str(customer) and "900" not in str(customer)
    assert [m["text"] for m in data["messages"]] == ["It blinks red."]
    session.expire_all()
    assert session.scalars(select(AuditLog).where(AuditLog.action == "financial.view")).all() == []


def test_workspace_unmasks_and_audits_for_financial_access(client: Any, desk: Desk, money: None,
                                                           session: Any) -> None:
    from contactcenter.tickets.models import QueueMember

    user = make_user(session, "agent", email="fin@example.test", financial=True)
    session.add(QueueMember(queue_id=desk.queue_a.id, user_id=user.id))
    session.commit()
    login(client, "fin@example.test")
    data = client.get(f"/desk/api/tickets/{desk.mine.number}/workspace").get_json()
    assert data["customer"]["purchases"][0]["amount"] == "149.00"
    session.expire_all()
    rows = session.scalars(select(AuditLog).where(AuditLog.action == "financial.view")).all()
    assert [(r.actor_user_id, r.channel) for r in rows] == [(user.id, "desk")]


def test_reply_warns_when_someone_else_answered(client: Any, desk: Desk, session: Any,
                                                agent: dict[str, str]) -> None:
    number = desk.mine.number
    seen = client.get(f"/desk/api/tickets/{number}/workspace").get_json()["messages"][-1]["id"]
    other = make_user(session, "supervisor", email="boss@example.test")
    add_reply(session, session.get(Ticket, desk.mine.id), other.id, "I already answered")
    session.commit()
    url = f"/desk/api/tickets/{number}/reply"
    body = {"text": "My answer", "last_seen_message_id": seen}
    answer = client.post(url, json=body, headers=agent)
    assert answer.status_code == 409
    assert answer.get_json()["replies"][0]["text"] == "I already answered"
    assert client.post(url, json={**body, "force": True}, headers=agent).status_code == 201
    assert client.post(url, json={"text": 5}, headers=agent).status_code == 400


def test_reply_clears_the_draft(client: Any, desk: Desk, agent: dict[str, str]) -> None:
    number = desk.mine.number
    client.put(f"/desk/api/tickets/{number}/draft", json={"text": "half written"}, headers=agent)
    assert client.get(f"/desk/api/tickets/{number}/workspace").get_json()["draft"]["text"] == \
        "half written"
    client.post(f"/desk/api/tickets/{number}/reply", json={"text": "done", "force": True},
                headers=agent)
    assert client.get(f"/desk/api/tickets/{number}/workspace").get_json()["draft"] is None


def test_patch_changes_tags_priority_status_and_refuses_unknown_fields(
        client: Any, desk: Desk, agent: dict[str, str]) -> None:
    url = f"/desk/api/tickets/{desk.mine.number}"
    answer = client.patch(url, json={"tags": ["vip"], "priority": "high"}, headers=agent)
    assert answer.status_code == 200
    assert answer.get_json()["tags"] == ["vip"] and answer.get_json()["priority"] == "high"
    assert client.patch(url, json={"colour": "red"}, headers=agent).status_code == 400
    assert client.patch(url, json={"status": "solved"}, headers=agent).status_code == 200
    assert client.patch(url, json={"status": "pending"}, headers=agent).status_code == 409
    assert client.patch(url, json={"status": "open"}, headers=agent).status_code == 200
    # An agent may take a ticket but not give it to someone else.
    assert client.patch(url, json={"assignee_id": desk.supervisor.id},
                        headers=agent).status_code == 403
    assert client.patch(url, json={"assignee_id": desk.agent.id}, headers=agent).status_code == 200


def test_saved_views_are_private(client: Any, desk: Desk, agent: dict[str, str],
                                 session: Any) -> None:
    created = client.post("/desk/api/views", json={"name": "Mine urgent", "view": "mine",
                                                   "filters": {"priority": "urgent"}},
                          headers=agent)
    assert created.status_code == 201
    view_id = created.get_json()["id"]
    assert client.get(f"/desk/api/inbox?saved={view_id}").status_code == 200
    login(client, "super@example.test")
    assert client.get(f"/desk/api/inbox?saved={view_id}").status_code == 404
    assert client.delete(f"/desk/api/views/{view_id}", headers=csrf_headers(client)).status_code == 404


def test_offer_card_only_for_the_offered_agent(client: Any, desk: Desk, session: Any,
                                               settings: Any) -> None:
    policy = load_policy(settings)
    now = utcnow()
    engine.set_presence(session, desk.agent.id, "available", now, policy)
    engine.commit_and_settle(session, now, policy)
    ticket = ingest(session, settings, inbox_id=desk.inbox_a.id, subject="Pop me",
                    name="Vera Card")
    offer = session.scalars(select(Offer).where(Offer.agent_id == desk.agent.id)).first()
    assert offer is not None
    login(client, "agent@example.test")
    card = client.get(f"/desk/api/items/{offer.item_id}/card").get_json()
    assert card["offer_id"] == offer.id and card["channel"] == "api"
    assert card["ticket"]["number"] in (ticket.number, desk.mine.number)
    assert card["customer"]["name"] in ("Vera Card", "Olga Smirnova")
    assert card["contract"] == "no contract"
    login(client, "super@example.test")
    assert client.get(f"/desk/api/items/{offer.item_id}/card").status_code == 404


def test_locale_is_validated_and_changes_the_page(client: Any, desk: Desk,
                                                  agent: dict[str, str]) -> None:
    assert client.put("/desk/api/me/locale", json={"locale": "xx"}, headers=agent).status_code == 400
    assert client.put("/desk/api/me/locale", json={"locale": "ru"}, headers=agent).status_code == 200
    page = client.get("/").get_data(as_text=True)
    assert "Входящие" in page and "Выйти" in page
    client.put("/desk/api/me/locale", json={"locale": "en"}, headers=csrf_headers(client))
    assert "Inbox" in client.get("/").get_data(as_text=True)


def test_merge_and_link_endpoints(client: Any, desk: Desk, session: Any, settings: Any,
                                  agent: dict[str, str]) -> None:
    again = ingest(session, settings, inbox_id=desk.inbox_a.id, sender="olga@example.com",
                   subject="Second issue", thread_on_open_ticket=False)
    link = client.post(f"/desk/api/tickets/{again.number}/links",
                       json={"number": desk.mine.number}, headers=agent)
    assert link.status_code == 201
    assert client.post(f"/desk/api/tickets/{again.number}/links",
                       json={"number": desk.theirs.number}, headers=agent).status_code == 404
    merged = client.post(f"/desk/api/tickets/{again.number}/merge",
                         json={"into": desk.mine.number}, headers=agent)
    assert merged.status_code == 200
    data = client.get(f"/desk/api/tickets/{desk.mine.number}/workspace").get_json()
    assert "Second issue" in [m["subject"] for m in data["messages"]]


def test_reply_on_another_channel_uses_the_customers_address(
        client: Any, desk: Desk, agent: dict[str, str], session: Any) -> None:
    url = f"/desk/api/tickets/{desk.mine.number}/reply"
    answer = client.post(url, json={"text": "By mail", "channel": "email", "force": True},
                         headers=agent)
    assert answer.status_code == 201
    assert answer.get_json()["channel"] == "email"
    assert answer.get_json()["recipient"] == "olga@example.com"
    # Olga has no phone number: an SMS reply is refused with a clear error.
    refused = client.post(url, json={"text": "By SMS", "channel": "sms", "force": True},
                          headers=agent)
    assert refused.status_code == 400 and "no address for sms" in refused.get_json()["error"]
    assert client.post(url, json={"text": "x", "channel": "pigeon"},
                       headers=agent).status_code == 400
