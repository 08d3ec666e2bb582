"""Editing a customer's identities from the desk: roles, CSRF, validation, conflict, audit, events.

The desk calls the REST API's customer endpoints with its session cookie and the CSRF
header, so these tests do the same (and a few use a bearer token, as integrators would).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.accounts.models import AuditLog
from contactcenter.customers.models import Customer, CustomerIdentity
from tests.agent_ui.conftest import Desk, csrf_headers, csrf_of, login
from tests.agent_ui.test_socket import NS, connect, received_events, rooms_of
from tests.factories import bearer, make_customer, make_token, make_user


def url(customer_id: int, identity_id: int | None = None) -> str:
    base = f"/api/v1/customers/{customer_id}/identities"
    return base if identity_id is None else f"{base}/{identity_id}"


def identities(session: Any, customer_id: int) -> set[tuple[str, str]]:
    session.expire_all()
    return {(i.kind, i.address) for i in session.scalars(
        select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id))}


def audits(session: Any, action: str) -> list[AuditLog]:
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


# --- roles and CSRF ----------------------------------------------------------------------

def test_anonymous_is_401_and_knowledge_editor_403(client: Any, desk: Desk) -> None:
    cid = desk.mine.customer_id
    assert client.post(url(cid), json={"kind": "chat", "address": "v-1"}).status_code == 401
    login(client, "kb@example.test")
    headers = {"X-CSRFToken": csrf_of(client.get("/login").get_data(as_text=True))}
    assert client.post(url(cid), json={"kind": "chat", "address": "v-1"},
                       headers=headers).status_code == 403
    assert client.patch(f"/api/v1/customers/{cid}", json={"name": "X"},
                        headers=headers).status_code == 403


def test_a_session_write_without_the_csrf_header_is_refused(client: Any, desk: Desk,
                                                             agent: dict[str, str],
                                                             session: Any) -> None:
    cid = desk.mine.customer_id
    response = client.post(url(cid), json={"kind": "chat", "address": "v-1"})
    assert response.status_code == 401
    assert ("chat", "v-1") not in identities(session, cid)


def test_agent_adds_a_phone_stored_in_e164(client: Any, desk: Desk, agent: dict[str, str],
                                           session: Any) -> None:
    cid = desk.mine.customer_id
    response = client.post(url(cid), json={"kind": "phone", "address": "8 (916) 123-45-67",
                                           "region": "ru"}, headers=agent)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["identity"]["address"] == "+79161234567"
    assert data["identity"]["kind"] == "phone" and data["identity"]["verified"] is False
    assert {"kind": "phone", "address": "+79161234567", "verified": False,
            "id": data["identity"]["id"]} in data["customer"]["identities"]
    assert ("phone", "+79161234567") in identities(session, cid)
    # Adding it again changes nothing and says so with 200.
    again = client.post(url(cid), json={"kind": "phone", "address": "+7 916 123 45 67"},
                        headers=agent)
    assert again.status_code == 200
    assert again.get_json()["identity"]["id"] == data["identity"]["id"]
    assert len(audits(session, "customer.identity_add")) == 1


def test_agent_adds_email_and_chat_id(client: Any, desk: Desk, agent: dict[str, str],
                                      session: Any) -> None:
    cid = desk.mine.customer_id
    assert client.post(url(cid), json={"kind": "email", "address": " <Olga.Work@Example.COM> "},
                       headers=agent).status_code == 201
    assert client.post(url(cid), json={"kind": "chat", "address": "visitor-42"},
                       headers=agent).status_code == 201
    assert {("email", "olga.work@example.com"), ("chat", "visitor-42")} <= identities(session,
                                                                                      cid)


def test_bearer_token_callers_edit_too(client: Any, desk: Desk, session: Any) -> None:
    token = make_token(session, desk.agent)
    cid = desk.mine.customer_id
    response = client.post(url(cid), json={"kind": "chat", "address": "v-7"},
                           headers=bearer(token))
    assert response.status_code == 201


# --- validation --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"kind": "email", "address": "not an address"},
    {"kind": "email", "address": "<script>alert(1)</script>@x"},
    {"kind": "phone", "address": "12"},
    {"kind": "phone", "address": "call me maybe"},
    {"kind": "phone", "address": "+1 202 555 0100", "region": "XX"},
    {"kind": "chat", "address": "   "},
    {"kind": "chat", "address": "x" * 401},
    {"kind": "external", "address": "crm-1"},
    {"kind": "fax", "address": "1"},
    {"kind": 1, "address": "a@example.com"},
    {"address": "a@example.com"},
    {"kind": "email"},
])
def test_invalid_input_is_400_and_changes_nothing(client: Any, desk: Desk, agent: dict[str, str],
                                                  session: Any, body: dict[str, Any]) -> None:
    cid = desk.mine.customer_id
    before = identities(session, cid)
    response = client.post(url(cid), json=body, headers=agent)
    assert response.status_code == 400, response.get_json()
    assert set(response.get_json()) == {"error"}
    assert identities(session, cid) == before
    assert audits(session, "customer.identity_add") == []


def test_a_body_that_is_not_an_object_is_400(client: Any, desk: Desk,
                                             agent: dict[str, str]) -> None:
    response = client.post(url(desk.mine.customer_id), data="[]", headers={
        **agent, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_unknown_customer_is_404(client: Any, desk: Desk, agent: dict[str, str]) -> None:
    assert client.post(url(999999), json={"kind": "chat", "address": "v"},
                       headers=agent).status_code == 404
    assert client.delete(url(999999, 1), headers=agent).status_code == 404
    assert client.patch("/api/v1/customers/999999", json={"name": "x"},
                        headers=agent).status_code == 404


# --- conflicts ---------------------------------------------------------------------------

def test_an_address_of_another_customer_is_409_without_naming_them_to_an_agent(
        client: Any, desk: Desk, agent: dict[str, str], session: Any) -> None:
    boris = desk.theirs.customer_id
    response = client.post(url(desk.mine.customer_id),
                           json={"kind": "email", "address": "BORIS@example.com"}, headers=agent)
    assert response.status_code == 409
    data = response.get_json()
    assert data["conflict"] == "identity_exists"
    assert "already belongs to another customer" in data["error"] and "merge" in data["error"]
    text = response.get_data(as_text=True)
    assert "merge_customer_id" not in data and str(boris) not in text and "Boris" not in text
    assert ("email", "boris@example.com") in identities(session, boris)
    assert ("email", "boris@example.com") not in identities(session, desk.mine.customer_id)


def test_a_supervisor_gets_the_customer_to_merge(client: Any, desk: Desk,
                                                 session: Any) -> None:
    login(client, "super@example.test")
    headers = csrf_headers(client)
    response = client.post(url(desk.mine.customer_id),
                           json={"kind": "email", "address": "boris@example.com"},
                           headers=headers)
    assert response.status_code == 409
    assert response.get_json()["merge_customer_id"] == desk.theirs.customer_id


def test_an_address_of_a_customer_merged_into_this_one_is_no_conflict(
        client: Any, desk: Desk, agent: dict[str, str], session: Any) -> None:
    from contactcenter.customers.service import merge_customers

    dup = make_customer(session, "Olga dup", email="olga.dup@example.com")
    session.commit()
    merge_customers(session, desk.mine.customer_id, dup.id, None)
    session.commit()
    response = client.post(url(dup.id), json={"kind": "email", "address": "olga.dup@example.com"},
                           headers=agent)
    assert response.status_code == 200  # the merged id resolves to the survivor, who has it


# --- removal -----------------------------------------------------------------------------

def test_agent_removes_an_identity(client: Any, desk: Desk, agent: dict[str, str],
                                   session: Any, events: Any) -> None:
    cid = desk.mine.customer_id
    added = client.post(url(cid), json={"kind": "chat", "address": "visitor-9"},
                        headers=agent).get_json()["identity"]
    email_id = session.scalar(select(CustomerIdentity.id).where(
        CustomerIdentity.customer_id == cid, CustomerIdentity.kind == "email"))
    events.published.clear()
    response = client.delete(url(cid, email_id), headers=agent)
    assert response.status_code == 200
    assert [i["address"] for i in response.get_json()["customer"]["identities"]] == ["visitor-9"]
    assert identities(session, cid) == {("chat", "visitor-9")}
    rows = audits(session, "customer.identity_remove")
    assert len(rows) == 1 and rows[0].actor_user_id == desk.agent.id
    assert rows[0].object_type == "customer" and rows[0].object_id == str(cid)
    assert "olga@example.com" in rows[0].detail
    assert [(e.type, e.payload) for e in events.published] == [
        ("customer.updated", {"customer_id": cid, "change": "identity_removed", "kind": "email"})]
    # The last one stays.
    last = client.delete(url(cid, added["id"]), headers=agent)
    assert last.status_code == 409 and "at least one address" in last.get_json()["error"]
    assert last.get_json()["conflict"] == "last_identity"
    assert identities(session, cid) == {("chat", "visitor-9")}


def test_an_identity_of_another_customer_is_404(client: Any, desk: Desk, agent: dict[str, str],
                                                session: Any) -> None:
    boris_identity = session.scalar(select(CustomerIdentity.id).where(
        CustomerIdentity.customer_id == desk.theirs.customer_id))
    client.post(url(desk.mine.customer_id), json={"kind": "chat", "address": "v-2"},
                headers=agent)
    response = client.delete(url(desk.mine.customer_id, boris_identity), headers=agent)
    assert response.status_code == 404
    assert ("email", "boris@example.com") in identities(session, desk.theirs.customer_id)


def test_an_imported_external_id_is_not_removed_by_hand(client: Any, desk: Desk,
                                                        agent: dict[str, str],
                                                        session: Any) -> None:
    cid = desk.mine.customer_id
    row = CustomerIdentity(customer_id=cid, kind="external", address="crm-77")
    session.add(row)
    session.commit()
    response = client.delete(url(cid, row.id), headers=agent)
    assert response.status_code == 400
    assert ("external", "crm-77") in identities(session, cid)


# --- audit and events --------------------------------------------------------------------

def test_an_addition_is_audited_and_announced_after_commit(client: Any, desk: Desk,
                                                           agent: dict[str, str], session: Any,
                                                           events: Any) -> None:
    cid = desk.mine.customer_id
    events.published.clear()
    client.post(url(cid), json={"kind": "phone", "address": "+1 202 555 0143"}, headers=agent)
    rows = audits(session, "customer.identity_add")
    assert [(r.actor_user_id, r.object_id, r.detail) for r in rows] == [
        (desk.agent.id, str(cid), "added phone +12025550143")]
    [event] = events.published
    assert event.type == "customer.updated"
    assert event.payload == {"customer_id": cid, "change": "identity_added", "kind": "phone"}
    assert f"customer:{cid}" in event.rooms
    # No address travels in the event: screens re-read the customer through the API.
    assert "2025550143" not in str(event.to_json())


def test_a_refused_change_publishes_nothing(client: Any, desk: Desk, agent: dict[str, str],
                                            events: Any) -> None:
    events.published.clear()
    client.post(url(desk.mine.customer_id), json={"kind": "email",
                                                  "address": "boris@example.com"}, headers=agent)
    client.post(url(desk.mine.customer_id), json={"kind": "email", "address": "bad"},
                headers=agent)
    assert events.published == []


def test_an_agent_watching_the_customers_ticket_hears_the_change(
        app: Any, client: Any, desk: Desk, session: Any, agent: dict[str, str]) -> None:
    colleague = make_user(session, "agent", email="second@example.test")
    session.commit()
    other = app.test_client()
    login(other, "second@example.test")
    watcher = connect(app, client)
    assert watcher.emit("watch", {"ticket_id": desk.mine.id}, namespace=NS, callback=True)["ok"]
    cid = desk.mine.customer_id
    assert f"customer:{cid}" in rooms_of(app, watcher)
    watcher.get_received(NS)
    headers = csrf_headers(other)
    assert client.post(url(cid), json={"kind": "chat", "address": "v-live"},
                       headers=agent).status_code == 201
    assert other.patch(f"/api/v1/customers/{cid}", json={"name": "Olga S. Smirnova"},
                       headers=headers).status_code == 200
    types = [(e["type"], e["payload"]["change"]) for e in received_events(watcher)]
    assert types == [("customer.updated", "identity_added"), ("customer.updated", "details")]
    assert colleague.id != desk.agent.id
    watcher.disconnect(NS)


def test_watching_another_customers_ticket_leaves_the_first_customers_room(
        app: Any, client: Any, desk: Desk, session: Any, agent: dict[str, str]) -> None:
    from tests.agent_ui.conftest import ingest

    other_ticket = ingest(session, app.extensions["contactcenter"].settings,
                          inbox_id=desk.inbox_a.id, sender="ivan@example.com", name="Ivan")
    sock = connect(app, client)
    sock.emit("watch", {"ticket_id": desk.mine.id}, namespace=NS, callback=True)
    sock.emit("watch", {"ticket_id": other_ticket.id}, namespace=NS, callback=True)
    joined = {r for r in rooms_of(app, sock) if r.startswith("customer:")}
    assert joined == {f"customer:{other_ticket.customer_id}"}
    sock.disconnect(NS)


# --- name and language -------------------------------------------------------------------

def test_agent_edits_name_and_language(client: Any, desk: Desk, agent: dict[str, str],
                                       session: Any) -> None:
    cid = desk.mine.customer_id
    response = client.patch(f"/api/v1/customers/{cid}",
                            json={"name": "  Olga   Petrovna ", "language": "RU"}, headers=agent)
    assert response.status_code == 200
    assert response.get_json()["name"] == "Olga Petrovna"
    assert response.get_json()["language"] == "ru"
    [row] = audits(session, "customer.update")
    assert "Olga Smirnova" in row.detail and "Olga Petrovna" in row.detail
    # The same values again: nothing changes, nothing more is audited.
    client.patch(f"/api/v1/customers/{cid}", json={"name": "Olga Petrovna"}, headers=agent)
    assert len(audits(session, "customer.update")) == 1


@pytest.mark.parametrize("body", [
    {"name": "x" * 201}, {"name": 5}, {"name": "a\x00b"}, {"language": "russian!"},
    {"language": 7}, {"value_tier": "A"}, {"lifetime_value": "1"}, {"merged_into_id": 1},
])
def test_bad_details_are_400(client: Any, desk: Desk, agent: dict[str, str], session: Any,
                             body: dict[str, Any]) -> None:
    cid = desk.mine.customer_id
    response = client.patch(f"/api/v1/customers/{cid}", json=body, headers=agent)
    assert response.status_code == 400
    session.expire_all()
    customer = session.get(Customer, cid)
    assert customer.name == "Olga Smirnova" and customer.value_tier is None
    assert customer.merged_into_id is None


def test_the_workspace_says_whether_the_agent_may_edit(client: Any, desk: Desk,
                                                       agent: dict[str, str]) -> None:
    data = client.get(f"/desk/api/tickets/{desk.mine.number}/workspace").get_json()
    assert data["can_edit_customers"] is True
    assert all(isinstance(i["id"], int) for i in data["customer"]["identities"])


def test_the_api_description_lists_the_new_operations(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/customers/{customer_id}/identities"]
    assert "409" in paths["/customers/{customer_id}/identities"]["post"]["responses"]
    assert "delete" in paths["/customers/{customer_id}/identities/{identity_id}"]
    assert "patch" in paths["/customers/{customer_id}"]


def test_a_concurrent_insert_of_the_same_address_ends_as_a_conflict(
        client: Any, desk: Desk, agent: dict[str, str], session: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two agents adding one address at once: the loser's insert hits the unique key."""
    from contactcenter.customers import service

    real = service.find_identity
    calls = {"n": 0}

    def racing(sess: Any, kind: str, address: str) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(sess, kind, address)  # the check ran too early

    monkeypatch.setattr(service, "find_identity", racing)
    response = client.post(url(desk.mine.customer_id),
                           json={"kind": "email", "address": "boris@example.com"}, headers=agent)
    assert response.status_code == 409
    assert response.get_json()["conflict"] == "identity_exists"
    assert ("email", "boris@example.com") in identities(session, desk.theirs.customer_id)
    # The session is usable afterwards: the savepoint, not the request, was rolled back.
    assert client.post(url(desk.mine.customer_id), json={"kind": "chat", "address": "v-ok"},
                       headers=agent).status_code == 201


