"""Read what routing knows of agents and queues: snapshots for the pure policy.

One statement reads several agents' languages, skills, queues (with each queue's
routing facts), capacities and team. Its parts are built from a capacity source,
so the statement that changes an agent's load (``vacancy.change_load_rows``) can
return the agent's new snapshot in the same round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AgentSkill, User
from contactcenter.routing.eligibility import AgentSnapshot
from contactcenter.routing.models import AgentCapacity, AgentState, Team
from contactcenter.tickets.models import Queue, QueueMember

# The common shape of the snapshot's rows: (user_id, tag, text, a, b, text2, text3).
SnapshotRow = tuple[int, str, Any, Any, Any, Any, Any]


def _current_transaction(session: Session) -> Any:
    """The session's transaction, begun if need be (never None, never a past one)."""
    session.connection()
    return session.get_transaction()


def _per_transaction(session: Session, key: str) -> set[int]:
    """A set kept on the session for the current transaction only."""
    transaction = _current_transaction(session)
    cached = session.info.get(key)
    if cached is None or cached[0] is not transaction:
        cached = (transaction, set())
        session.info[key] = cached
    held: set[int] = cached[1]
    return held


@dataclass(frozen=True)
class QueueInfo:
    """What routing needs of a queue: its slug (for its rules), skill and language."""

    id: int
    slug: str
    skill: str | None
    language: str | None


def _known_queues(session: Session) -> dict[int, QueueInfo]:
    """The queues' routing facts read in the current transaction."""
    transaction = _current_transaction(session)
    cached = session.info.get("routing_queues")
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        session.info["routing_queues"] = cached
    known: dict[int, QueueInfo] = cached[1]
    return known


def note_queue(session: Session, queue: QueueInfo) -> None:
    """Keep a queue's routing facts, just read, for the transaction (see ``queue_infos``)."""
    _known_queues(session)[queue.id] = queue


def queue_infos(session: Session, queue_ids: Iterable[int]) -> dict[int, QueueInfo]:
    """Return queues' routing facts, read once per transaction.

    Agent snapshots bring their queues' facts along, so after one the agent's
    queues need no query.
    """
    known = _known_queues(session)
    wanted = sorted(set(queue_ids))
    missing = [q for q in wanted if q not in known]
    if missing:
        for row in session.execute(select(Queue.id, Queue.slug, Queue.skill, Queue.language)
                                   .where(Queue.id.in_(missing))):
            known[row[0]] = QueueInfo(*row)
    return {q: known[q] for q in wanted if q in known}


def queue_of(session: Session, queue_id: int) -> QueueInfo:
    """Return one queue's routing facts or raise ``LookupError``."""
    found = queue_infos(session, [queue_id]).get(queue_id)
    if found is None:
        raise LookupError(f"no queue {queue_id}")
    return found


NULL_INT: Any = cast(null(), Integer)
NULL_TEXT: Any = cast(null(), String)


def tag(letter: str) -> Any:
    """A row tag written into the statement (short SQL: see ``vacancy.kind_sql``)."""
    if not (len(letter) == 1 and letter.isalpha()):
        raise ValueError(f"not a tag: {letter!r}")
    return literal_column(f"'{letter}'", String)


def snapshot_parts(ids: Any, capacities: Any) -> list[Any]:
    """The snapshot's SELECTs for the agents ``ids``, capacities read from ``capacities``.

    Each part is an indexed lookup with the common shape ``(user_id, tag, text,
    a, b, text2, text3)``: ``L`` languages, ``S`` skill/level, ``Q`` queue
    slug/id/-/skill/language, ``C`` kind/maximum/load, ``T`` team slug/id.
    ``capacities`` is the table or a statement's own view of it (columns
    ``user_id``, ``kind``, ``maximum``, ``load``).
    """
    null_int, null_text = NULL_INT, NULL_TEXT
    return [
        select(User.id, tag("L"), User.languages, null_int, null_int, null_text, null_text)
        .where(User.id.in_(ids)),
        select(AgentSkill.user_id, tag("S"), AgentSkill.skill, AgentSkill.level, null_int,
               null_text, null_text).where(AgentSkill.user_id.in_(ids)),
        select(QueueMember.user_id, tag("Q"), Queue.slug, QueueMember.queue_id, null_int,
               Queue.skill, Queue.language)
        .join(Queue, Queue.id == QueueMember.queue_id).where(QueueMember.user_id.in_(ids)),
        select(capacities.c.user_id, tag("C"), capacities.c.kind, capacities.c.maximum,
               capacities.c.load, null_text, null_text).where(capacities.c.user_id.in_(ids)),
        select(AgentState.user_id, tag("T"), Team.slug, Team.id, null_int, null_text,
               null_text)
        .join(Team, Team.id == AgentState.team_id).where(AgentState.user_id.in_(ids)),
    ]


@functools.lru_cache(maxsize=1)
def _snapshot_statement() -> Any:
    """One round trip for agents' snapshots (built once; ids bound as ``snapshot_ids``)."""
    ids: Any = bindparam("snapshot_ids", expanding=True)
    return union_all(*snapshot_parts(ids, AgentCapacity.__table__))


def build_snapshots(session: Session, states: Sequence[AgentState],
                    rows: Iterable[SnapshotRow]) -> dict[int, AgentSnapshot]:
    """Turn snapshot rows into snapshots of the agents (their state rows loaded).

    The queues' facts are kept for the transaction (see ``queue_infos``). The
    team is the one of the state row's ``team_id``.
    """
    ids = {state.user_id for state in states}
    languages: dict[int, str] = {}
    skills: dict[int, dict[str, int]] = {i: {} for i in ids}
    queues: dict[int, set[int]] = {i: set() for i in ids}
    capacity: dict[int, dict[str, int]] = {i: {} for i in ids}
    load: dict[int, dict[str, int]] = {i: {} for i in ids}
    teams: dict[int, str] = {}
    known = _known_queues(session)
    for user_id, tag, name, a, b, text2, text3 in rows:
        if tag == "L":
            languages[user_id] = name
        elif tag == "S":
            skills[user_id][name] = a
        elif tag == "Q":
            queues[user_id].add(a)
            if a not in known:
                known[a] = QueueInfo(a, name, text2, text3)
        elif tag == "C":
            capacity[user_id][name] = a
            load[user_id][name] = b
        elif tag == "T":
            teams[a] = name
    return {
        state.user_id: AgentSnapshot(
            user_id=state.user_id, presence=state.presence,
            languages=frozenset(code.strip() for code in
                                (languages.get(state.user_id) or "").split(",") if code.strip()),
            skills=skills[state.user_id], queue_ids=frozenset(queues[state.user_id]),
            capacity=capacity[state.user_id], load=load[state.user_id],
            team=teams.get(state.team_id) if state.team_id is not None else None,
            last_assigned_at=state.last_assigned_at)
        for state in states
    }


def agent_snapshots(session: Session, states: Sequence[AgentState]) -> dict[int, AgentSnapshot]:
    """Load what routing knows of several agents in one query."""
    ids = sorted({state.user_id for state in states})
    if not ids:
        return {}
    rows = session.execute(_snapshot_statement(), {"snapshot_ids": ids})
    return build_snapshots(session, states, rows)


def agent_snapshot(session: Session, state: AgentState) -> AgentSnapshot:
    """Load what routing knows of one agent (their state row already loaded)."""
    return agent_snapshots(session, [state])[state.user_id]
