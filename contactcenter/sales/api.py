"""The sales package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

Offers for a customer and outcome recording are for the agent desktop and for
other systems (the company's shop or CRM, with an API token). Amounts are
masked for callers without ``financial.view``; unmasked views are audited.
Marketing's endpoints (relations, rule review, conversion) need ``supervise``.

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, request

from contactcenter.accounts.policy import Permission
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session, services
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.errors import OfferNotFoundError, SalesError
from contactcenter.sales.marketing import (
    DIMENSIONS,
    conversion_report,
    create_relation,
    decide_rule,
    list_relations,
    list_rules,
    product_names,
    set_relation_active,
)
from contactcenter.sales.serialize import serialize_relation, serialize_rule
from contactcenter.sales.service import (
    customer_value,
    offers_for_customer,
    record_outcome,
    resolve_customer,
)

bp = Blueprint("sales_api", __name__, url_prefix="/api/v1")


@bp.errorhandler(SalesError)
def _bad_request(exc: SalesError) -> Any:
    return error(400, str(exc))


@bp.errorhandler(OfferNotFoundError)
def _not_found(_exc: OfferNotFoundError) -> Any:
    return error(404, "not found")


def _body(allowed: set[str]) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SalesError("the body must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise SalesError(f"unknown fields: {', '.join(sorted(unknown))}")
    return data


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SalesError(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise SalesError(f"{name} must be between {lo} and {hi}")
    return value


def _config() -> SalesConfig:
    return SalesConfig.from_settings(services().settings)


def _int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SalesError(f"{name} must be an integer")
    return value


@bp.get("/customers/<int:customer_id>/offers")
@api_login_required(Permission.CUSTOMER_VIEW)
def customer_offers(customer_id: int) -> Any:
    config = _config()
    limit = _int_arg("limit", config.offer_limit, 1, 20)
    channel = request.args.get("channel", "api")[:16]
    session = db_session()
    offers = offers_for_customer(session, customer_id, current_user(), channel=channel,
                                 limit=limit, config=config)
    session.commit()
    return jsonify(customer_id=customer_id, offers=offers)


@bp.get("/customers/<int:customer_id>/value")
@api_login_required(Permission.CUSTOMER_VIEW)
def value(customer_id: int) -> Any:
    session = db_session()
    data = customer_value(session, customer_id, current_user())
    session.commit()
    return jsonify(data)


@bp.post("/customers/<int:customer_id>/marketing-opt-out")
@api_login_required(Permission.TICKET_REPLY)
def marketing_opt_out(customer_id: int) -> Any:
    data = _body({"opt_out"})
    if not isinstance(data.get("opt_out"), bool):
        raise SalesError("opt_out must be a boolean")
    session = db_session()
    customer = resolve_customer(session, customer_id)
    if customer is None:
        raise OfferNotFoundError("no such customer")
    customer.marketing_opt_out = data["opt_out"]
    session.commit()
    return jsonify(customer_id=customer.id, marketing_opt_out=customer.marketing_opt_out)


@bp.post("/offers/<int:offer_id>/outcome")
@api_login_required(Permission.TICKET_REPLY)
def outcome(offer_id: int) -> Any:
    data = _body({"outcome", "follow_up", "quantity", "note"})
    outcome_value, follow_up = data.get("outcome"), data.get("follow_up")
    quantity, note = data.get("quantity", 1), data.get("note", "")
    if not isinstance(outcome_value, str):
        raise SalesError("outcome must be accepted, declined or not_relevant")
    if follow_up is not None and not isinstance(follow_up, str):
        raise SalesError("follow_up must be order or task")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise SalesError("quantity must be an integer")
    if not isinstance(note, str) or len(note) > 1000:
        raise SalesError("note must be text of at most 1000 characters")
    session = db_session()
    impression = record_outcome(session, offer_id, outcome_value, current_user(),
                                follow_up=follow_up, quantity=quantity, note=note)
    session.commit()
    return jsonify(id=impression.id, outcome=impression.outcome,
                   customer_id=impression.customer_id, product_id=impression.product_id,
                   follow_up=follow_up)


@bp.get("/sales/rules")
@api_login_required(Permission.SUPERVISE)
def rules() -> Any:
    state = request.args.get("state")
    limit = _int_arg("limit", 200, 1, 1000)
    return jsonify(items=list_rules(db_session(), state, limit))


@bp.post("/sales/rules/<int:rule_id>/decision")
@api_login_required(Permission.SUPERVISE)
def rule_decision(rule_id: int) -> Any:
    data = _body({"approve", "script"})
    if not isinstance(data.get("approve"), bool):
        raise SalesError("approve must be a boolean")
    script = data.get("script")
    if script is not None and not isinstance(script, str):
        raise SalesError("script must be text")
    session = db_session()
    rule = decide_rule(session, rule_id, data["approve"], current_user(), script)
    session.commit()
    names = product_names(session, {rule.antecedent_product_id, rule.consequent_product_id})
    return jsonify(serialize_rule(rule, names))


@bp.get("/sales/relations")
@api_login_required(Permission.SUPERVISE)
def relations() -> Any:
    return jsonify(items=list_relations(db_session()))


@bp.post("/sales/relations")
@api_login_required(Permission.SUPERVISE)
def add_relation() -> Any:
    data = _body({"kind", "source_id", "target_id", "script"})
    script = data.get("script", "")
    if not isinstance(script, str) or not isinstance(data.get("kind"), str):
        raise SalesError("kind and script must be text")
    session = db_session()
    rel = create_relation(session, data["kind"], _int_field(data, "source_id"),
                          _int_field(data, "target_id"), script, current_user())
    session.commit()
    names = product_names(session, {rel.source_product_id, rel.target_product_id})
    return jsonify(serialize_relation(rel, names)), 201


@bp.patch("/sales/relations/<int:relation_id>")
@api_login_required(Permission.SUPERVISE)
def change_relation(relation_id: int) -> Any:
    data = _body({"active"})
    if not isinstance(data.get("active"), bool):
        raise SalesError("active must be a boolean")
    session = db_session()
    rel = set_relation_active(session, relation_id, data["active"])
    session.commit()
    names = product_names(session, {rel.source_product_id, rel.target_product_id})
    return jsonify(serialize_relation(rel, names))


def _date_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise SalesError(f"{name} must be a date (YYYY-MM-DD)") from None
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@bp.get("/sales/conversion")
@api_login_required(Permission.SUPERVISE)
def conversion() -> Any:
    by = request.args.get("by", "product")
    since, until = _date_arg("since"), _date_arg("until")
    return jsonify(by=by, items=conversion_report(db_session(), by, since, until))


# --- OpenAPI ------------------------------------------------------------------------------

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = {code: _ok(_ref("Error"), text) for code, text in (
    ("400", "Bad input"), ("401", "No or invalid token"), ("403", "Missing permission"),
    ("404", "Not found"))}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _q(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _op(summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": ["sales"],
                          "responses": {status: ok, **_ERR}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_MONEY = {"type": ["string", "null"], "description": "null when masked"}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Offer": {"type": "object", "properties": {
        "id": {"type": "integer", "description": "the impression id outcomes are recorded on"},
        "product": {"type": "object", "properties": {"id": {"type": "integer"},
                                                     "name": {"type": "string"}}},
        "source": {"enum": ["relation", "rule", "renewal"]},
        "script": {"type": "string", "description": "one line the agent can say"},
        "reason": {"type": "string", "description": "why this offer was chosen"},
        "probability": {"type": "number"}, "masked": {"type": "boolean"},
        "expected_value": _MONEY, "margin": _MONEY, "price": _MONEY,
        "outcome": {"type": ["string", "null"]}}},
    "CustomerValue": {"type": "object", "properties": {
        "customer_id": {"type": "integer"}, "tier": {"type": ["string", "null"]},
        "reason": {"type": "string"}, "purchase_frequency": {"type": ["string", "null"]},
        "last_purchase_at": {"type": ["string", "null"]},
        "marketing_opt_out": {"type": "boolean"}, "computed_at": {"type": ["string", "null"]},
        "masked": {"type": "boolean"}, "lifetime_value": _MONEY, "revenue_short": _MONEY,
        "revenue_long": _MONEY, "revenue_total": _MONEY}},
    "AssociationRule": {"type": "object", "properties": {
        "id": {"type": "integer"}, "state": {"enum": ["proposed", "approved", "rejected"]},
        "antecedent": {"type": "object"}, "consequent": {"type": "object"},
        "support": {"type": "number"}, "confidence": {"type": "number"},
        "lift": {"type": "number"}, "pair_count": {"type": "integer"},
        "baskets": {"type": "integer"}, "script": {"type": "string"}}},
    "OfferRelation": {"type": "object", "properties": {
        "id": {"type": "integer"}, "kind": {"enum": ["cross_sell", "up_sell"]},
        "active": {"type": "boolean"}, "script": {"type": "string"},
        "source": {"type": "object"}, "target": {"type": "object"}}},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/customers/{customer_id}/offers": {"get": _op(
        "Ranked offers for a customer, each with a script and a reason (records impressions)",
        _ok({"type": "object", "properties": {
            "customer_id": {"type": "integer"},
            "offers": {"type": "array", "items": _ref("Offer")}}}),
        [_path("customer_id"), _q("limit", {"type": "integer", "minimum": 1, "maximum": 20}),
         _q("channel", {"type": "string"})])},
    "/customers/{customer_id}/value": {"get": _op(
        "A customer's value tier and reason; revenue and lifetime value when permitted",
        _ok(_ref("CustomerValue")), [_path("customer_id")])},
    "/customers/{customer_id}/marketing-opt-out": {"post": _op(
        "Record the customer's marketing opt-out (no offers while set)",
        _ok({"type": "object"}), [_path("customer_id")],
        {"type": "object", "required": ["opt_out"],
         "properties": {"opt_out": {"type": "boolean"}}})},
    "/offers/{offer_id}/outcome": {"post": _op(
        "Record accepted, declined or not relevant; an accepted offer may open an order or task",
        _ok({"type": "object"}), [_path("offer_id")],
        {"type": "object", "required": ["outcome"], "properties": {
            "outcome": {"enum": ["accepted", "declined", "not_relevant"]},
            "follow_up": {"enum": ["order", "task"]},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
            "note": {"type": "string", "maxLength": 1000}}})},
    "/sales/rules": {"get": _op(
        "Mined association rules, best lift first (marketing)",
        _ok({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("AssociationRule")}}}),
        [_q("state", {"enum": ["proposed", "approved", "rejected"]}),
         _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
    "/sales/rules/{rule_id}/decision": {"post": _op(
        "Approve or reject a mined rule", _ok(_ref("AssociationRule")), [_path("rule_id")],
        {"type": "object", "required": ["approve"], "properties": {
            "approve": {"type": "boolean"}, "script": {"type": "string", "maxLength": 300}}})},
    "/sales/relations": {
        "get": _op("Cross-sell and up-sell relations", _ok({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("OfferRelation")}}})),
        "post": _op("Create a relation", _ok(_ref("OfferRelation"), "Created"), None,
                    {"type": "object", "required": ["kind", "source_id", "target_id"],
                     "properties": {"kind": {"enum": ["cross_sell", "up_sell"]},
                                    "source_id": {"type": "integer"},
                                    "target_id": {"type": "integer"},
                                    "script": {"type": "string", "maxLength": 300}}},
                    status="201")},
    "/sales/relations/{relation_id}": {"patch": _op(
        "Switch a relation on or off", _ok(_ref("OfferRelation")), [_path("relation_id")],
        {"type": "object", "required": ["active"],
         "properties": {"active": {"type": "boolean"}}})},
    "/sales/conversion": {"get": _op(
        "Offer conversion grouped by offer, product, agent, channel, tier or source",
        _ok({"type": "object"}),
        [_q("by", {"enum": list(DIMENSIONS)}), _q("since", {"type": "string", "format": "date"}),
         _q("until", {"type": "string", "format": "date"})])},
}