@pytest.mark.postgres
def test_concurrent_adds_on_postgres_give_one_owner_and_clean_conflicts(
        pg_db: Any, tmp_path: Any) -> None:
    """Eight agents add one address at once, to eight customers and then to one."""
    import threading

    from contactcenter.customers.errors import IdentityConflictError
    from contactcenter.customers.service import add_customer_identity

    with pg_db.session() as s:
        ids = [make_customer(s, f"Twin {i}").id for i in range(8)]
        s.commit()

    def race(customer_ids: list[int], address: str) -> list[Any]:
        barrier, results = threading.Barrier(len(customer_ids)), [None] * len(customer_ids)

        def work(i: int) -> None:
            with pg_db.session() as s:
                customer = s.get(Customer, customer_ids[i])
                barrier.wait(timeout=30)
                try:
                    _identity, created = add_customer_identity(s, customer, "email", address,
                                                               None)
                    s.commit()
                    results[i] = "created" if created else "had it"
                except IdentityConflictError:
                    s.rollback()
                    results[i] = "conflict"
                except Exception as exc:  # noqa: BLE001 - reported by the assertion
                    results[i] = repr(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(customer_ids))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return results

    assert sorted(race(ids, "shared@example.com")) == ["conflict"] * 7 + ["created"]
    assert sorted(race([ids[0]] * 8, "same@example.com")) == ["created"] + ["had it"] * 7
    with pg_db.session() as s:
        owners = list(s.scalars(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.address.in_(["shared@example.com", "same@example.com"]))))
        assert len(owners) == 2
        assert len(list(s.scalars(select(AuditLog).where(
            AuditLog.action == "customer.identity_add")))) == 2


