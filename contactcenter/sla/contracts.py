"""Service contracts: entitlement at intake, allowance usage, expiry and allowance alerts.

``decide_entitlement`` is pure: given a customer's contracts (their own and
their organisation's) and the day, it says whether a contact is covered, and
the line the agent sees ("Gold, 3 of 10 incidents left", "contract expired 12
days ago"). Usage is one ``ContractUsage`` row per contract and ticket (an
incident is counted once however often the customer writes; hours are the
agents' handling time, recounted when the ticket is solved). Alerts are one
``ContractAlert`` row per (contract, kind): the unique key is what makes each
alert happen exactly once, however often or concurrently the job runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contactcenter.accounts.models import Role, User, UserRole
from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer
from contactcenter.events import record_event, room
from contactcenter.hooks import drop_cache_on_change, transaction_cache
from contactcenter.sla.models import ContractAlert, ContractUsage, Entitlement
from contactcenter.sla.notify import queue_notification

INCIDENTS = "incidents"
HOURS = "hours"


@dataclass(frozen=True)
class ContractFacts:
    """What entitlement needs to know about one contract."""

    id: int
    external_id: str
    level: str
    starts_on: dt.date
    ends_on: dt.date
    allowance_kind: str | None = None
    allowance_amount: Decimal | None = None
    allowance_used: Decimal = Decimal("0")
    response_minutes: int | None = None
    sla_policy_id: int | None = None
    calendar_id: int | None = None


@dataclass(frozen=True)
class EntitlementResult:
    """What intake found: the state, the contract it is about and the agent's line."""

    state: Entitlement
    contract: ContractFacts | None
    note: str


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}" if value != value.to_integral() else str(int(value))


def allowance_left(c: ContractFacts) -> Decimal | None:
    """Return what is left of the allowance (None: unlimited)."""
    if not c.allowance_kind or c.allowance_amount is None:
        return None
    return max(c.allowance_amount - c.allowance_used, Decimal("0"))


def is_exhausted(c: ContractFacts) -> bool:
    """Whether the contract's allowance is used up."""
    left = allowance_left(c)
    return left is not None and left <= 0


def _ago(days: int) -> str:
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"


def decide_entitlement(contracts: list[ContractFacts], today: dt.date) -> EntitlementResult:
    """Decide a contact's entitlement from the customer's contracts on a day.

    Covered by an active contract with allowance left (the one with the tightest
    response commitment wins); else flagged: allowance used up, expired (the
    latest to end), or not started yet; else nothing.
    """
    active = [c for c in contracts if c.starts_on <= today <= c.ends_on]
    usable = sorted((c for c in active if not is_exhausted(c)),
                    key=lambda c: (c.response_minutes or 10**9, -c.ends_on.toordinal(), c.id))
    if usable:
        best = usable[0]
        left = allowance_left(best)
        if left is None:
            note = f"{best.level}, until {best.ends_on.isoformat()}"
        else:
            note = (f"{best.level}, {_number(left)} of {_number(best.allowance_amount or left)} "
                    f"{best.allowance_kind} left")
        return EntitlementResult(Entitlement.COVERED, best, note)
    if active:
        c = active[0]
        amount = _number(c.allowance_amount or Decimal(0))
        return EntitlementResult(
            Entitlement.EXHAUSTED, c,
            f"{c.level} allowance used up: {amount} of {amount} {c.allowance_kind} used")
    ended = [c for c in contracts if c.ends_on < today]
    if ended:
        c = max(ended, key=lambda c: (c.ends_on, c.id))
        return EntitlementResult(Entitlement.EXPIRED, c,
                                 f"contract expired {_ago((today - c.ends_on).days)} "
                                 f"({c.level}, {c.external_id})")
    future = [c for c in contracts if c.starts_on > today]
    if future:
        c = min(future, key=lambda c: c.starts_on)
        return EntitlementResult(Entitlement.PENDING, c,
                                 f"{c.level} contract starts on {c.starts_on.isoformat()}")
    return EntitlementResult(Entitlement.NONE, None, "")


def facts_of(c: Contract) -> ContractFacts:
    """Return the entitlement facts of a contract row."""
    return ContractFacts(c.id, c.external_id, c.level, c.starts_on, c.ends_on,
                         c.allowance_kind, c.allowance_amount,
                         c.allowance_used or Decimal("0"), c.response_minutes,
                         c.sla_policy_id, c.calendar_id)


MAX_CACHED_OWNERS = 20_000


