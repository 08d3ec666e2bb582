"""The field API: agents create and schedule, dispatchers assign, technicians work their own."""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from typing import Any

from sqlalchemy import select

from contactcenter.accounts.models import AuditLog
from contactcenter.field.models import Visit
from tests.factories import bearer, make_token, make_user
from tests.field.conftest import Field, add_contract

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def headers(session: Any, user: Any) -> dict[str, str]:
    return bearer(make_token(session, user))


def create(client: Any, session: Any, field: Field, **body: Any) -> dict[str, Any]:
    payload = {"address": "1 Main St", "area": "north", "problem": "Router dead",
               "skills": ["router"], **body}
    response = client.post(f"/api/v1/tickets/{field.ticket.number}/visits", json=payload,
                           headers=headers(session, field.agent))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_agent_creates_offers_and_schedules_a_visit(client: Any, session: Any,
                                                    field: Field) -> None:
    visit = create(client, session, field)
    h = headers(session, field.agent)
    listed = client.get(f"/api/v1/tickets/{field.ticket.number}/visits", headers=h).get_json()
    assert [v["id"] for v in listed["items"]] == [visit["id"]]
    offer = client.post(f"/api/v1/field/visits/{visit['id']}/offer", json={"channel": "email"},
                        headers=h).get_json()
    assert offer["slots"] and "/field/slots/" in offer["link"]
    slot = offer["slots"][0]
    done = client.post(f"/api/v1/field/visits/{visit['id']}/schedule",
                       json={"start": slot["start"], "end": slot["end"]}, headers=h)
    assert done.status_code == 200 and done.get_json()["confirmation"] == "confirmed"
    bad = client.post(f"/api/v1/field/visits/{visit['id']}/schedule",
                      json={"start": "soon", "end": slot["end"]}, headers=h)
    assert bad.status_code == 400
    # The other queue's agent sees neither the ticket nor its visits.
    stranger = make_user(session, "agent")
    hs = headers(session, stranger)
    assert client.get(f"/api/v1/tickets/{field.ticket.number}/visits",
                      headers=hs).status_code == 404
    assert client.post(f"/api/v1/field/visits/{visit['id']}/offer", json={"channel": "email"},
                       headers=hs).status_code == 404
    assert client.get(f"/api/v1/field/visits/{visit['id']}", headers=hs).status_code == 404


def test_dispatcher_gets_suggestions_assigns_and_sees_costs_audited(
        client: Any, session: Any, field: Field) -> None:
    visit = create(client, session, field)
    h = headers(session, field.supervisor)
    ranked = client.get(f"/api/v1/field/visits/{visit['id']}/suggestions", headers=h).get_json()
    assert ranked["items"][0]["technician_id"] == field.tech_a.id
    assert ranked["items"][0]["in_area"] is True
    assigned = client.post(f"/api/v1/field/visits/{visit['id']}/assign",
                           json={"technician_id": field.tech_a.id}, headers=h)
    assert assigned.get_json()["state"] == "assigned"
    board = client.get("/api/v1/field/board", headers=h).get_json()
    mine = next(t for t in board["technicians"] if t["id"] == field.tech_a.id)
    assert [v["id"] for v in mine["visits"]] == [visit["id"]]
    shown = client.get(f"/api/v1/field/visits/{visit['id']}", headers=h).get_json()
    assert "cost" in shown
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "field_visit"))
    agent_view = client.get(f"/api/v1/field/visits/{visit['id']}",
                            headers=headers(session, field.agent)).get_json()
    assert "cost" not in agent_view
    assert client.get("/api/v1/field/board",
                      headers=headers(session, field.agent)).status_code == 403


def test_technician_sees_only_their_own_visits_and_nothing_financial(
        client: Any, session: Any, field: Field) -> None:
    add_contract(session, field)
    visit = create(client, session, field)
    other = create(client, session, field, problem="Second")
    hs = headers(session, field.supervisor)
    client.post(f"/api/v1/field/visits/{visit['id']}/assign",
                json={"technician_id": field.tech_a.id}, headers=hs)
    client.post(f"/api/v1/field/visits/{other['id']}/assign",
                json={"technician_id": field.tech_b.id}, headers=hs)
    ha = headers(session, field.tech_a)
    day = client.get("/api/v1/field/my/visits", headers=ha).get_json()
    assert [v["id"] for v in day["items"]] == [visit["id"]]
    detail = client.get(f"/api/v1/field/my/visits/{visit['id']}", headers=ha).get_json()
    assert detail["customer"]["name"] == "Olga Smirnova"
    assert any("does not power on" in m["text"] for m in detail["history"])
    flat = str(detail).lower()
    for secret in ("cost", "balance", "lifetime", "contract", "value", "purchase", "email"):
        assert secret not in flat, secret
    assert client.get(f"/api/v1/field/my/visits/{other['id']}", headers=ha).status_code == 404
    assert client.post(f"/api/v1/field/my/visits/{other['id']}/check-in",
                       headers=ha).status_code == 404
    # No desk, no ticket API, no dispatch, no other visit through the agent endpoints.
    assert client.get(f"/api/v1/tickets/{field.ticket.number}", headers=ha).status_code == 403
    assert client.get(f"/api/v1/tickets/{field.other_ticket.number}/visits",
                      headers=ha).status_code == 403
    assert client.get(f"/api/v1/field/visits/{other['id']}", headers=ha).status_code == 403
    assert client.get("/api/v1/field/board", headers=ha).status_code == 403
    assert client.get("/api/v1/field/report", headers=ha).status_code == 403


