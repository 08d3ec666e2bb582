"""The field pages: who may open them, the agent's visit form, the customer's links."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from contactcenter.events import EventLog
from contactcenter.field.models import Visit, VisitSurvey
from contactcenter.field.service import assign_visit, check_in, check_out, create_visit
from tests.agent_ui.conftest import csrf_of, login
from tests.field.conftest import Field


def test_pages_are_guarded_by_permission(client: Any, field: Field) -> None:
    assert client.get("/field/dispatch").status_code == 302  # sign in first
    login(client, "tech-a@example.test")
    assert client.get("/field/my").status_code == 200
    assert client.get("/field/dispatch").status_code == 403
    assert client.get("/").status_code == 403  # no desk for technicians
    assert client.get(f"/field/new?ticket={field.ticket.number}").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/field/my").get_data(
        as_text=True))})
    login(client, "super@example.test")
    page = client.get("/field/dispatch")
    assert page.status_code == 200 and b"Field report" in page.data
    assert client.get("/field/my").status_code == 403


def test_agent_creates_a_visit_and_offers_times_by_email(client: Any, session: Any,
                                                         field: Field) -> None:
    login(client, "agent@example.test")
    form = client.get(f"/field/new?ticket={field.ticket.number}")
    assert form.status_code == 200
    token = csrf_of(form.get_data(as_text=True))
    bad = client.post("/field/new", data={"csrf_token": token, "ticket": field.ticket.number,
                                          "address": "1 Main St", "problem": ""})
    assert bad.status_code == 400
    done = client.post("/field/new", data={
        "csrf_token": token, "ticket": field.ticket.number, "address": "1 Main St",
        "area": "north", "problem": "Replace the router", "skills": "router",
        "priority": "high", "duration_minutes": "90"})
    assert done.status_code == 302
    visit = session.scalars(select(Visit)).one()
    assert (visit.priority, visit.duration_minutes, visit.skills) == ("high", 90, "router")
    offered = client.post(f"/field/visits/{visit.id}", data={"csrf_token": token,
                                                              "channel": "email"})
    assert offered.status_code == 200
    link = re.search(r'href="(http[^"]+/field/slots/[^"]+)"', offered.get_data(as_text=True))
    assert link is not None
    # The customer opens the link, picks the second window, and it is scheduled.
    path = link.group(1).split("127.0.0.1:5000", 1)[-1].split("localhost", 1)[-1]
    path = path[path.index("/field/slots/"):]
    client.post("/logout", data={"csrf_token": token})
    page = client.get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    choices = re.findall(r'name="slot" value="(\d+)"', text)
    assert len(choices) >= 2
    answer = client.post(path, data={"csrf_token": csrf_of(text), "slot": choices[1]})
    assert b"Thank you" in answer.data
    session.refresh(visit)
    assert visit.confirmation == "confirmed" and visit.window_start is not None
    again = client.get(path)
    assert b"We have your answer" in again.data
    assert client.get(path[:-3] + "abc").status_code == 404
    assert session.scalar(select(EventLog).where(EventLog.type == "field.slot_confirmed"))


def test_customer_answers_the_visit_survey_once(client: Any, session: Any, settings: Any,
                                                field: Field) -> None:
    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "1 Main St", "problem": "Router"})
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id)
    check_in(session, visit, field.tech_a.id)
    check_out(session, settings, visit, field.tech_a.id, {"outcome": "fixed"})
    session.commit()
    from contactcenter.field.links import survey_token

    survey = session.scalars(select(VisitSurvey)).one()
    path = f"/field/survey/{survey_token(settings, survey)}"
    page = client.get(path)
    assert page.status_code == 200
    token = csrf_of(page.get_data(as_text=True))
    assert b"score must" in client.post(path, data={"csrf_token": token, "score": "9"}).data
    ok = client.post(path, data={"csrf_token": token, "score": "4", "on_time": "yes",
                                 "comment": "Quick and tidy"})
    assert b"Thank you" in ok.data
    session.refresh(survey)
    assert (survey.score, survey.on_time, survey.comment) == (4, True, "Quick and tidy")
    assert b"Already answered" in client.get(path).data
    assert client.get("/field/survey/nonsense").status_code == 404


def test_customer_asks_for_another_time_and_the_agent_sees_it(client: Any, session: Any,
                                                              settings: Any,
                                                              field: Field) -> None:
    from contactcenter.field.links import offer_slots
    from contactcenter.tickets.service import list_messages

    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "1 Main St", "problem": "Router"})
    _offer, link = offer_slots(session, settings, visit, "email", field.agent.id)
    session.commit()
    path = link[link.index("/field/slots/"):]
    token = csrf_of(client.get(path).get_data(as_text=True))
    empty = client.post(path, data={"csrf_token": token, "other": "1", "wish": " "})
    assert b"which day and time" in empty.data
    asked = client.post(path, data={"csrf_token": token, "other": "1",
                                    "wish": "Thursday after 16:00"})
    assert b"get back to you" in asked.data
    session.refresh(visit)
    assert visit.window_start is None and visit.confirmation == "none"
    assert any("another time: Thursday after 16:00" in m.text
               for m in list_messages(session, field.ticket))
    assert b"We have your answer" in client.get(path).data


def test_agent_offers_by_phone_and_records_the_chosen_time(client: Any, session: Any,
                                                           settings: Any, field: Field) -> None:
    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "1 Main St", "problem": "Router"})
    session.commit()
    login(client, "agent@example.test")
    page = client.get(f"/field/visits/{visit.id}")
    token = csrf_of(page.get_data(as_text=True))
    offered = client.post(f"/field/visits/{visit.id}", data={"csrf_token": token,
                                                              "channel": "phone"})
    slots = re.findall(r'name="slot" value="(\d+)"', offered.get_data(as_text=True))
    assert len(slots) == settings.field_slot_count
    client.post(f"/field/visits/{visit.id}", data={"csrf_token": token, "slot": slots[0]})
    session.refresh(visit)
    assert visit.confirmation == "confirmed" and visit.confirmed_via == "phone"
    again = client.post(f"/field/visits/{visit.id}", data={"csrf_token": token,
                                                            "slot": slots[1]})
    assert b"no longer on offer" in again.data
