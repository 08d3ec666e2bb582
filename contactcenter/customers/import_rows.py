"""Validate and apply one imported row of customers, products, purchases or contracts.

Each ``apply_*`` function takes a record of stripped text values keyed by column
name, matches it on its external id (``sku`` for products), creates or updates
the record and says which it did. A value that does not validate raises
``RowProblem`` with a message fit for the person who made the file. A blank or
absent value leaves the stored one as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_email, normalise_phone, phone_region
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    IdentityKind,
    Organisation,
    Product,
    Purchase,
)
from contactcenter.customers.service import find_identity, resolve_customer

Outcome = Literal["created", "updated", "unchanged"]
Record = dict[str, Any]

MAX_MONEY = Decimal("999999999999.99")
MAX_ADDRESSES = 20
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")
SPLIT_RE = re.compile(r"[;,]")
ALIASES = {"emails": "email", "phones": "phone", "organization": "organisation",
           "organization_id": "organisation_id", "company": "organisation",
           "product_sku": "sku", "customer_id": "customer_external_id",
           "customer": "customer_external_id", "tier": "value_tier"}


class RowProblem(ValueError):
    """A row value that does not validate; the message names the column."""


def normalise_column(name: str) -> str:
    """Return a header name in canonical form: ``"E-mail Address "`` is ``e_mail_address``."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())
    return ALIASES.get(key, key)


class Row:
    """Typed, validated access to one record's text values."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def text(self, name: str, max_len: int, *, required: bool = False) -> str | None:
        """Return a stripped value (None when blank) no longer than ``max_len``."""
        value = str(self.record.get(name) or "").strip()
        if not value:
            if required:
                raise RowProblem(f"{name} is required")
            return None
        if len(value) > max_len:
            raise RowProblem(f"{name} is longer than {max_len} characters")
        return value

    def decimal(self, name: str, *, places: int = 2, minimum: Decimal | None = None,
                maximum: Decimal = MAX_MONEY) -> Decimal | None:
        """Return a decimal rounded to ``places`` within bounds, or None when blank."""
        raw = self.text(name, 40)
        if raw is None:
            return None
        try:
            value = Decimal(raw.replace(" ", "").replace("_", ""))
        except InvalidOperation:
            raise RowProblem(f"{name} is not a number: {raw!r}") from None
        if not value.is_finite():
            raise RowProblem(f"{name} is not a number: {raw!r}")
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if minimum is not None and value < minimum:
            raise RowProblem(f"{name} must be at least {minimum}, got {raw}")
        if abs(value) > maximum:
            raise RowProblem(f"{name} must be at most {maximum}, got {raw}")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        """Return a whole number within bounds, or None when blank."""
        raw = self.text(name, 20)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
            if value != value.to_integral_value():
                raise ValueError
            number = int(value)
        except (InvalidOperation, ValueError, OverflowError):
            raise RowProblem(f"{name} is not a whole number: {raw!r}") from None
        if not minimum <= number <= maximum:
            raise RowProblem(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def date(self, name: str, *, required: bool = False) -> dt.date | None:
        """Return an ISO date (a datetime's date part is accepted), or None when blank."""
        raw = self.text(name, 40, required=required)
        if raw is None:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(raw).date()
        except ValueError:
            raise RowProblem(f"{name} is not an ISO date (YYYY-MM-DD): {raw!r}") from None

    def instant(self, name: str, *, required: bool = False) -> dt.datetime | None:
        """Return an ISO date or datetime as aware UTC (naive means UTC), or None."""
        raw = self.text(name, 40, required=required)
        if raw is None:
            return None
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise RowProblem(f"{name} is not an ISO date or datetime: {raw!r}") from None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def currency(self, name: str = "currency") -> str | None:
        """Return a three-letter currency code in upper case, or None when blank."""
        raw = self.text(name, 10)
        if raw is None:
            return None
        if not re.fullmatch(r"[A-Za-z]{3}", raw):
            raise RowProblem(f"{name} must be a three-letter code like USD, got {raw!r}")
        return raw.upper()

    def many(self, name: str) -> list[str]:
        """Return the values of a field holding several, separated by ';' or ','."""
        raw = self.text(name, 2000)
        if raw is None:
            return []
        values = list(dict.fromkeys(v.strip() for v in SPLIT_RE.split(raw) if v.strip()))
        if len(values) > MAX_ADDRESSES:
            raise RowProblem(f"{name} holds more than {MAX_ADDRESSES} values")
        return values


def _set(obj: object, changes: dict[str, Any]) -> bool:
    """Set the values that are given (not None) and differ; return whether any did."""
    changed = False
    for attr, value in changes.items():
        if value is not None and getattr(obj, attr) != value:
            setattr(obj, attr, value)
            changed = True
    return changed


def _describe(customer: Customer) -> str:
    parts = [f"customer {customer.id}"]
    if customer.external_id:
        parts.append(f"external id {customer.external_id}")
    if customer.name:
        parts.append(repr(customer.name))
    return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]


