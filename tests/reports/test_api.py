"""The reports API and pages: permissions, staffing, reports with CSV, supervisor actions, CSAT."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.reports.csv import safe_cell, to_csv
from contactcenter.routing.models import AgentState
from contactcenter.tickets.models import RawInbound, Ticket
from tests.factories import bearer, make_queue, make_token, make_user


def csrf_of(page: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)

SUPERVISOR_GETS = ["/api/v1/supervisor/wallboard", "/api/v1/reports",
                   "/api/v1/staffing?calls=1&aht_seconds=1&target_seconds=1&agents=1",
                   "/api/v1/supervisor/at-risk", "/api/v1/supervisor/failed-intake"]
SUPERVISOR_POSTS = ["/api/v1/supervisor/tickets/1/reassign",
                    "/api/v1/supervisor/tickets/1/priority",
                    "/api/v1/supervisor/tickets/1/note", "/api/v1/supervisor/agents/1/presence",
                    "/api/v1/supervisor/agents/1/capacity",
                    "/api/v1/supervisor/failed-intake/1/replay"]
PAGES = ["/supervisor", "/supervisor/at-risk", "/supervisor/reports", "/supervisor/staffing"]


@pytest.fixture
def tokens(app: Any) -> dict[str, str]:
    from contactcenter.app import services

    with services(app).db.session() as s:
        result = {role: make_token(s, make_user(s, role)) for role in ("agent", "supervisor")}
    return result


def test_agents_get_403_everywhere(client: Any, tokens: dict[str, str]) -> None:
    for url in SUPERVISOR_GETS:
        assert client.get(url, headers=bearer(tokens["agent"])).status_code == 403, url
        assert client.get(url).status_code == 401, url
    for url in SUPERVISOR_POSTS:
        assert client.post(url, json={}, headers=bearer(tokens["agent"])).status_code == 403, url


def test_agents_get_403_on_pages(app: Any, client: Any) -> None:
    from contactcenter.app import services
    from tests.factories import PASSWORD

    with services(app).db.session() as s:
        agent = make_user(s, "agent", email="pages-agent@example.test")
        s.commit()
        del agent
    form = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"email": "pages-agent@example.test", "password": PASSWORD,
                                "csrf_token": csrf_of(form)})
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert client.get("/me/csat").status_code == 200


def test_staffing_endpoint_matches_the_worked_example(client: Any, tokens: dict[str, str]) -> None:
    response = client.get("/api/v1/staffing?calls=100&interval_seconds=1800&aht_seconds=180"
                          "&target_seconds=20&service_level=80&shrinkage=30",
                          headers=bearer(tokens["supervisor"]))
    data = response.get_json()
    assert response.status_code == 200
    assert data["agents"] == 14 and data["scheduled_headcount"] == 20
    assert round(data["service_level"], 4) == 0.8884
    bad = client.get("/api/v1/staffing?calls=abc&aht_seconds=1&target_seconds=1&agents=1",
                     headers=bearer(tokens["supervisor"]))
    assert bad.status_code == 400 and set(bad.get_json()) == {"error"}
    both = client.get("/api/v1/staffing?calls=1&aht_seconds=1&target_seconds=1&agents=1"
                      "&service_level=0.8", headers=bearer(tokens["supervisor"]))
    assert both.status_code == 400


def test_staffing_cli_prints_json() -> None:
    import json

    from click.testing import CliRunner

    from contactcenter.reports.cli import staffing

    result = CliRunner().invoke(staffing, ["--calls", "100", "--interval-seconds", "1800",
                                           "--aht-seconds", "180", "--target-seconds", "20",
                                           "--agents", "14", "--shrinkage", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agents"] == 14 and round(data["wait_probability"], 4) == 0.1741
    assert round(data["asa_seconds"], 1) == 7.8 and data["scheduled_headcount"] == 20
    refused = CliRunner().invoke(staffing, ["--calls", "1", "--aht-seconds", "0",
                                            "--target-seconds", "1", "--agents", "1"])
    assert refused.exit_code != 0


def test_report_json_csv_and_bad_filters(client: Any, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["supervisor"])
    ok = client.get("/api/v1/reports?start=2026-03-01&end=2026-03-03", headers=headers)
    assert ok.status_code == 200 and ok.get_json()["volume"]["total"] == 0
    exported = client.get("/api/v1/reports?start=2026-03-01&end=2026-03-03&format=csv",
                          headers=headers)
    assert exported.mimetype == "text/csv"
    assert "volume by hour" in exported.get_data(as_text=True)
    for query in ("start=yesterday", "start=2026-03-03&end=2026-03-01", "queue_id=x",
                  "start=2020-01-01&end=2026-01-01", "agent_id=-1"):
        bad = client.get(f"/api/v1/reports?{query}", headers=headers)
        assert bad.status_code == 400, query


def test_csv_cells_cannot_become_formulas() -> None:
    assert safe_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert safe_cell("+1") == "'+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2+3") == "'-2+3" and safe_cell("\t=1") == "'\t=1"
    assert safe_cell(-2) == -2 and safe_cell(None) == "" and safe_cell("plain") == "plain"
    rows = list(csv.reader(io.StringIO(to_csv(["name"], [["=cmd|' /C calc'!A0"], ["ok"]]))))
    assert rows == [["name"], ["'=cmd|' /C calc'!A0"], ["ok"]]


def test_reassign_priority_and_note(app: Any, client: Any, tokens: dict[str, str],
                                    events: Any) -> None:
    from contactcenter.app import services
    from contactcenter.tickets.intake import ingest_inbound
    from tests.factories import make_contact, make_inbox

    db = services(app).db
    with db.session() as s:
        queue = make_queue(s)
        inbox = make_inbox(s, queue)
        first = make_user(s, "agent", queues=(queue,))
        second = make_user(s, "agent", queues=(queue,))
        s.commit()
        result = ingest_inbound(s, make_contact(inbox_id=inbox.id), settings=services(app).settings)
        s.commit()
        ticket_id, second_id = result.ticket_id, second.id
        del first
    headers = bearer(tokens["supervisor"])
    moved = client.post(f"/api/v1/supervisor/tickets/{ticket_id}/reassign",
                        json={"agent_id": second_id}, headers=headers)
    assert moved.status_code == 200, moved.get_json()
    assigned = [e for e in events.published if e.type == "ticket.assigned"]
    assert assigned and f"agent:{second_id}" in assigned[-1].rooms
    raised = client.post(f"/api/v1/supervisor/tickets/{ticket_id}/priority", json={},
                         headers=headers)
    assert raised.get_json()["priority"] == "high"
    noted = client.post(f"/api/v1/supervisor/tickets/{ticket_id}/note",
                        json={"text": "Call them back today"}, headers=headers)
    assert noted.status_code == 200
    with db.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None and ticket.assignee_id == second_id
        assert ticket.priority == "high"
    for body in ({"agent_id": "x"}, {"agent_id": 999999}, {}):
        assert client.post(f"/api/v1/supervisor/tickets/{ticket_id}/reassign", json=body,
                           headers=headers).status_code == 400
    assert client.post(f"/api/v1/supervisor/tickets/{ticket_id}/priority",
                       json={"priority": "'; drop"}, headers=headers).status_code == 400
    assert client.post(f"/api/v1/supervisor/tickets/{ticket_id}/note", json={"text": ""},
                       headers=headers).status_code == 400


def test_presence_and_capacity_changes(app: Any, client: Any, tokens: dict[str, str]) -> None:
    from contactcenter.app import services

    with services(app).db.session() as s:
        agent = make_user(s, "agent")
        s.commit()
        agent_id = agent.id
    headers = bearer(tokens["supervisor"])
    assert client.post(f"/api/v1/supervisor/agents/{agent_id}/presence",
                       json={"presence": "available"}, headers=headers).status_code == 200
    assert client.post(f"/api/v1/supervisor/agents/{agent_id}/capacity",
                       json={"kind": "chat", "maximum": 5}, headers=headers).status_code == 200
    assert client.post(f"/api/v1/supervisor/agents/{agent_id}/capacity",
                       json={"kind": "chat", "maximum": 500}, headers=headers).status_code == 400
    assert client.post(f"/api/v1/supervisor/agents/{agent_id}/presence",
                       json={"presence": "wrap_up"}, headers=headers).status_code == 400
    board = client.get("/api/v1/supervisor/wallboard", headers=headers).get_json()
    mine = next(a for a in board["agents"] if a["id"] == agent_id)
    assert mine["presence"] == "available" and mine["capacity"]["chat"][1] == 5
    with services(app).db.session() as s:
        state = s.get(AgentState, agent_id)
        assert state is not None and state.presence == "available"


def test_failed_intake_list_and_replay(app: Any, client: Any, tokens: dict[str, str]) -> None:
    from contactcenter.app import services

    with services(app).db.session() as s:
        raw = RawInbound(channel="email", external_id="<broken@x>", payload=b"\x00not mail",
                         state="failed", error="could not parse")
        s.add(raw)
        s.commit()
        raw_id = raw.id
    headers = bearer(tokens["supervisor"])
    items = client.get("/api/v1/supervisor/failed-intake", headers=headers).get_json()["items"]
    assert [i["id"] for i in items] == [raw_id] and "payload" not in items[0]
    replay = client.post(f"/api/v1/supervisor/failed-intake/{raw_id}/replay", json={},
                         headers=headers)
    assert replay.status_code == 200
    assert client.post("/api/v1/supervisor/failed-intake/999999/replay", json={},
                       headers=headers).status_code == 404


def test_csat_survey_by_signed_link(app: Any, client: Any) -> None:
    from contactcenter.app import services
    from contactcenter.db import utcnow
    from contactcenter.reports.csat import create_survey, survey_token
    from contactcenter.reports.models import CsatSurvey
    from contactcenter.tickets.intake import ingest_inbound
    from contactcenter.tickets.service import change_status
    from tests.factories import make_contact, make_inbox

    svc = services(app)
    with svc.db.session() as s:
        queue = make_queue(s)
        inbox = make_inbox(s, queue)
        s.commit()
        result = ingest_inbound(s, make_contact(inbox_id=inbox.id), settings=svc.settings)
        s.commit()
        ticket = s.get(Ticket, result.ticket_id)
        assert ticket is not None
        change_status(s, ticket, "solved", None)
        s.commit()
        # The job ran after the commit (inline queue): the survey exists, and only once.
        survey = create_survey(s, ticket, utcnow(), svc.settings)
        s.commit()
        assert survey is not None and survey.via == "email" and survey.sent_at is None
        assert s.scalar(select(func.count()).select_from(CsatSurvey)) == 1
        token = survey_token(svc.settings.secret_key, survey)
        survey_id = survey.id
    page = client.get(f"/csat/{token}?score=5")
    assert page.status_code == 200 and b"How did we do?" in page.data
    assert client.get(f"/csat/{token[:-2]}xx").status_code == 404
    csrf = csrf_of(page.get_data(as_text=True))
    bad = client.post(f"/csat/{token}", data={"score": "9", "csrf_token": csrf})
    assert bad.status_code == 400
    done = client.post(f"/csat/{token}", data={"score": "4", "comment": "Quick, thanks",
                                                "csrf_token": csrf})
    assert done.status_code == 200 and b"Thank you" in done.data
    again = client.post(f"/csat/{token}", data={"score": "1", "csrf_token": csrf})
    assert b"Already answered" in again.data
    with svc.db.session() as s:
        stored = s.get(CsatSurvey, survey_id)
        assert stored is not None and stored.score == 4 and stored.comment == "Quick, thanks"


def test_chat_gets_a_survey_link_at_the_end(session: Any, settings: Any) -> None:
    from contactcenter.db import utcnow
    from contactcenter.reports.csat import chat_survey_link, find_survey
    from tests.reports.dataset import NOW, build

    data = build(session)
    chat = data.tickets[4]
    assert chat_survey_link(session, settings, chat.id, NOW) is None  # not solved yet
    chat.status = "solved"
    link = chat_survey_link(session, settings, chat.id, utcnow())
    assert link is not None and "/csat/" in link
    survey = find_survey(session, settings.secret_key, link.rsplit("/", 1)[1])
    assert survey is not None and survey.via == "chat" and survey.ticket_id == chat.id
    assert chat_survey_link(session, settings, chat.id, utcnow()) == link


def test_at_risk_lists_sla_and_routing_deadlines_and_lapsing_contracts(session: Any) -> None:
    import datetime as dt

    from contactcenter.customers.models import Contract
    from contactcenter.reports.actions import at_risk
    from contactcenter.routing.models import RoutingItem
    from contactcenter.sla.models import SlaClock
    from tests.reports.dataset import NOW, build

    data = build(session)
    open_ticket = data.tickets[2]   # #3, open
    later_ticket = data.tickets[4]  # #5, open
    session.add(SlaClock(ticket_id=open_ticket.id, kind="first_response", target_minutes=30,
                         started_at=NOW, due_at=NOW - dt.timedelta(minutes=5)))
    session.add(RoutingItem(kind="ticket", channel="chat", queue_id=data.sales.id,
                            ticket_id=later_ticket.id, enqueued_at=NOW, rules_since=NOW,
                            due_at=NOW + dt.timedelta(minutes=30)))
    session.add(RoutingItem(kind="ticket", channel="chat", queue_id=data.sales.id,
                            ticket_id=data.tickets[1].id, enqueued_at=NOW, rules_since=NOW,
                            due_at=NOW + dt.timedelta(minutes=300)))
    session.add(Contract(external_id="C-9", customer_id=open_ticket.customer_id, level="gold",
                         starts_on=NOW.date() - dt.timedelta(days=300),
                         ends_on=NOW.date() + dt.timedelta(days=7)))
    session.commit()
    risk = at_risk(session, NOW, 60, 14)
    assert [(t["number"], t["breached"], t["target"]) for t in risk["tickets"]] == [
        (3, True, "first response"), (5, False, "routing (waiting)")]
    assert [(c["level"], c["days_left"]) for c in risk["contracts"]] == [("gold", 7)]