def _may_have_contracts(session: Session, customer: Customer) -> bool:
    """Whether the customer or their organisation holds any contract (False: no query needed).

    Who holds contracts is read once per transaction (intake's batches ask for every
    message, and most senders hold none); past ``MAX_CACHED_OWNERS`` contracts it is
    not cached and every customer is looked up.
    """
    cache = transaction_cache(session, "contract_owners")
    if "owners" not in cache:
        rows = session.execute(select(Contract.customer_id, Contract.organisation_id)
                               .limit(MAX_CACHED_OWNERS + 1)).all()
        cache["owners"] = None if len(rows) > MAX_CACHED_OWNERS else (
            frozenset(r[0] for r in rows if r[0] is not None),
            frozenset(r[1] for r in rows if r[1] is not None))
    owners = cache["owners"]
    return owners is None or customer.id in owners[0] or (
        customer.organisation_id is not None and customer.organisation_id in owners[1])


drop_cache_on_change(Contract)


def contracts_of(session: Session, customer: Customer) -> list[Contract]:
    """Return the customer's own contracts and their organisation's."""
    if not _may_have_contracts(session, customer):
        return []
    owners = [Contract.customer_id == customer.id]
    if customer.organisation_id is not None:
        owners.append(Contract.organisation_id == customer.organisation_id)
    return list(session.scalars(select(Contract).where(or_(*owners))
                                .order_by(Contract.ends_on.desc(), Contract.id).limit(100)))


def entitlement_for(session: Session, customer: Customer, today: dt.date) -> EntitlementResult:
    """Decide a customer's entitlement now."""
    return decide_entitlement([facts_of(c) for c in contracts_of(session, customer)], today)


def count_incident(session: Session, contract: Contract, ticket_id: int, now: dt.datetime
                   ) -> bool:
    """Count a ticket against an incident allowance once; return whether it was new."""
    existing = session.scalar(select(ContractUsage).where(
        ContractUsage.contract_id == contract.id, ContractUsage.ticket_id == ticket_id))
    if existing is not None:
        return False
    incidents = 1 if contract.allowance_kind == INCIDENTS else 0
    session.add(ContractUsage(contract_id=contract.id, ticket_id=ticket_id,
                              incidents=incidents, minutes=0, counted_at=now))
    if incidents:
        contract.allowance_used = (contract.allowance_used or Decimal(0)) + incidents
    return True


def count_hours(session: Session, contract: Contract, ticket_id: int, minutes: int,
                now: dt.datetime) -> None:
    """Set a ticket's handled minutes against an hours allowance (recounted, never doubled)."""
    usage = session.scalar(select(ContractUsage).where(
        ContractUsage.contract_id == contract.id, ContractUsage.ticket_id == ticket_id))
    if usage is None:
        usage = ContractUsage(contract_id=contract.id, ticket_id=ticket_id, incidents=0,
                              minutes=0, counted_at=now)
        session.add(usage)
    delta = minutes - (usage.minutes or 0)
    usage.minutes = minutes
    usage.counted_at = now
    if contract.allowance_kind == HOURS and delta:
        contract.allowance_used = ((contract.allowance_used or Decimal(0))
                                   + (Decimal(delta) / 60).quantize(Decimal("0.01")))


def handled_minutes(session: Session, ticket_id: int) -> int:
    """Return the minutes agents spent handling a ticket (routing items' handle time)."""
    from contactcenter.routing.models import RoutingItem

    seconds = session.scalar(select(func.coalesce(func.sum(RoutingItem.handle_seconds), 0))
                             .where(RoutingItem.ticket_id == ticket_id)) or 0
    return int((int(seconds) + 59) // 60)


# --- alerts ----------------------------------------------------------------------------

def parse_alert_days(text: str) -> list[int]:
    """Parse ``"30,7,1"`` into sorted distinct day counts (bounded 0..3650)."""
    days: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or int(part) > 3650:
            raise ValueError(f"alert day {part!r} is not a number of days up to 3650")
        days.add(int(part))
    return sorted(days)


def alert_recipients(session: Session, contract: Contract, settings: Settings) -> list[str]:
    """Return who hears about a contract: its account owner, supervisors, configured addresses."""
    emails: list[str] = []
    if contract.account_owner_id is not None:
        owner = session.get(User, contract.account_owner_id)
        if owner is not None and owner.is_active:
            emails.append(owner.email)
    emails.extend(session.scalars(
        select(User.email).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.SUPERVISOR, User.is_active.is_(True))
        .order_by(User.id).limit(50)))
    emails.extend(e.strip() for e in settings.sla_notify_emails.split(",") if e.strip())
    return list(dict.fromkeys(e.lower() for e in emails))


