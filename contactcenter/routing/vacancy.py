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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    not_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.db import utcnow
from contactcenter.db_postgres import identity_key
from contactcenter.routing.eligibility import AgentSnapshot, free_kinds
from contactcenter.routing.models import AgentCapacity, AgentState
from contactcenter.routing.policy import KINDS, RoutingPolicy
from contactcenter.routing.snapshot import (
    NULL_INT,
    NULL_TEXT,
    agent_snapshot,
    build_snapshots,
    snapshot_parts,
    tag,
)

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


def kind_sql(value: str) -> Any:
    """An SQL string literal written into the statement (for the fixed kinds only).

    The load statements stay short this way: psycopg caches the conversion of a
    query only up to 4,096 characters and converting a longer one costs more
    than its round trip.
    """
    if value.strip(",") not in (*KINDS, ""):
        raise ValueError(f"not a kind: {value!r}")
    return literal_column(f"'{value}'", String)


def _free_kinds_value(capacities: Any, agent_id: Any | None,
                      exclusive: frozenset[tuple[str, str]]) -> Any:
    """SQL for an agent's ``free_kinds`` computed from capacity rows in ``capacities``.

    ``capacities`` is the table (``agent_id`` picks the agent's rows) or a
    statement's own view of the agent's rows (``agent_id`` None), with columns
    ``user_id``, ``kind``, ``maximum`` and ``load``.
    """
    parts: list[Any] = []
    for kind in KINDS:
        mine = [capacities.c.user_id == agent_id] if agent_id is not None else []
        room: Any = exists().where(*mine, capacities.c.kind == kind_sql(kind),
                                   capacities.c.load < capacities.c.maximum)
        excluded = sorted({b for a, b in exclusive if a == kind}
                          | {a for a, b in exclusive if b == kind})
        if excluded:
            other = capacities.alias(f"held_{kind}")
            theirs = [other.c.user_id == agent_id] if agent_id is not None else []
            room = and_(room, not_(exists().where(
                *theirs, other.c.kind.in_([kind_sql(k) for k in excluded]), other.c.load > 0)))
        parts.append(case((room, kind_sql(f"{kind},")), else_=kind_sql("")))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + part
    # ",ticket,chat," or "" (NULLIF/COALESCE: the kinds' SQL is written once).
    return func.coalesce(kind_sql(",") + func.nullif(joined, kind_sql("")), kind_sql(""))


def _flag_values(capacities: Any, agent_id: Any, exclusive: frozenset[tuple[str, str]],
                 stamp: bool) -> dict[str, Any]:
    own = agent_id if capacities is AgentCapacity.__table__ else None
    values: dict[str, Any] = {"free_kinds": _free_kinds_value(capacities, own, exclusive)}
    if stamp:
        values.update(last_assigned_at=bindparam("assigned_at"),
                      updated_at=bindparam("stamped_at"))
    return values


@functools.lru_cache(maxsize=64)
def _refresh_statement(exclusive: frozenset[tuple[str, str]], stamp: bool) -> Any:
    """A Core UPDATE (no ORM bulk-update machinery) returning the new flag.

    ``stamp`` also sets ``last_assigned_at`` and ``updated_at`` from bound
    parameters: a decision writes the agent's row once, not twice.
    """
    states: Any = AgentState.__table__
    agent_id: Any = bindparam("shift_agent")
    return (update(states).where(states.c.user_id == agent_id)
            .values(**_flag_values(AgentCapacity.__table__, agent_id, exclusive, stamp))
            .returning(states.c.free_kinds))


@functools.lru_cache(maxsize=2)
def _load_statement(up: bool) -> Any:
    """Core UPDATE of one capacity row's load, guarded by its bounds (no ORM bulk path)."""
    cap: Any = AgentCapacity.__table__
    delta: Any = bindparam("load_delta")
    guard = cap.c.load + delta <= cap.c.maximum if up else cap.c.load + delta >= 0
    return (update(cap).where(cap.c.user_id == bindparam("shift_agent"),
                              cap.c.kind == bindparam("load_kind"), guard)
            .values(load=cap.c.load + delta))


def shift_ctes(up: bool, exclusive: frozenset[tuple[str, str]], stamp: bool
               ) -> tuple[Any, Any]:
    """PostgreSQL: the CTEs that change one load and rewrite the agent's flag.

    ``changed_load`` updates the capacity row (guarded by its bounds);
    ``capacities_now`` is the agent's capacities as they are after it (a
    statement's other parts see the rows as they were before); ``new_flag``
    rewrites ``free_kinds`` from those, only if the load changed, returning
    ``user_id`` and ``free_kinds``. Binds ``shift_agent``, ``load_kind``,
    ``load_delta`` and, with ``stamp``, ``assigned_at`` and ``stamped_at`` (see
    ``shift_params``): never a column's name, as SQLAlchemy adds an execution
    parameter named like a column to the SET clause of every UPDATE it renders.
    Returns ``(capacities_now, new_flag)``.
    """
    cap: Any = AgentCapacity.__table__
    states: Any = AgentState.__table__
    agent_id: Any = bindparam("shift_agent")
    kind: Any = bindparam("load_kind")
    delta: Any = bindparam("load_delta")
    guard = cap.c.load + delta <= cap.c.maximum if up else cap.c.load + delta >= 0
    changed = (update(cap).where(cap.c.user_id == agent_id, cap.c.kind == kind, guard)
               .values(load=cap.c.load + delta)
               .returning(cap.c.user_id, cap.c.kind, cap.c.maximum, cap.c.load)
               .cte("changed_load"))
    capacities = union_all(
        select(changed.c.user_id, changed.c.kind, changed.c.maximum, changed.c.load),
        select(cap.c.user_id, cap.c.kind, cap.c.maximum, cap.c.load)
        .where(cap.c.user_id == agent_id, cap.c.kind != kind),
    ).cte("capacities_now")
    flag = (update(states)
            .where(states.c.user_id == agent_id, states.c.user_id == changed.c.user_id)
            .values(**_flag_values(capacities, agent_id, exclusive, stamp))
            .returning(states.c.user_id, states.c.free_kinds).cte("new_flag"))
    return capacities, flag