def _region(row: Row) -> str:
    raw = row.text("country", 10)
    try:
        return "US" if raw is None else phone_region(raw, "country")
    except ValueError as exc:
        raise RowProblem(str(exc)) from None


def _identities(row: Row) -> list[tuple[str, str]]:
    region = _region(row)
    found: list[tuple[str, str]] = []
    try:
        found += [(IdentityKind.EMAIL.value, normalise_email(v)) for v in row.many("email")]
        found += [(IdentityKind.PHONE.value, normalise_phone(v, region))
                  for v in row.many("phone")]
    except InvalidIdentityError as exc:
        raise RowProblem(str(exc)) from None
    return list(dict.fromkeys(found))


def _cached(session: Session, model: type[Any], key: tuple[str, str]) -> Any:
    """Return a row remembered for this import (None if unknown or rolled back since)."""
    row_id = session.info.setdefault("import_cache", {}).get(key)
    return session.get(model, row_id) if row_id is not None else None


def _remember(session: Session, key: tuple[str, str], row: Any) -> None:
    if row.id is None:
        session.flush()
    session.info.setdefault("import_cache", {})[key] = row.id


def _organisation(session: Session, name: str | None, external_id: str | None
                  ) -> Organisation | None:
    """Find an organisation by external id, else by name; create it when missing."""
    if not name and not external_id:
        return None
    key = ("org-id", external_id) if external_id else ("org-name", (name or "").lower())
    org: Organisation | None = _cached(session, Organisation, key)
    if org is None and external_id:
        org = session.scalar(select(Organisation).where(Organisation.external_id == external_id))
    elif org is None:
        org = session.scalar(select(Organisation)
                             .where(func.lower(Organisation.name) == (name or "").lower())
                             .order_by(Organisation.id).limit(1))
    if org is None:
        org = Organisation(name=name or external_id or "", external_id=external_id)
        session.add(org)
    elif external_id and name and org.name != name:
        org.name = name
    _remember(session, key, org)
    return org


def apply_customer(session: Session, record: Record) -> Outcome:
    """Create or update a customer by ``external_id``, with its emails and phones."""
    row = Row(record)
    external_id = row.text("external_id", 100, required=True)
    language = row.text("language", 8)
    if language is not None:
        language = language.lower().replace("_", "-")
        if not LANGUAGE_RE.match(language):
            raise RowProblem(f"language must be an ISO code like en or ru, got {language!r}")
    fields = {"name": row.text("name", 200), "language": language,
              "value_tier": row.text("value_tier", 8), "balance": row.decimal("balance")}
    addresses = _identities(row)
    org_name, org_id = row.text("organisation", 200), row.text("organisation_id", 100)
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is not None:
        customer = resolve_customer(session, customer)
    new: list[tuple[str, str]] = []
    for kind, address in addresses:
        existing = find_identity(session, kind, address)
        if existing is None:
            new.append((kind, address))
            continue
        owner = resolve_customer(session, existing.customer)
        if customer is None or owner.id != customer.id:
            raise RowProblem(f"{kind} {address} already belongs to {_describe(owner)}")
    created = customer is None
    if customer is None:
        customer = Customer(external_id=external_id, name="")
        session.add(customer)
    changed = _set(customer, fields)
    org = _organisation(session, org_name, org_id)
    if org is not None and (customer.organisation is not org):
        customer.organisation = org
        changed = True
    for kind, address in new:
        session.add(CustomerIdentity(customer=customer, kind=kind, address=address))
        changed = True
    if created:
        return "created"
    return "updated" if changed else "unchanged"


