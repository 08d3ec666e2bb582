"""Sign in and out, the desktop's first page, and the vendored browser libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from sqlalchemy import select

from contactcenter.accounts.errors import AuthenticationError
from contactcenter.accounts.policy import Permission, can, visible_ticket_filter
from contactcenter.accounts.service import authenticate
from contactcenter.agent_ui.auth import login_user, page_login_required, session_user
from contactcenter.app import db_session
from contactcenter.events import last_event_id
from contactcenter.tickets.models import OPEN_STATUSES, Ticket

bp = Blueprint("ui", __name__)

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR = {
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
    "chart.umd.js": "chart.js/dist/chart.umd.js",
    "twilio.min.js": "@twilio/voice-sdk/dist/twilio.min.js",
}


def _safe_next(target: str | None) -> str:
    """Only follow same-site relative redirects after sign-in."""
    if not target:
        return url_for("ui.desk")
    parts = urlparse(target)
    # Browsers read a backslash as a slash, so "/\\evil.example" leaves the site too.
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return url_for("ui.desk")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")[:1024]
        sess = db_session()
        try:
            user = authenticate(sess, email, password)
        except AuthenticationError:
            error = "Wrong email or password."
        else:
            sess.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("ui.login"))


@bp.get("/")
@page_login_required(Permission.TICKET_VIEW)
def desk() -> Any:
    user = session_user()
    assert user is not None
    sess = db_session()
    tickets = sess.scalars(
        select(Ticket).where(visible_ticket_filter(sess, user),  # type: ignore[arg-type]
                             Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.last_activity_at.desc()).limit(100)
    ).all()
    from contactcenter.agent_ui.i18n import js_strings

    return render_template("desk.html", user=user, tickets=tickets,
                           cursor=last_event_id(sess), locale=user.locale or "en",
                           strings=js_strings(), can_supervise=can(user, Permission.SUPERVISE),
                           can_edit_kb=can(user, Permission.KB_EDIT),
                           softphone=_softphone_configured())


def _softphone_configured() -> bool:
    """Whether the browser softphone can get a token (else calls ring the agent's phone)."""
    from contactcenter.app import services

    settings = services().settings
    return bool(settings.twilio_account_sid and settings.twilio_api_key_sid
                and settings.twilio_api_key_secret)


@bp.get("/vendor/<path:name>")
def vendor(name: str) -> Any:
    rel = VENDOR.get(name)
    if rel is None or not (NODE_MODULES / rel).is_file():
        abort(404)
    return send_from_directory(NODE_MODULES, rel, mimetype="text/javascript", max_age=3600)
