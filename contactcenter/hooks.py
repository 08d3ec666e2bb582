"""In-transaction hooks: how capability packages react to a ticket's life without intake knowing them.

Intake and the ticket service are the only writers of tickets and messages; SLA
clocks, contract entitlement, knowledge signals and offers need to act in the
same transaction (a ticket must never be committed without its deadlines).
Each package registers plain functions here from its ``hooks`` module, and
``load_hooks`` imports those modules once. Hooks run inside the caller's
transaction, must not commit, and must be cheap: slow work belongs in a job
(see ``contactcenter.jobs.on_event``).

Order: hooks run in registration order, and ``load_hooks`` imports ``sla``
before ``sales`` and ``knowledge``, so that the SLA hook has set deadlines and
entitlement (which may change the ticket's queue and priority) before anything
else reads them. Intake puts the ticket in front of the router after every
intake hook has run, with ``IntakeContext.due_at`` as the item's deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from contactcenter.channels.base import InboundContact
    from contactcenter.config import Settings
    from contactcenter.customers.models import Customer
    from contactcenter.tickets.models import Message, Ticket


@dataclass
class IntakeContext:
    """One inbound contact just applied to a ticket (not yet committed).

    Hooks may change ``ticket.queue_id`` and ``ticket.priority`` (entitlement
    routing) and set ``due_at`` (the earliest deadline the router should know)
    and ``flags`` (short notes for the agent, e.g. "contract expired 12 days ago").
    """

    session: Session
    settings: Settings
    contact: InboundContact
    ticket: Ticket
    message: Message
    customer: Customer
    created: bool
    reopened: bool
    now: dt.datetime
    due_at: dt.datetime | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class ReplyContext:
    """An agent's reply (or internal note) just stored on a ticket."""

    session: Session
    ticket: Ticket
    message: Message
    internal: bool
    now: dt.datetime


@dataclass
class StatusContext:
    """A ticket's status just changed from ``old`` to ``new``."""

    session: Session
    ticket: Ticket
    old: str
    new: str
    actor_user_id: int | None
    now: dt.datetime


@dataclass
class AssignContext:
    """A ticket was just given to ``ticket.assignee_id`` (None: back to the queue)."""

    session: Session
    ticket: Ticket
    previous_assignee_id: int | None
    actor_user_id: int | None
    now: dt.datetime


Hook = Callable[[Any], None]

INTAKE_HOOKS: list[Callable[[IntakeContext], None]] = []
REPLY_HOOKS: list[Callable[[ReplyContext], None]] = []
STATUS_HOOKS: list[Callable[[StatusContext], None]] = []
ASSIGN_HOOKS: list[Callable[[AssignContext], None]] = []


def _register(registry: list[Any], func: Any) -> Any:
    if func not in registry:
        registry.append(func)
    return func


def on_intake(func: Callable[[IntakeContext], None]) -> Callable[[IntakeContext], None]:
    """Register a function run after intake applied a contact, before routing."""
    return _register(INTAKE_HOOKS, func)


def on_reply(func: Callable[[ReplyContext], None]) -> Callable[[ReplyContext], None]:
    """Register a function run after an agent's reply or note is stored."""
    return _register(REPLY_HOOKS, func)


def on_status(func: Callable[[StatusContext], None]) -> Callable[[StatusContext], None]:
    """Register a function run after a ticket's status changed."""
    return _register(STATUS_HOOKS, func)


def on_assign(func: Callable[[AssignContext], None]) -> Callable[[AssignContext], None]:
    """Register a function run after a ticket was assigned or unassigned."""
    return _register(ASSIGN_HOOKS, func)


_loaded = False


def load_hooks() -> None:
    """Import the modules that register hooks (once; order matters, see the module doc)."""
    global _loaded
    if _loaded:
        return
    from contactcenter.sla import hooks as _sla  # noqa: F401
    from contactcenter.sales import hooks as _sales  # noqa: F401
    from contactcenter.knowledge import hooks as _knowledge  # noqa: F401
    from contactcenter.field import hooks as _field  # noqa: F401

    _loaded = True


def run(registry: list[Callable[[Any], None]], ctx: Any) -> None:
    """Run every hook of a registry with one context."""
    load_hooks()
    for hook in registry:
        hook(ctx)
