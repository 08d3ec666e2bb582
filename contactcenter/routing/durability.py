"""Commit re-derivable routing state without waiting for the WAL flush (PostgreSQL).

An offer is state routing can re-derive: if a crash loses the last few hundred
milliseconds of offers, the items are ``offered`` in nobody's database, so they
are simply offered again; an agent accepting an offer the database does not
know is told it is "no longer available" (``OfferNotFoundError``); an offer the
database kept but whose agent never answers is withdrawn by the expiry sweep.
So a transaction that *only* makes offers (or withdraws lapsed ones and offers
again) may commit asynchronously: ``SET LOCAL synchronous_commit TO OFF`` makes
its COMMIT return once the commit record is in the WAL buffers, not on disk.
PostgreSQL documents that this never corrupts the database or leaves it
inconsistent; a crash can only lose the most recent such transactions whole.

Accepts, assignments, completions, arrivals and anything that a person did stay
synchronous: the caller decides with ``offers_only`` and calls ``relax_commit``
just before committing, only for transactions whose writes are all offers.

Events stay safe. Asynchronous commit defers *durability*, not *visibility*:
the transaction is committed, and visible to every other session, when COMMIT
returns, exactly as with a synchronous commit. Routing events are published by
the session's ``after_commit`` hook, which runs after COMMIT has returned, so
no client can hear of an offer before another session can read it (an accept
racing the event finds the offer). A later synchronous commit (the accept)
flushes the WAL up to its own record, which includes every earlier offer, so an
accepted offer is durable whenever the accept is.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from contactcenter.routing.policy import RoutingPolicy

_ASYNC = text("SET LOCAL synchronous_commit TO OFF")


def offers_only(actions: Iterable[str]) -> bool:
    """Whether a transaction's decisions are all offers (and there is at least one).

    A direct assignment makes the item the agent's: that must survive a crash.
    A transaction without decisions usually wrote nothing and costs no flush.
    """
    seen = False
    for action in actions:
        if action != "offer":
            return False
        seen = True
    return seen


def relax_commit(session: Session, policy: RoutingPolicy) -> bool:
    """Make the current transaction's commit asynchronous, when configured and possible.

    Call it in the transaction, after its writes and before ``commit``: ``SET
    LOCAL`` lasts until the transaction ends and only the value at COMMIT counts.
    Returns whether it did (never on SQLite, which has no such setting).
    """
    if not policy.async_offers or session.get_bind().dialect.name != "postgresql":
        return False
    session.execute(_ASYNC)
    return True
