"""The REST API's customer endpoints: view, search, edit identities, merge and undo."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify, request
from sqlalchemy import func, or_, select

from contactcenter.accounts.policy import Permission, can
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.api.views import MAX_QUERY, _json_body, bp
from contactcenter.app import db_session, services
from contactcenter.customers.errors import (
    CustomerError,
    CustomerNotFoundError,
    IdentityConflictError,
    InvalidIdentityError,
    LastIdentityError,
    MergeError,
)
from contactcenter.customers.identity import normalise_email, normalise_phone, phone_region
from contactcenter.customers.models import Customer, CustomerIdentity
from contactcenter.customers.serialize import serialize_customer, serialize_customer_brief
from contactcenter.customers.service import (
    add_customer_identity,
    get_customer,
    merge_customers,
    remove_identity,
    undo_merge,
    update_customer_details,
)


@bp.get("/customers/<int:customer_id>")
@api_login_required(Permission.CUSTOMER_VIEW)
def show_customer(customer_id: int) -> Any:
    session = db_session()
    try:
        customer = get_customer(session, customer_id)
    except CustomerError:
        return error(404, "not found")
    user = current_user()
    assert user is not None
    data = serialize_customer(session, customer, user)
    session.commit()  # the audit record of an unmasked view
    return jsonify(data)


def customer_matches(q: str) -> list[Customer]:
    session = db_session()
    ids: list[int] = []
    candidates: list[tuple[str, str]] = []
    try:
        candidates.append(("email", normalise_email(q)))
    except InvalidIdentityError:
        pass
    if re.fullmatch(r"[+\d\s().-]{5,30}", q):
        try:
            candidates.append(("phone", normalise_phone(q)))
        except InvalidIdentityError:
            pass
    for kind, address in candidates:
        ids += list(session.scalars(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == kind, CustomerIdentity.address == address)))
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ids += list(session.scalars(
        select(Customer.id).where(Customer.merged_into_id.is_(None),
                                  or_(func.lower(Customer.name).like(like.lower(), escape="\\"),
                                      Customer.external_id == q)).limit(50)))
    ids += list(session.scalars(
        select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email",
            CustomerIdentity.address.like(like.lower(), escape="\\")).limit(50)))
    seen: dict[int, Customer] = {}
    for cid in ids:
        if cid not in seen:
            customer = get_customer(session, cid)
            seen.setdefault(customer.id, customer)
    return list(seen.values())[:50]


@bp.get("/customers")
@api_login_required(Permission.CUSTOMER_VIEW)
def search_customers() -> Any:
    q = (request.args.get("q") or "").strip()
    if not q or len(q) > MAX_QUERY:
        raise ValueError(f"q is required (1 to {MAX_QUERY} characters)")
    return jsonify(items=[serialize_customer_brief(c) for c in customer_matches(q)])


@bp.post("/customers/<int:customer_id>/merge")
@api_login_required(Permission.CUSTOMER_MERGE)
def merge(customer_id: int) -> Any:
    data = _json_body()
    merged_id = data.get("merged_id")
    if not isinstance(merged_id, int) or isinstance(merged_id, bool):
        raise ValueError("merged_id must be an integer")
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        record = merge_customers(session, customer_id, merged_id, user.id)
    except MergeError as exc:
        return error(409, str(exc))
    except CustomerError:
        return error(404, "not found")
    session.commit()
    return jsonify(merge_id=record.id, survivor_id=record.survivor_id,
                   merged_id=record.merged_id), 201


def _editable_customer(customer_id: int) -> Customer | None:
    try:
        return get_customer(db_session(), customer_id)
    except CustomerError:
        return None


@bp.patch("/customers/<int:customer_id>")
@api_login_required(Permission.CUSTOMER_EDIT)
def update_customer(customer_id: int) -> Any:
    """Change the display name or language (audited; screens showing the customer refresh)."""
    customer = _editable_customer(customer_id)
    if customer is None:
        return error(404, "not found")
    user = current_user()
    assert user is not None
    session = db_session()
    update_customer_details(session, customer, user.id, _json_body())
    session.commit()
    return jsonify(serialize_customer_brief(customer))


@bp.post("/customers/<int:customer_id>/identities")
@api_login_required(Permission.CUSTOMER_EDIT)
def add_identity(customer_id: int) -> Any:
    """Add an email, phone (stored in E.164) or chat id; 409 when someone else has it."""
    customer = _editable_customer(customer_id)
    if customer is None:
        return error(404, "not found")
    data = _json_body()
    kind, address = data.get("kind"), data.get("address")
    if not isinstance(kind, str) or not isinstance(address, str) or len(address) > 400:
        raise ValueError("kind and address (at most 400 characters) must be strings")
    region = phone_region(data.get("region", services().settings.phone_region))
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        identity, created = add_customer_identity(session, customer, kind, address, user.id,
                                                  region=region)
    except IdentityConflictError as exc:
        session.rollback()
        # Only a caller who may merge learns which customer holds the address.
        body: dict[str, Any] = {"error": str(exc), "conflict": "identity_exists"}
        if can(user, Permission.CUSTOMER_MERGE):
            body["merge_customer_id"] = exc.other_customer_id
        else:
            body["error"] += " (a supervisor can merge them)"
        response = jsonify(body)
        response.status_code = 409
        return response
    session.commit()
    session.refresh(customer)
    return jsonify(identity={"id": identity.id, "kind": identity.kind,
                             "address": identity.address, "verified": identity.verified},
                   customer=serialize_customer_brief(customer)), (201 if created else 200)


@bp.delete("/customers/<int:customer_id>/identities/<int:identity_id>")
@api_login_required(Permission.CUSTOMER_EDIT)
def delete_identity(customer_id: int, identity_id: int) -> Any:
    """Remove an address; the last one stays (409), so the customer remains reachable."""
    customer = _editable_customer(customer_id)
    if customer is None:
        return error(404, "not found")
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        remove_identity(session, customer, identity_id, user.id)
    except CustomerNotFoundError:
        session.rollback()
        return error(404, "not found")
    except LastIdentityError as exc:
        session.rollback()
        response = jsonify(error=str(exc), conflict="last_identity")
        response.status_code = 409
        return response
    session.commit()
    session.refresh(customer)
    return jsonify(customer=serialize_customer_brief(customer))


@bp.post("/merges/<int:merge_id>/undo")
@api_login_required(Permission.CUSTOMER_MERGE)
def unmerge(merge_id: int) -> Any:
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        record = undo_merge(session, merge_id, user.id)
    except MergeError as exc:
        return error(409, str(exc))
    except CustomerError:
        return error(404, "not found")
    session.commit()
    return jsonify(merge_id=record.id, undone_at=record.undone_at.isoformat()
                   if record.undone_at else None)
