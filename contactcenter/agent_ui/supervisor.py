"""The supervisor's wallboard, at-risk list, reports and staffing pages; the CSAT survey page.

Templates under ``templates/supervisor/``, scripts under ``static/supervisor/``.
The pages are thin: they render a shell and their ES modules read the
``/api/v1`` endpoints of ``contactcenter.reports.api`` with the session cookie
and the CSRF header, so the figures a page shows are the API's figures. Every
supervisor page needs ``Permission.SUPERVISE``; ``/me/csat`` shows an agent
their own results; ``/csat/<token>`` is the customer's one-question survey,
reached by its signed link without signing in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission
from contactcenter.agent_ui.auth import page_login_required, session_user
from contactcenter.app import db_session, services
from contactcenter.db import utcnow
from contactcenter.events import last_event_id
from contactcenter.routing.models import AgentState, Team
from contactcenter.tickets.models import Queue

bp = Blueprint("supervisor_ui", __name__)


def _page(template: str, **context: Any) -> Any:
    user = session_user()
    return render_template(f"supervisor/{template}", user=user, **context)


@bp.get("/supervisor")
@page_login_required(Permission.SUPERVISE)
def wallboard() -> Any:
    return _page("wallboard.html", cursor=last_event_id(db_session()))


@bp.get("/supervisor/at-risk")
@page_login_required(Permission.SUPERVISE)
def at_risk_page() -> Any:
    sess = db_session()
    agents = sess.execute(select(User.id, User.name).join(
        AgentState, AgentState.user_id == User.id).order_by(User.name)).all()
    return _page("at_risk.html", agents=agents, cursor=last_event_id(sess))


@bp.get("/supervisor/reports")
@page_login_required(Permission.SUPERVISE)
def reports_page() -> Any:
    sess = db_session()
    return _page("reports.html",
                 queues=sess.execute(select(Queue.id, Queue.name).order_by(Queue.name)).all(),
                 teams=sess.execute(select(Team.id, Team.name).order_by(Team.name)).all(),
                 agents=sess.execute(select(User.id, User.name).join(
                     AgentState, AgentState.user_id == User.id).order_by(User.name)).all())


@bp.get("/supervisor/staffing")
@page_login_required(Permission.SUPERVISE)
def staffing_page() -> Any:
    sess = db_session()
    return _page("staffing.html",
                 queues=sess.execute(select(Queue.id, Queue.name).order_by(Queue.name)).all())


@bp.get("/me/csat")
@page_login_required(Permission.TICKET_VIEW)
def my_csat() -> Any:
    import datetime as dt

    from contactcenter.reports.csat import agent_summary

    user = session_user()
    assert user is not None
    summary = agent_summary(db_session(), user.id, utcnow() - dt.timedelta(days=30))
    return _page("my_csat.html", summary=summary)


@bp.route("/csat/<token>", methods=["GET", "POST"])
def survey(token: str) -> Any:
    from contactcenter.reports.csat import SurveyError, answer_survey, find_survey
    from contactcenter.tickets.models import Ticket

    sess = db_session()
    found = find_survey(sess, services().settings.secret_key, token)
    if found is None:
        return render_template("supervisor/survey.html", state="invalid", token=token), 404
    ticket = sess.get(Ticket, found.ticket_id)
    message = None
    state = "answered" if found.answered_at is not None else "open"
    if request.method == "POST" and state == "open":
        try:
            answer_survey(sess, found, request.form.get("score", "")[:2],
                          request.form.get("comment", "")[:4000], utcnow())
            sess.commit()
            state = "thanks"
        except SurveyError as exc:
            sess.rollback()
            message = str(exc)
    preset = request.args.get("score", "")
    return render_template("supervisor/survey.html", state=state, token=token, ticket=ticket,
                           message=message, preset=preset if preset in "12345" else ""), \
        (400 if message else 200)
