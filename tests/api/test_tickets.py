"""Tickets over the API: visibility, lists, search, replies, status changes, intake, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contactcenter.tickets.models import DeliveryState, Message, RawInbound, RawState
from tests.api.conftest import World, ingest


def numbers(items: list[dict[str, Any]]) -> set[int]:
    return {t["number"] for t in items}


# --- one ticket ---------------------------------------------------------------------------

def test_agent_sees_a_ticket_in_their_queue_with_messages(client: Any, world: World) -> None:
    response = client.get(f"/api/v1/tickets/{world.mine.number}", headers=world.headers("agent"))
    assert response.status_code == 200
    data = response.get_json()
    assert data["number"] == world.mine.number
    assert data["subject"] == "Invoice is wrong"
    assert data["queue"] == "billing"
    assert data["customer"]["id"] == world.olga.id
    assert "lifetime_value" not in data["customer"] and "balance" not in data["customer"]
    assert [m["text"] for m in data["messages"]] == ["Please fix it."]
    assert data["messages"][0]["direction"] == "inbound"


def test_messages_endpoint(client: Any, world: World) -> None:
    response = client.get(f"/api/v1/tickets/{world.mine.number}/messages",
                          headers=world.headers("agent"))
    assert response.status_code == 200
    assert [m["text"] for m in response.get_json()["items"]] == ["Please fix it."]


def test_agent_sees_assigned_and_unqueued_tickets(client: Any, world: World) -> None:
    for ticket in (world.assigned, world.loose):
        response = client.get(f"/api/v1/tickets/{ticket.number}", headers=world.headers("agent"))
        assert response.status_code == 200, ticket.subject


def test_other_agent_sees_their_queue_only(client: Any, world: World) -> None:
    headers = world.headers("other")
    assert client.get(f"/api/v1/tickets/{world.theirs.number}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/tickets/{world.mine.number}", headers=headers).status_code == 404


@pytest.mark.parametrize("who", ["supervisor", "admin"])
def test_supervisor_and_admin_see_everything(client: Any, world: World, who: str) -> None:
    for ticket in (world.mine, world.theirs, world.assigned, world.loose):
        response = client.get(f"/api/v1/tickets/{ticket.number}", headers=world.headers(who))
        assert response.status_code == 200


# --- lists --------------------------------------------------------------------------------

def test_list_is_filtered_by_visibility(client: Any, world: World) -> None:
    response = client.get("/api/v1/tickets", headers=world.headers("agent"))
    assert response.status_code == 200
    data = response.get_json()
    assert data["total"] == 3
    assert numbers(data["items"]) == {world.mine.number, world.assigned.number,
                                      world.loose.number}
    assert world.theirs.number not in numbers(data["items"])


def test_list_for_other_agent_and_supervisor(client: Any, world: World) -> None:
    other = client.get("/api/v1/tickets", headers=world.headers("other")).get_json()
    assert numbers(other["items"]) == {world.theirs.number, world.assigned.number,
                                       world.loose.number}
    everything = client.get("/api/v1/tickets", headers=world.headers("supervisor")).get_json()
    assert everything["total"] == 4
    assert len(everything["items"]) == 4


def test_list_paging_and_total(client: Any, world: World) -> None:
    headers = world.headers("supervisor")
    first = client.get("/api/v1/tickets?limit=3", headers=headers).get_json()
    second = client.get("/api/v1/tickets?limit=3&offset=3", headers=headers).get_json()
    assert first["total"] == second["total"] == 4
    assert len(first["items"]) == 3 and len(second["items"]) == 1
    assert not numbers(first["items"]) & numbers(second["items"])


def test_list_filters_by_status_and_customer(client: Any, world: World) -> None:
    headers = world.headers("agent")
    client.patch(f"/api/v1/tickets/{world.mine.number}", json={"status": "solved"},
                 headers=headers)
    solved = client.get("/api/v1/tickets?status=solved", headers=headers).get_json()
    assert numbers(solved["items"]) == {world.mine.number}
    by_customer = client.get(f"/api/v1/tickets?customer_id={world.boris.id}",
                             headers=headers).get_json()
    assert by_customer == {"total": 0, "items": []}      # Boris's ticket is in queue B
    sup = client.get(f"/api/v1/tickets?customer_id={world.boris.id}",
                     headers=world.headers("supervisor")).get_json()
    assert numbers(sup["items"]) == {world.theirs.number}


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "limit=-1", "limit=abc",
                                   "offset=-5", "status=bogus"])
def test_list_limits_are_validated(client: Any, world: World, query: str) -> None:
    response = client.get(f"/api/v1/tickets?{query}", headers=world.headers("agent"))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize("query", ["limit=0", "limit=1000"])
def test_raw_limits_are_validated(client: Any, world: World, query: str) -> None:
    response = client.get(f"/api/v1/raw?{query}", headers=world.headers("supervisor"))
    assert response.status_code == 400


def test_list_bad_customer_id_is_400(client: Any, world: World) -> None:
    response = client.get("/api/v1/tickets?customer_id=abc", headers=world.headers("agent"))
    assert response.status_code == 400


# --- search -------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["#{n}", "{n}"])
def test_search_by_ticket_number(client: Any, world: World, q: str) -> None:
    query = q.format(n=world.mine.number)
    response = client.get("/api/v1/search", query_string={"q": query},
                          headers=world.headers("agent"))
    assert response.status_code == 200
    assert numbers(response.get_json()["tickets"]) == {world.mine.number}


def test_first_ticket_is_number_1000(client: Any, world: World) -> None:
    assert world.mine.number == 1000
    for q in ("#1000", "1000"):
        data = client.get("/api/v1/search", query_string={"q": q},
                          headers=world.headers("agent")).get_json()
        assert numbers(data["tickets"]) == {1000}


def test_search_by_email(client: Any, world: World) -> None:
    data = client.get("/api/v1/search", query_string={"q": "OLGA@example.com"},
                      headers=world.headers("agent")).get_json()
    assert numbers(data["tickets"]) == {world.mine.number}
    assert [c["id"] for c in data["customers"]] == [world.olga.id]


@pytest.mark.parametrize("q", ["+7 916 123-45-67", "+7 (916) 123-45-67", "+7-916-123-4567",
                               "+79161234567", "+7.916.123.45.67"])
def test_search_by_phone_in_various_formats(client: Any, world: World, q: str) -> None:
    data = client.get("/api/v1/search", query_string={"q": q},
                      headers=world.headers("agent")).get_json()
    assert [c["id"] for c in data["customers"]] == [world.olga.id]
    assert numbers(data["tickets"]) == {world.mine.number}


@pytest.mark.parametrize("q", ["smirnov", "Olga", "OLGA SMIR"])
def test_search_by_name_substring(client: Any, world: World, q: str) -> None:
    data = client.get("/api/v1/search", query_string={"q": q},
                      headers=world.headers("agent")).get_json()
    assert world.olga.id in [c["id"] for c in data["customers"]]
    assert numbers(data["tickets"]) == {world.mine.number}


def test_search_by_subject(client: Any, world: World) -> None:
    data = client.get("/api/v1/search", query_string={"q": "invoice"},
                      headers=world.headers("agent")).get_json()
    assert numbers(data["tickets"]) == {world.mine.number}


@pytest.mark.parametrize("q", ["#{theirs}", "{theirs}", "boris@example.com", "Boris",
                               "+44 20 7123 4567", "Secret router"])
def test_search_never_returns_invisible_tickets(client: Any, world: World, q: str) -> None:
    query = q.format(theirs=world.theirs.number)
    response = client.get("/api/v1/search", query_string={"q": query},
                          headers=world.headers("agent"))
    assert response.status_code == 200
    assert world.theirs.number not in numbers(response.get_json()["tickets"])
    assert "Secret" not in json.dumps(response.get_json()["tickets"])
    # The supervisor finds it with the same query.
    sup = client.get("/api/v1/search", query_string={"q": query},
                     headers=world.headers("supervisor")).get_json()
    assert world.theirs.number in numbers(sup["tickets"])


def test_search_shared_subject_words_only_return_visible(client: Any, world: World) -> None:
    data = client.get("/api/v1/search", query_string={"q": "router trouble"},
                      headers=world.headers("agent")).get_json()
    assert numbers(data["tickets"]) == {world.assigned.number}


@pytest.mark.parametrize("q", ["", "   ", "x" * 201])
def test_search_query_is_validated(client: Any, world: World, q: str) -> None:
    response = client.get("/api/v1/search", query_string={"q": q},
                          headers=world.headers("agent"))
    assert response.status_code == 400


def test_search_like_wildcards_are_literal(client: Any, world: World) -> None:
    data = client.get("/api/v1/search", query_string={"q": "%"},
                      headers=world.headers("supervisor")).get_json()
    assert data == {"tickets": [], "customers": []}


# --- replies and notes ----------------------------------------------------------------------

def test_reply_creates_outbound_message_and_enqueues_delivery(client: Any, world: World,
                                                             jobs: Any, session: Any) -> None:
    before = len(jobs.history)
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages",
                           json={"text": "We fixed the invoice."}, headers=world.headers("agent"))
    assert response.status_code == 201
    data = response.get_json()
    assert data["direction"] == "outbound"
    assert data["delivery_state"] == DeliveryState.PENDING
    assert data["author_user_id"] == world.agent.id
    assert data["recipient"] == "olga@example.com"
    assert [j for j in jobs.history[before:] if j[0] == "outbox.deliver"] == \
        [("outbox.deliver", (data["id"],))]
    assert not jobs.failures
    # The synchronous queue delivered it through the api channel already.
    session.expire_all()
    assert session.get(Message, data["id"]).delivery_state == DeliveryState.SENT
    ticket = client.get(f"/api/v1/tickets/{world.mine.number}",
                        headers=world.headers("agent")).get_json()
    assert ticket["status"] == "pending"
    assert ticket["first_response_at"] is not None
    assert [m["direction"] for m in ticket["messages"]] == ["inbound", "outbound"]


def test_internal_note_is_not_enqueued(client: Any, world: World, jobs: Any) -> None:
    before = len(jobs.history)
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages",
                           json={"text": "Customer is VIP", "internal": True},
                           headers=world.headers("agent"))
    assert response.status_code == 201
    data = response.get_json()
    assert data["direction"] == "note"
    assert data["delivery_state"] == DeliveryState.NONE
    assert [j for j in jobs.history[before:] if j[0] == "outbox.deliver"] == []
    ticket = client.get(f"/api/v1/tickets/{world.mine.number}",
                        headers=world.headers("agent")).get_json()
    assert ticket["status"] == "new"
    assert ticket["first_response_at"] is None


def test_reply_html_is_sanitised(client: Any, world: World) -> None:
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages",
                           json={"text": "hi", "html": "<p>ok</p><script>alert(1)</script>"
                                 "<img src=x onerror=alert(1)>"},
                           headers=world.headers("agent"))
    assert response.status_code == 201
    html = response.get_json()["html"]
    assert "<script" not in html and "onerror" not in html and "<p>ok</p>" in html


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": 5},
                                  {"text": "x", "internal": "yes"}, {"html": ["x"]},
                                  {"text": "x" * 100_001}, []])
def test_reply_body_is_validated(client: Any, world: World, body: Any, jobs: Any) -> None:
    before = len(jobs.history)
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages", json=body,
                           headers=world.headers("agent"))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}
    assert [j for j in jobs.history[before:] if j[0] == "outbox.deliver"] == []


def test_reply_not_json_is_400(client: Any, world: World) -> None:
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages", data="text=hi",
                           headers={**world.headers("agent"),
                                    "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


def test_reply_to_closed_ticket_is_409(client: Any, world: World) -> None:
    headers = world.headers("agent")
    assert client.patch(f"/api/v1/tickets/{world.mine.number}", json={"status": "closed"},
                        headers=headers).status_code == 200
    response = client.post(f"/api/v1/tickets/{world.mine.number}/messages",
                           json={"text": "too late"}, headers=headers)
    assert response.status_code == 409
    note = client.post(f"/api/v1/tickets/{world.mine.number}/messages",
                       json={"text": "note after close", "internal": True}, headers=headers)
    assert note.status_code == 201


# --- status changes and assignment ----------------------------------------------------------

def test_status_transitions(client: Any, world: World, events: Any) -> None:
    url, headers = f"/api/v1/tickets/{world.mine.number}", world.headers("agent")
    for status in ("open", "pending", "on_hold", "solved", "open", "solved", "closed"):
        response = client.patch(url, json={"status": status}, headers=headers)
        assert response.status_code == 200, status
        assert response.get_json()["status"] == status
    changes = [e for e in events.published if e.type == "ticket.status_changed"]
    assert [e.payload["status"] for e in changes][-3:] == ["open", "solved", "closed"]
    assert changes[-1].payload["by"] == world.agent.id


def test_illegal_transition_is_409(client: Any, world: World) -> None:
    url, headers = f"/api/v1/tickets/{world.mine.number}", world.headers("agent")
    assert client.patch(url, json={"status": "closed"}, headers=headers).status_code == 200
    response = client.patch(url, json={"status": "open"}, headers=headers)
    assert response.status_code == 409
    assert set(response.get_json()) == {"error"}
    assert client.get(url, headers=headers).get_json()["status"] == "closed"


@pytest.mark.parametrize("body", [{"status": "open", "subject": "x"}, {"priority": "high"},
                                  {"status": "bogus"}, {"assignee_id": "7"},
                                  {"assignee_id": 1.5}, {"assignee_id": True}])
def test_patch_rejects_unknown_fields_and_bad_values(client: Any, world: World,
                                                     body: Any) -> None:
    url = f"/api/v1/tickets/{world.mine.number}"
    response = client.patch(url, json=body, headers=world.headers("agent"))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}
    assert client.get(url, headers=world.headers("agent")).get_json()["status"] == "new"


def test_agent_may_take_a_ticket_but_not_give_it_away(client: Any, world: World) -> None:
    url, headers = f"/api/v1/tickets/{world.mine.number}", world.headers("agent")
    response = client.patch(url, json={"assignee_id": world.agent.id}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["assignee_id"] == world.agent.id
    assert response.get_json()["status"] == "open"
    response = client.patch(url, json={"assignee_id": world.other_agent.id}, headers=headers)
    assert response.status_code == 403
    assert set(response.get_json()) == {"error"}


def test_supervisor_assigns(client: Any, world: World) -> None:
    url = f"/api/v1/tickets/{world.theirs.number}"
    response = client.patch(url, json={"assignee_id": world.agent.id},
                            headers=world.headers("supervisor"))
    assert response.status_code == 200
    # Now assigned to the agent, it becomes visible to them.
    assert client.get(url, headers=world.headers("agent")).status_code == 200


# --- intake through the API ---------------------------------------------------------------

CONTACT = {"external_id": "crm-77", "from": {"kind": "email", "address": "Anna@Example.com",
                                            "name": "Anna"},
           "subject": "Router down", "text": "It blinks red"}


def test_post_contact_creates_a_ticket(client: Any, world: World) -> None:
    response = client.post("/api/v1/contacts", json=CONTACT, headers=world.headers("admin"))
    assert response.status_code == 201
    data = response.get_json()
    assert data["status"] == "created"
    assert isinstance(data["raw_id"], int)
    ticket = client.get(f"/api/v1/tickets/{data['ticket']}",
                        headers=world.headers("admin")).get_json()
    assert ticket["subject"] == "Router down"
    assert ticket["customer"]["identities"][0]["address"] == "anna@example.com"

    again = client.post("/api/v1/contacts", json=CONTACT, headers=world.headers("admin"))
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert again.get_json()["ticket"] == data["ticket"]


def test_post_contact_appends_to_open_ticket(client: Any, world: World) -> None:
    headers = world.headers("admin")
    first = client.post("/api/v1/contacts", json=CONTACT, headers=headers).get_json()
    second = client.post("/api/v1/contacts", json={**CONTACT, "external_id": "crm-78",
                                                   "text": "Still red"},
                         headers=headers)
    assert second.status_code == 200
    assert second.get_json()["status"] == "appended"
    assert second.get_json()["ticket"] == first["ticket"]


@pytest.mark.parametrize("body", ["{not json", "[]", '"a string"', "", "null"])
def test_post_contact_malformed_body_is_400(client: Any, world: World, body: str,
                                            session: Any) -> None:
    response = client.post("/api/v1/contacts", data=body, content_type="application/json",
                           headers=world.headers("admin"))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}
    assert session.query(RawInbound).count() == 0


@pytest.mark.parametrize("body", [
    {"from": {"kind": "email", "address": "a@example.com"}, "text": "no id"},
    {"external_id": "m-1", "text": "no sender"},
    {"external_id": "m-2", "from": {"kind": "email", "address": "a@example.com"}},
    {"external_id": "m-3", "from": {"kind": "pigeon", "address": "coo"}, "text": "x"},
    {"external_id": "m-4", "from": {"kind": "email", "address": ""}, "text": "x"},
    {"external_id": 5, "from": {"kind": "email", "address": "a@example.com"}, "text": "x"},
    {"external_id": "m-5", "from": {"kind": "email", "address": "a@example.com"},
     "text": "x", "ticket_number": "1000"},
])
def test_post_contact_missing_or_bad_fields_is_400(client: Any, world: World, body: Any,
                                                   session: Any) -> None:
    response = client.post("/api/v1/contacts", json=body, headers=world.headers("admin"))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}
    # Nothing is stored for a body that could never be processed.
    assert session.query(RawInbound).count() == 0


def test_post_contact_with_unparseable_address_is_stored_failed_and_replayable(
        client: Any, world: World, session: Any) -> None:
    body = {"external_id": "bad-addr", "from": {"kind": "email", "address": "not-an-email"},
            "text": "hi"}
    response = client.post("/api/v1/contacts", json=body, headers=world.headers("admin"))
    assert response.status_code == 202
    assert response.get_json()["status"] == "failed"
    raw_id = response.get_json()["raw_id"]
    failed = client.get("/api/v1/raw", headers=world.headers("supervisor")).get_json()
    assert [r["id"] for r in failed["items"]] == [raw_id]
    assert failed["items"][0]["state"] == RawState.FAILED
    replay = client.post(f"/api/v1/raw/{raw_id}/replay", headers=world.headers("supervisor"))
    assert replay.status_code == 200
    assert replay.get_json()["status"] == "failed"
    assert client.post("/api/v1/raw/999999/replay",
                       headers=world.headers("supervisor")).status_code == 404


def test_raw_state_is_validated(client: Any, world: World) -> None:
    response = client.get("/api/v1/raw?state=bogus", headers=world.headers("supervisor"))
    assert response.status_code == 400


def test_ticket_created_by_fixture_helper_is_visible_to_supervisor(
        client: Any, world: World, session: Any, settings: Any) -> None:
    ticket = ingest(session, settings, inbox_id=world.inbox_b.id, subject="Fresh one")
    assert client.get(f"/api/v1/tickets/{ticket.number}",
                      headers=world.headers("supervisor")).status_code == 200
    assert client.get(f"/api/v1/tickets/{ticket.number}",
                      headers=world.headers("agent")).status_code == 404


# --- the description ------------------------------------------------------------------------

def test_openapi_is_valid_3_1(client: Any) -> None:
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_api_route_is_described(app: Any, client: Any) -> None:
    import re

    spec = client.get("/api/v1/openapi.json").get_json()
    described: set[tuple[str, str]] = set()
    for path, item in spec["paths"].items():
        for method in item:
            described.add((method.upper(), path))
    routed: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((method, path))
    assert routed, "no API routes found"
    assert routed - described == set()
    assert {p for _, p in described} == {p for _, p in routed}


def test_assigning_to_an_unknown_user_is_refused(client: Any, world: World) -> None:
    url = f"/api/v1/tickets/{world.mine.number}"
    response = client.patch(url, json={"assignee_id": 999999},
                            headers=world.headers("supervisor"))
    assert response.status_code in (400, 404, 409)
    assert set(response.get_json()) == {"error"}
    assert client.get(url, headers=world.headers("supervisor")).get_json()["assignee_id"] is None