def _rooms(contract: Contract) -> list[str]:
    rooms = []
    if contract.customer_id is not None:
        rooms.append(room("customer", contract.customer_id))
    if contract.account_owner_id is not None:
        rooms.append(room("agent", contract.account_owner_id))
    return rooms


def _claim(session: Session, contract: Contract, kind: str, detail: str, now: dt.datetime
           ) -> bool:
    """Insert the (contract, kind) alert row; False when it exists (already sent)."""
    try:
        with session.begin_nested():
            session.add(ContractAlert(contract_id=contract.id, kind=kind, detail=detail[:300],
                                      sent_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def _alert(session: Session, settings: Settings, contract: Contract, kind: str,
           event: str, detail: str, now: dt.datetime) -> bool:
    if not _claim(session, contract, kind, detail, now):
        return False
    payload = {"contract_id": contract.id, "external_id": contract.external_id,
               "level": contract.level, "ends_on": contract.ends_on.isoformat(),
               "customer_id": contract.customer_id,
               "organisation_id": contract.organisation_id, "kind": kind, "detail": detail}
    record_event(session, event, payload, _rooms(contract))
    subject = f"Contract {contract.external_id} ({contract.level}): {detail}"
    body = (f"{detail}.\n\nContract {contract.external_id}, level {contract.level}, "
            f"runs {contract.starts_on.isoformat()} to {contract.ends_on.isoformat()}; "
            f"renewal state: {contract.renewal_state}.\n")
    for email in alert_recipients(session, contract, settings):
        queue_notification(session, f"contract:{contract.id}:{kind}", email, subject, body, now)
    return True


def send_contract_alerts(session: Session, settings: Settings, now: dt.datetime) -> list[str]:
    """Send the due expiry, expired and allowance alerts, each exactly once; return their keys.

    Expiry: only the tightest threshold crossed is sent (a contract entered 5 days
    before its end gets the 7-day alert, not the 30-day one as well). Runs in
    the caller's transaction; the caller commits.
    """
    today = now.date()
    days = parse_alert_days(settings.sla_contract_alert_days)
    sent: list[str] = []
    renewed = ("renewed", "cancelled")
    if days:
        horizon = today + dt.timedelta(days=max(days))
        ending = session.scalars(
            select(Contract).where(Contract.ends_on >= today, Contract.ends_on <= horizon,
                                   Contract.starts_on <= today,
                                   Contract.renewal_state.not_in(renewed))
            .order_by(Contract.ends_on, Contract.id).limit(5000))
        for contract in ending:
            left = (contract.ends_on - today).days
            tightest = min(d for d in days if left <= d)
            done = set(session.scalars(select(ContractAlert.kind).where(
                ContractAlert.contract_id == contract.id)))
            if any(k in done for k in (f"expiry_{d}d" for d in days if d <= tightest)):
                continue
            detail = f"ends in {left} day{'s' if left != 1 else ''}" if left else "ends today"
            if _alert(session, settings, contract, f"expiry_{tightest}d", "contract.expiring",
                      detail, now):
                sent.append(f"{contract.id}:expiry_{tightest}d")
    lapsed = session.scalars(
        select(Contract).where(Contract.ends_on < today,
                               Contract.ends_on >= today - dt.timedelta(days=30),
                               Contract.renewal_state.not_in(renewed),
                               ~exists().where(ContractAlert.contract_id == Contract.id,
                                               ContractAlert.kind == "expired"))
        .order_by(Contract.ends_on, Contract.id).limit(5000))
    for contract in lapsed:
        detail = f"expired {_ago((today - contract.ends_on).days)}"
        if _alert(session, settings, contract, "expired", "contract.expired", detail, now):
            sent.append(f"{contract.id}:expired")
    pct = settings.sla_allowance_alert_percent
    kind = f"allowance_{pct}"
    low = session.scalars(
        select(Contract).where(Contract.allowance_amount.is_not(None),
                               Contract.allowance_amount > 0, Contract.ends_on >= today,
                               Contract.allowance_used * 100 >= Contract.allowance_amount * pct,
                               ~exists().where(ContractAlert.contract_id == Contract.id,
                                               ContractAlert.kind == kind))
        .order_by(Contract.id).limit(5000))
    for contract in low:
        used = facts_of(contract)
        amount = _number(used.allowance_amount or Decimal(0))
        detail = (f"{_number(used.allowance_used)} of {amount} {contract.allowance_kind} used "
                  f"({pct}% alert)")
        if _alert(session, settings, contract, kind, "contract.allowance_low", detail, now):
            sent.append(f"{contract.id}:{kind}")
    return sent