def shift_select(up: bool, exclusive: frozenset[tuple[str, str]], stamp: bool,
                 snapshot: bool, along: Callable[[Any], Any] | None = None) -> Any:
    """PostgreSQL: change one load and rewrite the flag in one statement (``shift_ctes``).

    The result is one ``F`` row with the new flag (none: the load could not
    change) and, with ``snapshot``, the agent's snapshot rows
    (``snapshot.snapshot_parts``) with the new loads. ``along(new_flag)``
    returns a further data-modifying CTE run in the same statement (it can make
    its write depend on the flag's row). Built anew each call: callers cache it.
    """
    capacities, flag = shift_ctes(up, exclusive, stamp)
    agent_id: Any = bindparam("shift_agent")
    head = select(flag.c.user_id, tag("F"), flag.c.free_kinds, NULL_INT, NULL_INT, NULL_TEXT,
                  NULL_TEXT)
    statement: Any = (union_all(head, *snapshot_parts([agent_id], capacities)) if snapshot
                      else head)
    return statement.add_cte(along(flag)) if along is not None else statement


@functools.lru_cache(maxsize=64)
def _shift_statement(up: bool, exclusive: frozenset[tuple[str, str]], stamp: bool,
                     snapshot: bool) -> Any:
    return shift_select(up, exclusive, stamp, snapshot)


def shift_params(agent_id: int, kind: str, delta: int,
                 assigned_at: dt.datetime | None = None) -> dict[str, Any]:
    """The values ``shift_ctes`` binds."""
    params: dict[str, Any] = {"shift_agent": agent_id, "load_kind": kind, "load_delta": delta}
    if assigned_at is not None:
        params.update(assigned_at=assigned_at, stamped_at=utcnow())
    return params


def take_shift_rows(session: Session, rows: Sequence[Any], params: dict[str, Any],
                    snapshot_of: AgentState | None) -> AgentSnapshot | None:
    """Apply what ``shift_select`` returned: the flag to the loaded agent, the snapshot.

    Raises ``RuntimeError`` when the load did not change (no ``F`` row).
    """
    agent_id = params["shift_agent"]
    flag = next((row for row in rows if row[1] == "F"), None)
    if flag is None:
        raise RuntimeError(f"load of agent {agent_id} for {params['load_kind']} cannot "
                           f"change by {params['load_delta']}")
    note_flag(session, agent_id, flag[2], params)
    if snapshot_of is None:
        return None
    return build_snapshots(session, [snapshot_of], rows)[agent_id]


def refresh_free_kinds(session: Session, agent_id: int, policy: RoutingPolicy,
                       *, assigned_at: dt.datetime | None = None,
                       stamped_at: dt.datetime | None = None) -> str | None:
    """Recompute an agent's ``free_kinds`` from their capacity rows (agent locked).

    ``assigned_at`` also records it as their last assignment. The agent's loaded
    state row, if any, is given the written values as its committed ones, so a
    later check of the flag (``repair_free_kinds``) needs no query and the next
    flush no UPDATE. Returns the new flag (None: no such agent).
    """
    params: dict[str, Any] = {"shift_agent": agent_id}
    if assigned_at is not None:
        params.update(assigned_at=assigned_at, stamped_at=stamped_at or utcnow())
    value = session.execute(_refresh_statement(policy.exclusive, assigned_at is not None),
                            params).scalar()
    if value is not None:
        note_flag(session, agent_id, value, params)
    return value


def note_flag(session: Session, agent_id: int, value: str, params: dict[str, Any]) -> None:
    """Give the agent's loaded state row, if any, the written values as its committed ones."""
    state = session.identity_map.get(identity_key(AgentState, (agent_id,)))
    if state is not None:
        set_committed_value(state, "free_kinds", value)
        if "assigned_at" in params:
            set_committed_value(state, "last_assigned_at", params["assigned_at"])
            set_committed_value(state, "updated_at", params["stamped_at"])


def shift_load(session: Session, agent_id: int, kind: str, delta: int, policy: RoutingPolicy,
               *, assigned_at: dt.datetime | None = None,
               snapshot_of: AgentState | None = None) -> AgentSnapshot | None:
    """Change an agent's load of a kind and rewrite their free kinds (agent locked).

    ``assigned_at`` records the change as their latest assignment. With
    ``snapshot_of`` (the agent's loaded state row) returns their snapshot after
    the change, read in the same round trip on PostgreSQL. Raises
    ``RuntimeError`` when the load would leave ``0..maximum``.
    """
    params = shift_params(agent_id, kind, delta, assigned_at)
    if session.get_bind().dialect.name != "postgresql":
        result = session.execute(_load_statement(delta > 0), params)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise RuntimeError(f"load of agent {agent_id} for {kind} cannot change by {delta}")
        refresh_free_kinds(session, agent_id, policy, assigned_at=assigned_at,
                           stamped_at=params.get("stamped_at"))
        return agent_snapshot(session, snapshot_of) if snapshot_of is not None else None
    rows = session.execute(_shift_statement(delta > 0, policy.exclusive, assigned_at is not None,
                                            snapshot_of is not None), params).all()
    return take_shift_rows(session, rows, params, snapshot_of)


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
