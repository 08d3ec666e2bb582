"""Which kinds of work an agent has room for, stored on their state row for the index.

"Who could take this item?" must not read every agent: in a backlog all of them
are full. Each agent's state row carries ``free_kinds`` (",ticket,chat,": the
kinds with capacity left and no excluding kind held), rewritten in the same
transaction as every change of their load or capacity, under their lock. With
``presence`` it feeds the partial index ``ix_agent_states_free``, so candidate
queries read the free agents only. The flag only narrows the search: the
queries still check capacity and exclusions on the capacity rows themselves.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, literal, not_, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.db import utcnow
from contactcenter.routing.eligibility import AgentSnapshot, free_kinds
from contactcenter.routing.models import AgentCapacity, AgentState
from contactcenter.routing.policy import KINDS, RoutingPolicy

# The partial index's own predicate, literally, so the planner can use the index
# whatever the driver does with bound parameters (prepared, generic plans).
FREE_AGENT = text("agent_states.presence = 'available' AND agent_states.free_kinds <> ''")


def encode_free_kinds(kinds: Iterable[str]) -> str:
    """Return the stored form of a set of kinds: ",ticket,chat," (empty: none)."""
    wanted = set(kinds)
    ordered = [kind for kind in KINDS if kind in wanted]
    return "," + ",".join(ordered) + "," if ordered else ""


def snapshot_free_kinds(agent: AgentSnapshot, policy: RoutingPolicy) -> str:
    """Return what ``free_kinds`` should hold for an agent snapshot."""
    return encode_free_kinds(free_kinds(agent, policy))


def has_room_for(kind: str) -> Any:
    """SQL: a free agent (index predicate) whose stored free kinds include ``kind``."""
    return and_(FREE_AGENT, AgentState.free_kinds.like(f"%,{kind},%"))


@functools.lru_cache(maxsize=64)
def _refresh_statement(exclusive: frozenset[tuple[str, str]], stamp: bool) -> Any:
    """A Core UPDATE (no ORM bulk-update machinery) returning the new flag.

    ``stamp`` also sets ``last_assigned_at`` and ``updated_at`` from bound
    parameters: a decision writes the agent's row once, not twice.
    """
    cap: Any = AgentCapacity.__table__
    states: Any = AgentState.__table__
    agent_id: Any = bindparam("agent_id")
    parts: list[Any] = []
    for kind in KINDS:
        room: Any = exists().where(cap.c.user_id == agent_id, cap.c.kind == kind,
                                   cap.c.load < cap.c.maximum)
        excluded = sorted({b for a, b in exclusive if a == kind}
                          | {a for a, b in exclusive if b == kind})
        if excluded:
            other = cap.alias(f"held_{kind}")
            room = and_(room, not_(exists().where(other.c.user_id == agent_id,
                                                  other.c.kind.in_(excluded),
                                                  other.c.load > 0)))
        parts.append(case((room, literal(f"{kind},")), else_=literal("")))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + part
    value = case((joined == literal(""), literal("")), else_=literal(",") + joined)
    values: dict[str, Any] = {"free_kinds": value}
    if stamp:
        values.update(last_assigned_at=bindparam("assigned_at"),
                      updated_at=bindparam("stamped_at"))
    return (update(states).where(states.c.user_id == agent_id).values(**values)
            .returning(states.c.free_kinds))


def refresh_free_kinds(session: Session, agent_id: int, policy: RoutingPolicy,
                       *, assigned_at: dt.datetime | None = None) -> str | None:
    """Recompute an agent's ``free_kinds`` from their capacity rows (agent locked).

    ``assigned_at`` also records it as their last assignment. The agent's loaded
    state row, if any, is given the written values as its committed ones, so a
    later check of the flag (``repair_free_kinds``) needs no query and the next
    flush no UPDATE. Returns the new flag (None: no such agent).
    """
    params: dict[str, Any] = {"agent_id": agent_id}
    if assigned_at is not None:
        params.update(assigned_at=assigned_at, stamped_at=utcnow())
    value = session.execute(_refresh_statement(policy.exclusive, assigned_at is not None),
                            params).scalar()
    state = session.identity_map.get(session.identity_key(AgentState, agent_id))
    if state is not None and value is not None:
        set_committed_value(state, "free_kinds", value)
        if assigned_at is not None:
            set_committed_value(state, "last_assigned_at", assigned_at)
            set_committed_value(state, "updated_at", params["stamped_at"])
    return value


def repair_free_kinds(session: Session, state: AgentState, agent: AgentSnapshot,
                      policy: RoutingPolicy) -> None:
    """Rewrite a locked agent's flag if it disagrees with what they hold.

    Nothing in the engine leaves it wrong; this heals rows written behind its
    back (an import, a hand edit, a changed exclusion setting) the next time the
    agent is matched.
    """
    expected = snapshot_free_kinds(agent, policy)
    if state.free_kinds != expected:
        refresh_free_kinds(session, state.user_id, policy)
