"""The sla pages of the desktop (templates under ``templates/sla/``, scripts under ``static/sla/``).

``/sla`` is the supervisors' page: calendars and policies, the attainment report
with a chart (drawn by ``static/sla/sla.js`` from ``/api/v1/sla/report``) and the
contracts ending soon (their value only with the financial permission; audited).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select

from contactcenter.accounts.audit import audit
from contactcenter.accounts.policy import Permission, can
from contactcenter.agent_ui.auth import page_login_required, session_user
from contactcenter.app import db_session
from contactcenter.db import utcnow
from contactcenter.sla.models import SlaCalendar, SlaPolicy, SlaTarget
from contactcenter.sla.report import GROUPS

bp = Blueprint("sla_ui", __name__)


@bp.get("/sla")
@page_login_required(Permission.SUPERVISE)
def overview() -> Any:
    from contactcenter.sla.api import expiring_contracts

    user = session_user()
    assert user is not None
    session = db_session()
    calendars = list(session.scalars(select(SlaCalendar).order_by(SlaCalendar.name)))
    names = {c.id: c.name for c in calendars}
    targets: dict[int, list[SlaTarget]] = {}
    for t in session.scalars(select(SlaTarget).order_by(SlaTarget.kind, SlaTarget.priority)):
        targets.setdefault(t.policy_id, []).append(t)
    policies = list(session.scalars(select(SlaPolicy).order_by(SlaPolicy.position)))
    unmasked = can(user, Permission.FINANCIAL_VIEW)
    contracts = expiring_contracts(session, 30, utcnow().date(), unmasked)
    if unmasked and contracts:
        audit(session, user.id, "view_financial", "contracts", "expiring",
              f"{len(contracts)} contracts ending within 30 days", channel="web")
        session.commit()
    return render_template("sla/overview.html", user=user, calendars=calendars,
                           calendar_names=names, policies=policies, targets=targets,
                           contracts=contracts, groups=GROUPS)
