"""Marketing's pages: offer relations, mined rules awaiting approval, the conversion report.

Templates under ``templates/sales/``, scripts under ``static/sales/``. The
pages need ``supervise`` (supervisors and administrators act as marketing).
Forms post here with the CSRF token; the chart reads
``/api/v1/sales/conversion`` with the signed-in session.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from contactcenter.accounts.policy import Permission
from contactcenter.agent_ui.auth import page_login_required, session_user
from contactcenter.app import db_session
from contactcenter.customers.models import Product
from contactcenter.sales.errors import OfferNotFoundError, SalesError
from contactcenter.sales.marketing import (
    DIMENSIONS,
    create_relation,
    decide_rule,
    list_relations,
    list_rules,
    set_relation_active,
)

bp = Blueprint("sales_ui", __name__)


def _form_int(name: str) -> int:
    try:
        return int(request.form.get(name, ""))
    except ValueError:
        abort(400)


@bp.get("/sales")
@page_login_required(Permission.SUPERVISE)
def marketing() -> Any:
    session = db_session()
    products = session.execute(select(Product.id, Product.name, Product.sku)
                               .where(Product.sellable).order_by(Product.name).limit(2000)).all()
    return render_template(
        "sales/marketing.html", user=session_user(), relations=list_relations(session),
        proposed=list_rules(session, "proposed", 100),
        approved=list_rules(session, "approved", 100), products=products,
        dimensions=DIMENSIONS, error=request.args.get("error", "")[:200])


def _back(error: str = "") -> Any:
    return redirect(url_for("sales_ui.marketing", error=error or None))


@bp.post("/sales/relations")
@page_login_required(Permission.SUPERVISE)
def add_relation() -> Any:
    session = db_session()
    try:
        create_relation(session, request.form.get("kind", "")[:16], _form_int("source_id"),
                        _form_int("target_id"), request.form.get("script", "")[:1000],
                        session_user())
    except (SalesError, OfferNotFoundError) as exc:
        session.rollback()
        return _back(str(exc))
    session.commit()
    return _back()


@bp.post("/sales/relations/<int:relation_id>/active")
@page_login_required(Permission.SUPERVISE)
def toggle_relation(relation_id: int) -> Any:
    session = db_session()
    try:
        set_relation_active(session, relation_id, request.form.get("active") == "1")
    except OfferNotFoundError:
        abort(404)
    session.commit()
    return _back()


@bp.post("/sales/rules/<int:rule_id>/decision")
@page_login_required(Permission.SUPERVISE)
def rule_decision(rule_id: int) -> Any:
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400)
    session = db_session()
    script = request.form.get("script")
    try:
        decide_rule(session, rule_id, decision == "approve", session_user(),
                    script[:1000] if script else None)
    except OfferNotFoundError:
        abort(404)
    except SalesError as exc:
        session.rollback()
        return _back(str(exc))
    session.commit()
    return _back()
