"""The desktop's assist panels: SLA clocks, knowledge suggestions and offers for one ticket.

Each panel asks its capability package through the function that package
exposes for the desktop (``sla.service.ticket_clocks``/``entitlement_of``,
``knowledge.service.suggestions_for_ticket``, ``sales.service.offers_for_customer``
and ``value_summary``). A panel whose package fails answers with an error
line for that panel only: one broken panel never blanks the workspace.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.customers.models import Contract
from contactcenter.tickets.models import Ticket

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return _jsonable(value.to_json())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _panel(name: str, func: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "data": _jsonable(func())}
    except Exception as exc:  # noqa: BLE001 - one failing panel must not break the workspace
        log.exception("assist panel %s failed", name)
        return {"ok": False, "error": f"{name} unavailable: {type(exc).__name__}"}


def sla_panel(session: Session, ticket: Ticket) -> dict[str, Any]:
    """The ticket's SLA clocks and the customer's entitlement line."""
    from contactcenter.sla import service as sla

    def build() -> dict[str, Any]:
        return {"clocks": sla.ticket_clocks(session, ticket),
                "entitlement": sla.entitlement_of(session, ticket)}

    return _panel("sla", build)


def knowledge_panel(session: Session, ticket: Ticket, settings: Settings) -> dict[str, Any]:
    """Cached knowledge suggestions for the ticket (computed by a job when a message arrives)."""
    from contactcenter.knowledge import service as kb

    return _panel("knowledge", lambda: kb.suggestions_for_ticket(session, ticket.id, settings))


def offers_panel(session: Session, ticket: Ticket, user: User) -> dict[str, Any]:
    """Ranked offers for the ticket's customer, with script and reason."""
    from contactcenter.sales import service as sales

    return _panel("offers", lambda: sales.offers_for_customer(
        session, ticket.customer_id, user, channel=ticket.channel, limit=3))


def value_panel(session: Session, ticket: Ticket, user: User) -> dict[str, Any]:
    """The customer's value tier with its one-line reason (masked by role)."""
    from contactcenter.accounts.policy import Permission, can
    from contactcenter.sales import service as sales

    return _panel("value", lambda: sales.value_summary(
        ticket.customer, can(user, Permission.FINANCIAL_VIEW)))


def contract_line(session: Session, customer_id: int, today: dt.date) -> str:
    """A short contract state for the offer card when the SLA package has nothing better."""
    contract = session.scalar(select(Contract).where(Contract.customer_id == customer_id)
                              .order_by(Contract.ends_on.desc()).limit(1))
    if contract is None:
        return "no contract"
    state = contract.status_on(today)
    if state == "lapsed":
        return f"{contract.level}: expired {(today - contract.ends_on).days} days ago"
    if state == "expiring":
        return f"{contract.level}: ends in {(contract.ends_on - today).days} days"
    return f"{contract.level}: {state}"


def assist(session: Session, ticket: Ticket, user: User, settings: Settings) -> dict[str, Any]:
    """Every assist panel for one ticket."""
    return {"sla": sla_panel(session, ticket),
            "knowledge": knowledge_panel(session, ticket, settings),
            "offers": offers_panel(session, ticket, user),
            "value": value_panel(session, ticket, user)}