def test_a_phone_without_a_region_is_read_in_the_deployments_region(
        app: Any, client: Any, desk: Desk, agent: dict[str, str], session: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    services = app.extensions["contactcenter"]
    monkeypatch.setattr(services, "settings", services.settings.replace(phone_region="RU"))
    cid = desk.mine.customer_id
    response = client.post(url(cid), json={"kind": "phone", "address": "8 (916) 555-01-02"},
                           headers=agent)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["identity"]["address"] == "+79165550102"
    # A region in the request still wins.
    response = client.post(url(cid), json={"kind": "phone", "address": "(202) 555-0143",
                                           "region": "US"}, headers=agent)
    assert response.get_json()["identity"]["address"] == "+12025550143"


def test_a_rename_reaches_the_inboxes_listing_the_customers_tickets_only(
        app: Any, client: Any, desk: Desk, session: Any, agent: dict[str, str]) -> None:
    make_user(session, "agent", email="billing2@example.test", queues=(desk.queue_a,))
    make_user(session, "agent", email="tech@example.test", queues=(desk.queue_b,))
    session.commit()
    listeners = {}
    for email in ("billing2@example.test", "tech@example.test"):
        other = app.test_client()
        login(other, email)
        listeners[email] = connect(app, other)  # in the queue's room, watching nothing
        listeners[email].get_received(NS)
    cid = desk.mine.customer_id

    def heard(email: str) -> list[dict[str, Any]]:
        return [e for e in received_events(listeners[email]) if e["type"] == "customer.updated"]

    assert client.patch(f"/api/v1/customers/{cid}", json={"language": "de"},
                        headers=agent).status_code == 200
    assert heard("billing2@example.test") == []  # the language shows in no list
    assert client.patch(f"/api/v1/customers/{cid}", json={"name": "Olga S. Smirnova"},
                        headers=agent).status_code == 200
    [event] = heard("billing2@example.test")
    assert event["payload"] == {"customer_id": cid, "change": "details", "fields": ["name"]}
    assert heard("tech@example.test") == []  # the customer has no ticket in that queue
    for sock in listeners.values():
        sock.disconnect(NS)