def apply_product(session: Session, record: Record) -> Outcome:
    """Create or update a product by ``sku``."""
    row = Row(record)
    sku = row.text("sku", 64, required=True)
    fields = {"name": row.text("name", 200, required=True), "category": row.text("category", 100),
              "price": row.decimal("price", minimum=Decimal(0)),
              "margin": row.decimal("margin", places=4, minimum=Decimal(0), maximum=Decimal(1)),
              "currency": row.currency()}
    product = session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        session.add(Product(sku=sku, **{k: v for k, v in fields.items() if v is not None}))
        return "created"
    return "updated" if _set(product, fields) else "unchanged"


def _customer(session: Session, row: Row) -> Customer:
    external_id = row.text("customer_external_id", 100, required=True)
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise RowProblem(f"no customer with external id {external_id!r}")
    return resolve_customer(session, customer)


def _product(session: Session, row: Row, *, required: bool) -> Product | None:
    sku = row.text("sku", 64, required=required)
    if sku is None:
        return None
    product: Product | None = _cached(session, Product, ("sku", sku))
    if product is None:
        product = session.scalar(select(Product).where(Product.sku == sku))
        if product is None:
            raise RowProblem(f"no product with sku {sku!r}")
        _remember(session, ("sku", sku), product)
    return product


def apply_purchase(session: Session, record: Record) -> Outcome:
    """Create or update a purchase by ``external_id``; amount defaults to price x quantity."""
    row = Row(record)
    external_id = row.text("external_id", 100, required=True)
    quantity = row.integer("quantity", minimum=1, maximum=1_000_000)
    amount = row.decimal("amount")
    currency = row.currency()
    purchased_at = row.instant("purchased_at", required=True)
    customer = _customer(session, row)
    product = _product(session, row, required=True)
    assert product is not None
    purchase = session.scalar(select(Purchase).where(Purchase.external_id == external_id))
    if purchase is None:
        qty = quantity or 1
        session.add(Purchase(external_id=external_id, customer_id=customer.id,
                             product_id=product.id, quantity=qty,
                             amount=amount if amount is not None else product.price * qty,
                             currency=currency or product.currency, purchased_at=purchased_at))
        return "created"
    fields = {"customer_id": customer.id, "product_id": product.id, "quantity": quantity,
              "amount": amount, "currency": currency, "purchased_at": purchased_at}
    return "updated" if _set(purchase, fields) else "unchanged"


def _contract_sla_fields(session: Session, row: Row) -> dict[str, Any]:
    """The optional SLA columns of a contract row (contactcenter/sla): all may be blank.

    ``calendar`` and ``sla_policy`` are names, ``account_owner`` a user's e-mail,
    ``allowance_kind`` is ``incidents`` or ``hours``, ``renewal_state`` one of
    none, pending, renewed, declined, cancelled.
    """
    from contactcenter.accounts.models import User
    from contactcenter.sla.models import SlaCalendar, SlaPolicy

    fields: dict[str, Any] = {}
    for column, model, attr, key in (("calendar", SlaCalendar, SlaCalendar.name, "calendar_id"),
                                     ("sla_policy", SlaPolicy, SlaPolicy.name, "sla_policy_id"),
                                     ("account_owner", User, User.email, "account_owner_id")):
        value = row.text(column, 254)
        if value is not None:
            found = session.scalar(select(model.id).where(  # type: ignore[attr-defined]
                func.lower(attr) == value.lower()))
            if found is None:
                raise RowProblem(f"no {column.replace('_', ' ')} {value!r}")
            fields[key] = found
    kind = row.text("allowance_kind", 16)
    if kind is not None and kind.lower() not in ("incidents", "hours"):
        raise RowProblem(f"allowance_kind must be incidents or hours, got {kind!r}")
    fields["allowance_kind"] = kind.lower() if kind else None
    fields["allowance_amount"] = row.decimal("allowance_amount", minimum=Decimal(0),
                                             maximum=Decimal("99999999.99"))
    fields["allowance_used"] = row.decimal("allowance_used", minimum=Decimal(0),
                                           maximum=Decimal("99999999.99"))
    renewal = row.text("renewal_state", 16)
    if renewal is not None and renewal.lower() not in ("none", "pending", "renewed", "declined",
                                                        "cancelled"):
        raise RowProblem(f"unknown renewal_state {renewal!r}")
    fields["renewal_state"] = renewal.lower() if renewal else None
    return fields


