"""Identify, find, merge and unmerge customers."""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.accounts.audit import audit
from contactcenter.customers.errors import (
    CustomerNotFoundError,
    IdentityConflictError,
    InvalidIdentityError,
    LastIdentityError,
    MergeError,
)
from contactcenter.customers.identity import normalise_identity
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    CustomerMerge,
    Purchase,
)
from contactcenter.db import insert_now, utcnow
from contactcenter.events import record_event, room

MAX_MERGE_CHAIN = 50
# The kinds an agent may add or remove by hand; ``external`` ids belong to the CRM import.
EDITABLE_KINDS = ("email", "phone", "chat")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def resolve_customer(session: Session, customer: Customer) -> Customer:
    """Follow ``merged_into`` links to the surviving customer."""
    seen = 0
    while customer.merged_into_id is not None:
        seen += 1
        if seen > MAX_MERGE_CHAIN:
            raise MergeError(f"merge chain from customer {customer.id} is too long")
        nxt = session.get(Customer, customer.merged_into_id)
        if nxt is None:
            break
        customer = nxt
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    """Return a customer (the survivor if it was merged) or raise."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFoundError(f"no customer {customer_id}")
    return resolve_customer(session, customer)


def find_identity(session: Session, kind: str, address: str) -> CustomerIdentity | None:
    """Return the identity with a normalised address, or None."""
    return session.scalar(
        select(CustomerIdentity).where(
            CustomerIdentity.kind == kind, CustomerIdentity.address == address
        )
    )


def find_customer_by_identity(session: Session, kind: str, raw: str) -> Customer | None:
    """Return the customer an address belongs to, or None."""
    identity = find_identity(session, kind, normalise_identity(kind, raw))
    return resolve_customer(session, identity.customer) if identity else None


def add_identity(session: Session, customer: Customer, kind: str, raw: str) -> CustomerIdentity:
    """Attach an address to a customer; it must not belong to someone else."""
    address = normalise_identity(kind, raw)
    existing = find_identity(session, kind, address)
    if existing is not None:
        if resolve_customer(session, existing.customer).id != customer.id:
            raise MergeError(f"{kind} {address} belongs to customer {existing.customer_id}")
        return existing
    identity = CustomerIdentity(customer=customer, kind=kind, address=address)
    session.add(identity)
    return identity


@functools.cache
def _identify_statement() -> Select[Customer]:
    """Build (once) the look-up of a customer by identity: every inbound contact runs it."""
    return (select(Customer)
            .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
            .where(CustomerIdentity.kind == bindparam("kind"),
                   CustomerIdentity.address == bindparam("address"))
            .options(lazyload(Customer.identities)))


def identify_customer(
    session: Session,
    kind: str,
    raw: str,
    *,
    name: str = "",
    language: str | None = None,
    savepoint: bool = True,
) -> tuple[Customer, bool]:
    """Return the customer an address belongs to, creating one if needed.

    Safe against a concurrent creation of the same identity: the insert runs in a
    savepoint and a unique violation falls back to the row the other writer made.
    ``savepoint=False`` is for a caller whose whole transaction is retried on any error
    (intake's fast path): the unique violation then simply propagates.
    """
    address = normalise_identity(kind, raw)
    found = session.scalar(_identify_statement(), {"kind": kind, "address": address})
    if found is not None:
        customer = resolve_customer(session, found)
        if name and not customer.name:
            customer.name = name[:200]
        return customer, False
    customer = Customer(name=name[:200], language=language)
    if not savepoint:
        # One statement each, no flush: the fast path's whole transaction is its savepoint.
        insert_now(session, customer)
        made = insert_now(session, CustomerIdentity(customer_id=customer.id, kind=kind,
                                                    address=address, verified=False))
        set_committed_value(customer, "identities", [made])
        record_event(session, "customer.created", {"customer_id": customer.id},
                     [room("customer", customer.id)])
        return customer, True
    try:
        with session.begin_nested():
            session.add(customer)
            session.add(CustomerIdentity(customer=customer, kind=kind, address=address))
            session.flush()
    except IntegrityError:
        identity = find_identity(session, kind, address)
        if identity is None:
            raise
        return resolve_customer(session, identity.customer), False
    record_event(session, "customer.created", {"customer_id": customer.id},
                 [room("customer", customer.id)])
    return customer, True


def merge_customers(
    session: Session, survivor_id: int, merged_id: int, actor_user_id: int | None
) -> CustomerMerge:
    """Merge one customer into another, moving every identity, ticket and record.

    What moved is written down by id, so that ``undo_merge`` puts exactly that
    back even after new records arrived on the survivor.
    """
    from contactcenter.tickets.models import Message, Ticket

    if survivor_id == merged_id:
        raise MergeError("a customer cannot be merged into itself")
    survivor = get_customer(session, survivor_id)
    merged = session.get(Customer, merged_id)
    if merged is None:
        raise CustomerNotFoundError(f"no customer {merged_id}")
    if merged.merged_into_id is not None:
        raise MergeError(f"customer {merged_id} was already merged into {merged.merged_into_id}")
    if survivor.id == merged.id:
        raise MergeError("these customers are already one")

    def ids(model: Any) -> list[int]:
        return list(session.scalars(select(model.id).where(model.customer_id == merged.id)))

    moved: dict[str, Any] = {
        "identities": ids(CustomerIdentity),
        "tickets": ids(Ticket),
        "messages": ids(Message),
        "purchases": ids(Purchase),
        "contracts": ids(Contract),
        "filled": {},
    }
    model: Any
    for model, key in ((CustomerIdentity, "identities"), (Ticket, "tickets"),
                       (Message, "messages"), (Purchase, "purchases"), (Contract, "contracts")):
        if moved[key]:
            session.execute(update(model).where(model.id.in_(moved[key]))
                            .values(customer_id=survivor.id))
    filled: dict[str, object] = {}
    for attr in ("name", "language", "organisation_id", "external_id"):
        if not getattr(survivor, attr) and getattr(merged, attr):
            filled[attr] = getattr(merged, attr)
    if "external_id" in filled:
        merged.external_id = None
        session.flush()
    for attr, value in filled.items():
        setattr(survivor, attr, value)
    moved["filled"] = filled
    merged.merged_into_id = survivor.id
    record = CustomerMerge(survivor_id=survivor.id, merged_id=merged.id, moved=moved,
                           actor_user_id=actor_user_id)
    session.add(record)
    session.flush()
    session.expire_all()
    audit(session, actor_user_id, "customer.merge", "customer", survivor.id,
          f"merged customer {merged_id} into {survivor.id} (merge {record.id})")
    record_event(session, "customer.merged",
                 {"survivor_id": survivor.id, "merged_id": merged_id, "merge_id": record.id},
                 [room("customer", survivor.id), room("customer", merged_id)])
    return record


def undo_merge(session: Session, merge_id: int, actor_user_id: int | None) -> CustomerMerge:
    """Undo a merge: move back exactly what it moved and revive the merged customer."""
    from contactcenter.tickets.models import Message, Ticket

    record = session.get(CustomerMerge, merge_id)
    if record is None:
        raise CustomerNotFoundError(f"no merge {merge_id}")
    if record.undone_at is not None:
        raise MergeError(f"merge {merge_id} was already undone")
    later = session.scalar(
        select(CustomerMerge).where(CustomerMerge.merged_id == record.survivor_id,
                                    CustomerMerge.undone_at.is_(None),
                                    CustomerMerge.id > record.id)
    )
    if later is not None:
        raise MergeError(f"undo merge {later.id} first: it merged the survivor away")
    moved = record.moved
    model: Any
    for model, key in ((CustomerIdentity, "identities"), (Ticket, "tickets"),
                       (Message, "messages"), (Purchase, "purchases"), (Contract, "contracts")):
        if moved.get(key):
            session.execute(update(model).where(model.id.in_(moved[key]))
                            .values(customer_id=record.merged_id))
    survivor = session.get(Customer, record.survivor_id)
    merged = session.get(Customer, record.merged_id)
    assert survivor is not None and merged is not None
    # Give back only the fields the survivor still holds as the merge filled them
    # (decided before the unique external id is cleared from the survivor).
    filled = {attr: value for attr, value in moved.get("filled", {}).items()
              if getattr(survivor, attr) == value}
    if "external_id" in filled:
        survivor.external_id = None
        session.flush()
    for attr, value in filled.items():
        setattr(merged, attr, value)
        if attr != "external_id":
            setattr(survivor, attr, None if attr != "name" else "")
    merged.merged_into_id = None
    record.undone_at = utcnow()
    session.flush()
    session.expire_all()
    audit(session, actor_user_id, "customer.unmerge", "customer", record.merged_id,
          f"undid merge {record.id} of customer {record.merged_id} into {record.survivor_id}")
    record_event(session, "customer.unmerged",
                 {"survivor_id": record.survivor_id, "merged_id": record.merged_id,
                  "merge_id": record.id},
                 [room("customer", record.survivor_id), room("customer", record.merged_id)])
    return record


def _announce_change(session: Session, customer: Customer, change: str,
                      detail: dict[str, Any], *, listed: bool = False) -> None:
    """Tell every screen showing this customer to refresh (no address in the payload).

    ``listed``: the change shows in ticket lists too (the name), so the queues and the
    assignees of the customer's tickets hear of it as well, whose inboxes list them.
    """
    rooms = [room("customer", customer.id)]
    if listed:
        rooms += _list_rooms(session, customer.id)
    record_event(session, "customer.updated",
                 {"customer_id": customer.id, "change": change, **detail}, rooms)


def _list_rooms(session: Session, customer_id: int) -> list[str]:
    """The queue and agent rooms of a customer's tickets: the inboxes that list them."""
    from contactcenter.tickets.models import Ticket

    rows = session.execute(select(Ticket.queue_id, Ticket.assignee_id)
                           .where(Ticket.customer_id == customer_id).distinct()).all()
    queues = sorted({q for q, _ in rows if q is not None})
    agents = sorted({a for _, a in rows if a is not None})
    return [*(room("queue", q) for q in queues), *(room("agent", a) for a in agents)]


def add_customer_identity(
    session: Session, customer: Customer, kind: str, raw: str, actor_user_id: int | None,
    *, region: str = "US",
) -> tuple[CustomerIdentity, bool]:
    """Add an address an agent typed in: normalised, audited, announced.

    Returns the identity and whether it is new (adding an address the customer
    already has changes nothing). The insert runs in a savepoint, so a concurrent
    insert of the same address ends as the conflict it is, not as a server error.

    :raises InvalidIdentityError: for a kind agents may not edit or a malformed address.
    :raises IdentityConflictError: when the address belongs to another customer.
    """
    if kind not in EDITABLE_KINDS:
        raise InvalidIdentityError(f"kind must be one of {', '.join(EDITABLE_KINDS)}")
    address = normalise_identity(kind, raw, region)
    existing = find_identity(session, kind, address)
    if existing is None:
        try:
            with session.begin_nested():
                identity = CustomerIdentity(customer_id=customer.id, kind=kind, address=address)
                session.add(identity)
                session.flush()
        except IntegrityError:
            existing = find_identity(session, kind, address)
            if existing is None:
                raise
        else:
            session.expire(customer, ["identities"])
            audit(session, actor_user_id, "customer.identity_add", "customer", customer.id,
                  f"added {kind} {address}")
            _announce_change(session, customer, "identity_added", {"kind": kind})
            return identity, True
    owner = resolve_customer(session, existing.customer)
    if owner.id != customer.id:
        raise IdentityConflictError(kind, owner.id)
    return existing, False


def remove_identity(session: Session, customer: Customer, identity_id: int,
                    actor_user_id: int | None) -> CustomerIdentity:
    """Detach one address from a customer, audited and announced.

    The last address is kept: a customer without one can neither be recognised
    when they write again nor be answered, and would silently become a stranger's
    duplicate. Agents replace an address by adding the new one first.

    :raises CustomerNotFoundError: when the customer has no such identity.
    :raises InvalidIdentityError: for an ``external`` id (owned by the CRM import).
    :raises LastIdentityError: when it is the customer's only address.
    """
    identity = session.get(CustomerIdentity, identity_id)
    if identity is None or identity.customer_id != customer.id:
        raise CustomerNotFoundError(f"customer {customer.id} has no identity {identity_id}")
    if identity.kind not in EDITABLE_KINDS:
        raise InvalidIdentityError(f"{identity.kind} ids are managed by the import")
    count = session.scalar(select(func.count()).select_from(CustomerIdentity)
                           .where(CustomerIdentity.customer_id == customer.id)) or 0
    if count <= 1:
        raise LastIdentityError("a customer keeps at least one address: add the new one "
                                "before removing this one")
    kind, address = identity.kind, identity.address
    session.delete(identity)
    session.flush()
    session.expire(customer, ["identities"])
    audit(session, actor_user_id, "customer.identity_remove", "customer", customer.id,
          f"removed {kind} {address}")
    _announce_change(session, customer, "identity_removed", {"kind": kind})
    return identity


def update_customer_details(session: Session, customer: Customer, actor_user_id: int | None,
                            changes: dict[str, Any]) -> list[str]:
    """Change a customer's display name and language; return the fields that changed.

    :raises InvalidIdentityError: (a ``ValueError``) for an unknown field or a bad value.
    """
    unknown = set(changes) - {"name", "language"}
    if unknown:
        raise InvalidIdentityError(f"unknown fields: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or len(name) > 200 or CONTROL_RE.search(name):
            raise InvalidIdentityError("name must be text of at most 200 characters")
        values["name"] = " ".join(name.split())
    if "language" in changes:
        language = changes["language"]
        if isinstance(language, str):
            language = language.strip().lower().replace("_", "-")
        if language in (None, ""):
            values["language"] = None
        elif not isinstance(language, str) or not LANGUAGE_RE.match(language):
            raise InvalidIdentityError("language must be an ISO code like en or ru")
        else:
            values["language"] = language
    changed = [k for k, v in values.items() if getattr(customer, k) != v]
    if not changed:
        return []
    before = {k: getattr(customer, k) for k in changed}
    for key in changed:
        setattr(customer, key, values[key])
    audit(session, actor_user_id, "customer.update", "customer", customer.id,
          "; ".join(f"{k}: {before[k]!r} -> {values[k]!r}" for k in changed))
    _announce_change(session, customer, "details", {"fields": changed},
                     listed="name" in changed)
    return changed
