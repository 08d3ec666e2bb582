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


_TX_CACHE = "transaction_cache"


def transaction_cache(session: Session, name: str) -> dict[Any, Any]:
    """Return a dict that lives as long as the session's current (outermost) transaction.

    For rows every contact of a batch reads and none of them writes (settings-like
    rows: inboxes, SLA policies and targets, who has contracts): read once per
    transaction instead of once per message. The dict is dropped at the end of the
    outermost transaction (commit, rollback or close) and at any SAVEPOINT rollback, so
    a change committed elsewhere is seen by the next transaction at the latest (one
    ``ingest email`` batch: at most 100 messages or half a second later). A caller that writes such rows itself must ``drop_transaction_cache``.
    Keep plain values in it, not ORM objects (a rollback expires those).
    """
    _listen_once()
    caches: dict[str, dict[Any, Any]] = session.info.setdefault(_TX_CACHE, {})
    return caches.setdefault(name, {})


def drop_transaction_cache(session: Session, *_args: Any) -> None:
    """Forget everything ``transaction_cache`` held for this session."""
    session.info.pop(_TX_CACHE, None)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    # A released SAVEPOINT ends a transaction too: the outer one (the same snapshot)
    # goes on, and so does its cache. The outermost one's end (commit, rollback or
    # close) drops it.
    if transaction.parent is None:
        drop_transaction_cache(session)


def drop_cache_on_change(*models: type) -> None:
    """Drop a session's ``transaction_cache`` whenever it writes a row of these models.

    For the cached rows' own models: a transaction that changes a policy or an inbox
    and then takes a contact in (a test, an import) sees its own change.
    """
    from sqlalchemy import event

    for model in models:
        for name in ("after_insert", "after_update", "after_delete"):
            if not event.contains(model, name, _row_changed):
                event.listen(model, name, _row_changed)


def _row_changed(_mapper: Any, _connection: Any, target: Any) -> None:
    from sqlalchemy.orm import object_session

    session = object_session(target)
    if session is not None:
        drop_transaction_cache(session)


_listening = False


def _listen_once() -> None:
    global _listening
    if _listening:
        return
    from sqlalchemy import event
    from sqlalchemy.orm import Session as SessionClass

    event.listen(SessionClass, "after_transaction_end", _after_transaction_end)
    # Any rollback, a SAVEPOINT's included: whatever was read inside it is forgotten.
    event.listen(SessionClass, "after_soft_rollback", drop_transaction_cache)
    _listening = True


def run(registry: list[Callable[[Any], None]], ctx: Any) -> None:
    """Run every hook of a registry with one context."""
    load_hooks()
    for hook in registry:
        hook(ctx)