def _contract_products(session: Session, contract: Contract, row: Row) -> bool:
    """Set the covered products from a ``products`` column of SKUs; return whether it changed."""
    from sqlalchemy import delete, insert

    from contactcenter.sla.models import contract_products

    skus = row.many("products")
    if not skus:
        return False
    ids = set()
    for sku in skus[:100]:
        product_id = session.scalar(select(Product.id).where(Product.sku == sku))
        if product_id is None:
            raise RowProblem(f"no product with sku {sku!r}")
        ids.add(product_id)
    session.flush()
    current = set(session.scalars(select(contract_products.c.product_id).where(
        contract_products.c.contract_id == contract.id)))
    if current == ids:
        return False
    session.execute(delete(contract_products).where(
        contract_products.c.contract_id == contract.id))
    session.execute(insert(contract_products), [{"contract_id": contract.id, "product_id": p}
                                                for p in sorted(ids)])
    return True


def apply_contract(session: Session, record: Record) -> Outcome:
    """Create or update a service contract by ``external_id``.

    It belongs to ``customer_external_id`` or, for a whole company, to
    ``organisation_external_id`` (one of the two is required). The SLA columns
    are optional (see ``_contract_sla_fields``), and ``products`` lists the
    covered products' SKUs.
    """
    row = Row(record)
    external_id = row.text("external_id", 100, required=True)
    level = row.text("level", 50, required=True)
    starts_on = row.date("starts_on", required=True)
    ends_on = row.date("ends_on", required=True)
    assert starts_on is not None and ends_on is not None
    if ends_on < starts_on:
        raise RowProblem(f"ends_on {ends_on} is before starts_on {starts_on}")
    fields: dict[str, Any] = {
        "level": level, "starts_on": starts_on, "ends_on": ends_on,
        "response_minutes": row.integer("response_minutes", minimum=1, maximum=525_600),
        "onsite_minutes": row.integer("onsite_minutes", minimum=1, maximum=525_600),
        "value": row.decimal("value", minimum=Decimal(0)), "currency": row.currency(),
    }
    org_external_id = row.text("organisation_external_id", 100)
    if org_external_id is not None and row.text("customer_external_id", 100) is None:
        org = session.scalar(select(Organisation).where(
            Organisation.external_id == org_external_id))
        if org is None:
            raise RowProblem(f"no organisation with external id {org_external_id!r}")
        fields["organisation_id"] = org.id
    else:
        customer = _customer(session, row)
        fields["customer_id"] = customer.id
    product = _product(session, row, required=False)
    fields["product_id"] = product.id if product else None
    fields.update(_contract_sla_fields(session, row))
    contract = session.scalar(select(Contract).where(Contract.external_id == external_id))
    if contract is None:
        contract = Contract(external_id=external_id,
                            **{k: v for k, v in fields.items() if v is not None})
        session.add(contract)
        session.flush()
        _contract_products(session, contract, row)
        return "created"
    changed = _set(contract, fields)
    return "updated" if _contract_products(session, contract, row) or changed else "unchanged"


@dataclass(frozen=True)
class KindSpec:
    """What one kind of record looks like in a file and how a row of it is applied."""

    kind: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    apply: Callable[[Session, Record], Outcome]


KINDS: dict[str, KindSpec] = {
    spec.kind: spec for spec in (
        KindSpec("customers", ("external_id", "name", "email", "phone", "country", "language",
                               "organisation", "organisation_id", "value_tier", "balance"),
                 ("external_id",), apply_customer),
        KindSpec("products", ("sku", "name", "category", "price", "margin", "currency"),
                 ("sku", "name"), apply_product),
        KindSpec("purchases", ("external_id", "customer_external_id", "sku", "quantity",
                               "amount", "currency", "purchased_at"),
                 ("external_id", "customer_external_id", "sku", "purchased_at"), apply_purchase),
        # The SLA columns come last so that header-less files keep their documented order;
        # a row names customer_external_id or organisation_external_id (checked per row).
        KindSpec("contracts", ("external_id", "customer_external_id", "level", "starts_on",
                               "ends_on", "response_minutes", "value", "currency", "sku",
                               "organisation_external_id", "calendar", "sla_policy",
                               "allowance_kind", "allowance_amount", "allowance_used",
                               "renewal_state", "account_owner", "products",
                               "onsite_minutes"),
                 ("external_id", "level", "starts_on", "ends_on"),
                 apply_contract),
    )
}