def test_technician_works_a_visit_through_the_api(client: Any, session: Any,
                                                  field: Field) -> None:
    visit = create(client, session, field)
    client.post(f"/api/v1/field/visits/{visit['id']}/assign",
                json={"technician_id": field.tech_a.id},
                headers=headers(session, field.supervisor))
    ha = headers(session, field.tech_a)
    base = f"/api/v1/field/my/visits/{visit['id']}"
    assert client.post(f"{base}/travel", headers=ha).status_code == 200
    assert client.post(f"{base}/check-in", headers=ha).get_json()["state"] == "in_progress"
    part = client.post(f"{base}/parts", json={"name": "Router X", "quantity": 1,
                                              "unit_cost": "79.00"}, headers=ha).get_json()
    assert part["parts"][0]["name"] == "Router X" and "unit_cost" not in str(part)
    photo = client.post(f"{base}/photos", headers=ha,
                        data={"photo": (BytesIO(PNG), "box.png")},
                        content_type="multipart/form-data")
    assert photo.status_code == 200, photo.get_json()
    photo_id = photo.get_json()["photos"][0]["id"]
    bad = client.post(f"{base}/photos", headers=ha,
                      data={"photo": (BytesIO(b"MZ\x90\x00evil"), "x.png")},
                      content_type="multipart/form-data")
    assert bad.status_code == 400
    img = client.get(f"/api/v1/field/visits/{visit['id']}/photos/{photo_id}", headers=ha)
    assert img.status_code == 200 and img.data == PNG
    assert client.get(f"/api/v1/field/visits/{visit['id']}/photos/{photo_id}",
                      headers=headers(session, field.tech_b)).status_code == 404
    out = client.post(f"{base}/check-out", json={"outcome": "fixed", "signed_by": "Olga"},
                      headers=ha).get_json()
    assert out["state"] == "completed" and out["outcome"] == "fixed"
    report = client.get("/api/v1/field/report", headers=headers(session, field.supervisor))
    figures = report.get_json()
    assert figures["visits"] == 1 and figures["first_time_fix_rate"] == 100.0
    assert figures["cost_per_visit"] is not None
    stored = session.get(Visit, visit["id"])
    session.refresh(stored)
    assert stored.checked_out_at is not None
    assert dt.datetime.now(dt.UTC) >= stored.checked_out_at


def test_technician_history_leaves_out_agents_internal_notes(client: Any, session: Any,
                                                             field: Field) -> None:
    from contactcenter.tickets.service import add_reply

    add_reply(session, field.ticket, field.agent.id, "Customer owes 300 EUR, careful",
              internal=True)
    session.commit()
    visit = create(client, session, field)
    client.post(f"/api/v1/field/visits/{visit['id']}/assign",
                json={"technician_id": field.tech_a.id},
                headers=headers(session, field.supervisor))
    detail = client.get(f"/api/v1/field/my/visits/{visit['id']}",
                        headers=headers(session, field.tech_a)).get_json()
    texts = [m["text"] for m in detail["history"]]
    assert not any("owes" in t for t in texts)
    assert any(t.startswith("[Visit #") for t in texts)
    assert any("does not power on" in t for t in texts)


def test_odd_json_is_refused_not_crashed(client: Any, session: Any, field: Field) -> None:
    visit = create(client, session, field, follow_up_of_id=12345)
    assert session.get(Visit, visit["id"]).follow_up_of_id is None  # not taken from input
    h = headers(session, field.agent)
    for body in ({"problem": ["x"]}, {"problem": "x", "priority": ["high"]},
                 {"problem": "x", "duration_minutes": "60"}, {"problem": "x", "skills": 5}):
        response = client.post(f"/api/v1/tickets/{field.ticket.number}/visits",
                               json={"address": "1 Main St", **body}, headers=h)
        assert response.status_code == 400, body
    client.post(f"/api/v1/field/visits/{visit['id']}/assign",
                json={"technician_id": field.tech_a.id},
                headers=headers(session, field.supervisor))
    ha = headers(session, field.tech_a)
    base = f"/api/v1/field/my/visits/{visit['id']}"
    client.post(f"{base}/check-in", headers=ha)
    assert client.post(f"{base}/check-out", json={"outcome": ["fixed"]},
                       headers=ha).status_code == 400
    assert client.post(f"{base}/parts", json={"name": "x", "unit_cost": {"a": 1}},
                       headers=ha).status_code == 400
    assert client.post(f"{base}/photos", json={}, headers=ha).status_code == 400
