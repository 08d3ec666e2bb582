"""The reports package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

Every endpoint but ``/csat/me`` needs ``Permission.SUPERVISE``. The wallboard
page and the reports page read the same endpoints as API clients do.
``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify, request

from contactcenter.accounts.policy import Permission
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session, services
from contactcenter.db import utcnow
from contactcenter.events import last_event_id
from contactcenter.reports.actions import (
    ActionError,
    add_note,
    at_risk,
    failed_intake,
    raise_priority,
    reassign,
)
from contactcenter.reports.csat import agent_summary
from contactcenter.reports.csv import report_csv
from contactcenter.reports.erlang import ErlangInputError
from contactcenter.reports.queries import ReportFilter, ReportInputError, build_report
from contactcenter.reports.staffing import (
    StaffingRequest,
    forecast_week,
    plan_staffing,
    staff_forecast,
)
from contactcenter.reports.wallboard import Thresholds, snapshot
from contactcenter.routing.models import ItemKind, Presence

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")

MAX_ID = 2**31 - 1


class BadInput(ValueError):
    """A query or body value that fails validation (answered 400)."""


def _int(value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_ID,
         optional: bool = True) -> int | None:
    if value is None or value == "":
        if optional:
            return None
        raise BadInput(f"{name} is required")
    if isinstance(value, bool):
        raise BadInput(f"{name} must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a whole number") from None
    if not minimum <= number <= maximum:
        raise BadInput(f"{name} must be between {minimum} and {maximum}")
    return number


def _float(value: Any, name: str, *, optional: bool = True) -> float | None:
    if value is None or value == "":
        if optional:
            return None
        raise BadInput(f"{name} is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BadInput(f"{name} must be a finite number")
    return number


def _time(value: str | None, name: str, default: dt.datetime) -> dt.datetime:
    if not value:
        return default
    try:
        parsed = dt.datetime.fromisoformat(value[:40])
    except ValueError:
        raise BadInput(f"{name} must be an ISO date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def report_filter(args: Any) -> ReportFilter:
    """Build a report filter from query parameters (the last 7 days by default)."""
    now = utcnow()
    end = _time(args.get("end"), "end", now)
    start = _time(args.get("start"), "start", end - dt.timedelta(days=7))
    channel = args.get("channel") or None
    tier = args.get("tier") or None
    return ReportFilter(start, end, queue_id=_int(args.get("queue_id"), "queue_id"),
                        channel=channel, team_id=_int(args.get("team_id"), "team_id"),
                        agent_id=_int(args.get("agent_id"), "agent_id"), tier=tier)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadInput("a JSON object is required")
    return data


@bp.errorhandler(BadInput)
@bp.errorhandler(ReportInputError)
@bp.errorhandler(ErlangInputError)
@bp.errorhandler(ActionError)
def _bad_input(exc: Exception) -> Any:
    db_session().rollback()
    return error(400, str(exc))


def _policy() -> Any:
    from contactcenter.routing.policy import load_policy

    return load_policy(services().settings)


@bp.get("/supervisor/wallboard")
@api_login_required(Permission.SUPERVISE)
def wallboard() -> Any:
    sess = db_session()
    # The cursor first: an event committed meanwhile is then replayed, never missed.
    cursor = last_event_id(sess)
    data = snapshot(sess, utcnow(), _policy(), Thresholds.from_settings(services().settings))
    return jsonify({**data, "last_event_id": cursor})


@bp.get("/reports")
@api_login_required(Permission.SUPERVISE)
def report() -> Any:
    data = build_report(db_session(), report_filter(request.args), _policy())
    if request.args.get("format") == "csv":
        return Response(report_csv(data), mimetype="text/csv", headers={
            "Content-Disposition": 'attachment; filename="report.csv"'})
    return jsonify(data)


def staffing_request(args: Any) -> StaffingRequest:
    """Build a calculator request from query parameters (percentages accepted)."""
    level = _float(args.get("service_level"), "service_level")
    shrinkage = _float(args.get("shrinkage"), "shrinkage") or 0.0
    return StaffingRequest(
        calls=_float(args.get("calls"), "calls", optional=False) or 0.0,
        interval_seconds=_int(args.get("interval_seconds") or 1800, "interval_seconds",
                              minimum=1) or 1800,
        aht_seconds=_float(args.get("aht_seconds"), "aht_seconds", optional=False) or 0.0,
        target_seconds=_float(args.get("target_seconds"), "target_seconds",
                              optional=False) or 0.0,
        agents=_int(args.get("agents"), "agents", maximum=1_000_000),
        service_level=None if level is None else (level / 100 if level > 1 else level),
        shrinkage=shrinkage / 100 if shrinkage > 1 else shrinkage)


@bp.get("/staffing")
@api_login_required(Permission.SUPERVISE)
def staffing() -> Any:
    return jsonify(plan_staffing(staffing_request(request.args)).to_json())


@bp.get("/staffing/forecast")
@api_login_required(Permission.SUPERVISE)
def staffing_forecast() -> Any:
    args = request.args
    queue_id = _int(args.get("queue_id"), "queue_id", optional=False)
    assert queue_id is not None
    interval = _int(args.get("interval_minutes") or 30, "interval_minutes", minimum=15,
                    maximum=60) or 30
    kind = args.get("kind") or None
    if kind is not None and kind not in {k.value for k in ItemKind}:
        raise BadInput("kind must be ticket, call or chat")
    level = _float(args.get("service_level"), "service_level") or 0.8
    shrinkage = _float(args.get("shrinkage"), "shrinkage") or 0.0
    forecasts = forecast_week(db_session(), queue_id, utcnow(),
                              weeks=_int(args.get("weeks") or 4, "weeks", minimum=1,
                                         maximum=52) or 4,
                              interval_minutes=interval, kind=kind)
    rows = staff_forecast(
        forecasts, interval_minutes=interval,
        target_seconds=_float(args.get("target_seconds"), "target_seconds") or 20.0,
        service_level=level / 100 if level > 1 else level,
        shrinkage=shrinkage / 100 if shrinkage > 1 else shrinkage,
        default_aht_seconds=_float(args.get("aht_seconds"), "aht_seconds") or 300.0)
    return jsonify({"queue_id": queue_id, "interval_minutes": interval, "intervals": rows})


@bp.get("/supervisor/at-risk")
@api_login_required(Permission.SUPERVISE)
def risk_list() -> Any:
    settings = services().settings
    return jsonify(at_risk(db_session(), utcnow(), settings.reports_risk_window_minutes,
                           settings.reports_contract_lapse_days))


def _finish(result: dict[str, Any]) -> Any:
    from contactcenter.routing.engine import commit_and_settle

    commit_and_settle(db_session(), utcnow(), _policy())
    return jsonify(result)


@bp.post("/supervisor/tickets/<int:ticket_id>/reassign")
@api_login_required(Permission.SUPERVISE)
def ticket_reassign(ticket_id: int) -> Any:
    user = current_user()
    assert user is not None
    agent_id = _int(_body().get("agent_id"), "agent_id", minimum=1, optional=False)
    assert agent_id is not None
    return _finish(reassign(db_session(), ticket_id, agent_id, user.id, utcnow(), _policy()))


@bp.post("/supervisor/tickets/<int:ticket_id>/priority")
@api_login_required(Permission.SUPERVISE)
def ticket_priority(ticket_id: int) -> Any:
    user = current_user()
    assert user is not None
    priority = _body().get("priority")
    if priority is not None and not isinstance(priority, str):
        raise BadInput("priority must be text")
    return _finish(raise_priority(db_session(), ticket_id, priority, user.id, utcnow()))


@bp.post("/supervisor/tickets/<int:ticket_id>/note")
@api_login_required(Permission.SUPERVISE)
def ticket_note(ticket_id: int) -> Any:
    user = current_user()
    assert user is not None
    return _finish(add_note(db_session(), ticket_id, user.id, _body().get("text"), utcnow()))


@bp.post("/supervisor/agents/<int:agent_id>/presence")
@api_login_required(Permission.SUPERVISE)
def agent_presence(agent_id: int) -> Any:
    from contactcenter.routing.engine import set_presence
    from contactcenter.routing.errors import RoutingError

    presence = _body().get("presence")
    if presence not in {p.value for p in Presence if p != Presence.WRAP_UP}:
        raise BadInput("presence must be available, busy, away or offline")
    try:
        set_presence(db_session(), agent_id, presence, utcnow(), _policy(),
                     reason="set by supervisor")
    except RoutingError as exc:
        raise BadInput(str(exc)) from exc
    return _finish({"agent_id": agent_id, "presence": presence})


@bp.post("/supervisor/agents/<int:agent_id>/capacity")
@api_login_required(Permission.SUPERVISE)
def agent_capacity(agent_id: int) -> Any:
    from contactcenter.routing.engine import set_capacity
    from contactcenter.routing.errors import RoutingError

    body = _body()
    kind = body.get("kind")
    if kind not in {k.value for k in ItemKind}:
        raise BadInput("kind must be ticket, call or chat")
    maximum = _int(body.get("maximum"), "maximum", maximum=100, optional=False)
    assert maximum is not None
    try:
        set_capacity(db_session(), agent_id, kind, maximum, utcnow(), _policy())
    except RoutingError as exc:
        raise BadInput(str(exc)) from exc
    return _finish({"agent_id": agent_id, "kind": kind, "maximum": maximum})


@bp.get("/supervisor/failed-intake")
@api_login_required(Permission.SUPERVISE)
def failed_list() -> Any:
    return jsonify({"items": failed_intake(db_session())})


@bp.post("/supervisor/failed-intake/<int:raw_id>/replay")
@api_login_required(Permission.SUPERVISE)
def failed_replay(raw_id: int) -> Any:
    from contactcenter.tickets.intake import process_raw
    from contactcenter.tickets.models import RawInbound

    sess = db_session()
    if sess.get(RawInbound, raw_id) is None:
        return error(404, "not found")
    svc = services()
    result = process_raw(sess, raw_id, svc.registry, svc.settings)
    sess.commit()
    raw = sess.get(RawInbound, raw_id)
    return jsonify({"id": raw_id, "state": raw.state if raw else None,
                    "ticket": result.ticket_number if result is not None else None,
                    "error": (raw.error[:500] if raw is not None and result is None else None)})


@bp.get("/csat/me")
@api_login_required(Permission.TICKET_VIEW)
def my_csat() -> Any:
    user = current_user()
    assert user is not None
    days = _int(request.args.get("days") or 30, "days", minimum=1, maximum=366) or 30
    return jsonify(agent_summary(db_session(), user.id, utcnow() - dt.timedelta(days=days)))


def _obj(description: str = "") -> dict[str, Any]:
    return {"type": "object", "description": description} if description else {"type": "object"}


def _op(summary: str, *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, ok: str = "OK") -> dict[str, Any]:
    err = {"description": "Error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {
        "summary": summary, "tags": ["supervisor"],
        "responses": {"200": {"description": ok, "content": {"application/json": {
            "schema": _obj()}}}, "400": err, "401": err, "403": err}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


REPORT_PARAMS = [_q("start"), _q("end"), _q("queue_id", "integer"), _q("channel"),
                 _q("team_id", "integer"), _q("agent_id", "integer"), _q("tier"),
                 {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}]
STAFFING_PARAMS = [_q("calls", "number", True), _q("interval_seconds", "integer"),
                   _q("aht_seconds", "number", True), _q("target_seconds", "number", True),
                   _q("agents", "integer"), _q("service_level", "number"),
                   _q("shrinkage", "number")]

OPENAPI_PATHS: dict[str, Any] = {
    "/supervisor/wallboard": {"get": _op(
        "Live wallboard snapshot: tiles per queue and kind, agents, event cursor")},
    "/reports": {"get": _op("Report figures for a period and filters (JSON or CSV)",
                            params=REPORT_PARAMS)},
    "/staffing": {"get": _op("Erlang C staffing: give agents or a target service level",
                             params=STAFFING_PARAMS)},
    "/staffing/forecast": {"get": _op(
        "Forecast per interval of the week from a queue's history, with agents needed",
        params=[_q("queue_id", "integer", True), _q("weeks", "integer"),
                _q("interval_minutes", "integer"), _q("kind"), _q("target_seconds", "number"),
                _q("service_level", "number"), _q("shrinkage", "number"),
                _q("aht_seconds", "number")])},
    "/supervisor/at-risk": {"get": _op("Tickets near or past a deadline; contracts lapsing")},
    "/supervisor/tickets/{ticket_id}/reassign": {"post": _op(
        "Reassign a ticket to an agent", params=[_p("ticket_id")],
        body={"type": "object", "required": ["agent_id"],
              "properties": {"agent_id": {"type": "integer"}}})},
    "/supervisor/tickets/{ticket_id}/priority": {"post": _op(
        "Raise a ticket's priority (one step, or to the given one)", params=[_p("ticket_id")],
        body={"type": "object", "properties": {
            "priority": {"enum": ["low", "normal", "high", "urgent"]}}})},
    "/supervisor/tickets/{ticket_id}/note": {"post": _op(
        "Add an internal note to a ticket", params=[_p("ticket_id")],
        body={"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "maxLength": 10000}}})},
    "/supervisor/agents/{agent_id}/presence": {"post": _op(
        "Set an agent's presence", params=[_p("agent_id")],
        body={"type": "object", "required": ["presence"], "properties": {
            "presence": {"enum": ["available", "busy", "away", "offline"]}}})},
    "/supervisor/agents/{agent_id}/capacity": {"post": _op(
        "Set an agent's capacity for a kind of work", params=[_p("agent_id")],
        body={"type": "object", "required": ["kind", "maximum"], "properties": {
            "kind": {"enum": ["ticket", "call", "chat"]},
            "maximum": {"type": "integer", "minimum": 0, "maximum": 100}}})},
    "/supervisor/failed-intake": {"get": _op("Raw payloads that could not be processed")},
    "/supervisor/failed-intake/{raw_id}/replay": {"post": _op(
        "Process a failed raw payload again", params=[_p("raw_id")])},
    "/csat/me": {"get": _op("The signed-in agent's own CSAT results",
                            params=[_q("days", "integer")])},
}
OPENAPI_SCHEMAS: dict[str, Any] = {}
