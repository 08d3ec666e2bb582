"""Read and lock routing state with indexed queries: the store half of the engine.

Nothing here decides; it loads snapshots for the pure policy and turns the
policy into SQL filters. The agent-side pick asks, in one statement, for the top
item of each (queue, kind) the agent could take, each an index descent of
``ix_routing_items_pick``, and then locks the best one with ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    all_,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, joinedload

from contactcenter.accounts.models import AgentSkill, User
from contactcenter.db import UTCDateTime
from contactcenter.db_postgres import as_loaded, entity_columns, fetch, plan_generically
from contactcenter.routing.eligibility import AgentSnapshot, ItemSnapshot, free_kinds
from contactcenter.routing.models import (
    AgentCapacity,
    AgentState,
    ItemState,
    Offer,
    OfferOutcome,
    Presence,
    RoutingItem,
    RoutingItemSkill,
    Team,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.rules import active_step, agent_threshold, step_starts
from contactcenter.routing.snapshot import (
    _per_transaction,
    queue_infos,
    queue_of,
)
from contactcenter.routing.vacancy import FREE_AGENT, has_room_for, kind_sql
from contactcenter.tickets.models import QueueMember

REFUSALS = (OfferOutcome.DECLINED, OfferOutcome.EXPIRED)
# Constants written into the pick's SQL rather than bound, so that PostgreSQL plans
# with them (a bound LIMIT or state leaves a prepared statement's generic plan blind).
WAITING_SQL: Any = literal_column(f"'{ItemState.WAITING.value}'", String)
ONE: Any = literal_column("1", Integer)
# The refusal outcomes, written into the SQL too (a bound list is expanded per
# execution, which keeps a statement from being compiled once: ``query_after_commit``).
REFUSALS_SQL: Any = tuple(literal_column(f"'{outcome.value}'", String) for outcome in REFUSALS)


def begin_write(session: Session) -> None:
    """Make sure this transaction holds SQLite's write lock before it reads.

    pysqlite begins a transaction only before the first write, so reads before it
    could be stale by the time the write runs; ``BEGIN IMMEDIATE`` takes the lock
    first. A transaction that has already written holds the lock. PostgreSQL
    needs no lock here (it uses row locks); a transaction about to begin there is
    asked to plan its prepared statements once (``db_postgres.plan_generically``).
    """
    if session.get_bind().dialect.name != "sqlite":
        plan_generically(session)
        return
    driver = session.connection().connection.driver_connection
    if driver is not None and not driver.in_transaction:
        driver.execute("BEGIN IMMEDIATE")


def lock_item(session: Session, item_id: int, *, skip_locked: bool = False,
              state: str | None = None, with_skills: bool = False) -> RoutingItem | None:
    """Lock and reload an item (None if missing, skipped, or not in ``state``).

    ``with_skills`` loads its skill rows in the same statement (an outer join;
    only the item's row is locked).
    """
    params: dict[str, Any] = {"lock_item": item_id}
    if state is not None:
        params["lock_state"] = state
    query = _item_lock(skip_locked, state is not None, with_skills)
    return session.scalars(query, params).unique().first()


@functools.lru_cache(maxsize=8)
def _item_lock(skip_locked: bool, in_state: bool, with_skills: bool) -> Select[Any]:
    """``lock_item``'s statement, built once per variant; binds ``lock_item``, ``lock_state``."""
    query = select(RoutingItem).where(RoutingItem.id == bindparam("lock_item"))
    if in_state:
        query = query.where(RoutingItem.state == bindparam("lock_state"))
    if with_skills:
        query = query.options(joinedload(RoutingItem.skills))
    return query.with_for_update(skip_locked=skip_locked, of=RoutingItem).execution_options(
        populate_existing=True)


@functools.lru_cache(maxsize=2)
def _agent_lock(skip_locked: bool) -> Select[Any]:
    """``lock_agent``'s statement, built once per variant; binds ``lock_agent``."""
    return (select(AgentState).where(AgentState.user_id == bindparam("lock_agent"))
            .with_for_update(skip_locked=skip_locked, of=AgentState)
            .execution_options(populate_existing=True))


def read_item(session: Session, item_id: int) -> RoutingItem | None:
    """Reload an item and its skills without locking it (None if missing)."""
    query = (select(RoutingItem).where(RoutingItem.id == item_id)
             .options(joinedload(RoutingItem.skills))
             .execution_options(populate_existing=True))
    return session.scalars(query).unique().first()


def lock_agent(session: Session, agent_id: int, *, skip_locked: bool = False
               ) -> AgentState | None:
    """Lock and reload an agent's state row (None if missing or skipped).

    A row this transaction has already locked and loaded is not read again: its
    lock is held until commit and only this transaction can have changed it.
    """
    held = _per_transaction(session, "routing_locked_agents")
    if agent_id in held:
        state = session.get(AgentState, agent_id)
        if state is not None:
            return state
    state = session.scalars(_agent_lock(skip_locked), {"lock_agent": agent_id}).first()
    if state is not None:
        _note_locked(session, agent_id)
    return state


def _note_locked(session: Session, agent_id: int) -> None:
    """Remember that this transaction holds the agent's lock (see ``lock_agent``).

    Only outside savepoints, as ``lock_agent`` always did: what a savepoint did may be
    rolled back while the transaction goes on.
    """
    if not session.in_nested_transaction():
        _per_transaction(session, "routing_locked_agents").add(agent_id)


@functools.lru_cache(maxsize=1)
def _item_and_agent_lock() -> Select[Any]:
    """Built once (building it cost more Python time than running it); binds ``lock_item``.

    Core columns of both rows (``as_loaded`` makes the objects).
    """
    items: Any = RoutingItem.__table__
    states: Any = AgentState.__table__
    return (select(*entity_columns(RoutingItem), *entity_columns(AgentState))
            .join_from(items, states, states.c.user_id == items.c.agent_id)
            .where(items.c.id == bindparam("lock_item"))
            .with_for_update(of=[items, states]))


@functools.lru_cache(maxsize=1)
def _offer_lock() -> Select[Any]:
    """Built once; binds ``lock_offer``. Core columns of the three rows."""
    items: Any = RoutingItem.__table__
    offers: Any = Offer.__table__
    states: Any = AgentState.__table__
    return (select(*entity_columns(RoutingItem), *entity_columns(Offer),
                   *entity_columns(AgentState))
            .join_from(items, offers, offers.c.item_id == items.c.id)
            .join(states, states.c.user_id == offers.c.agent_id)
            .where(offers.c.id == bindparam("lock_offer"))
            .with_for_update(of=[items, offers, states]))


def lock_item_and_agent(session: Session, item_id: int
                        ) -> tuple[RoutingItem, AgentState] | None:
    """PostgreSQL: lock an item and the agent holding it in one statement, item first.

    The order is the one ``lock_item`` then ``lock_agent`` take. None when the item
    is missing or has no agent (the caller locks as usual then), and when the
    item's agent changed while this waited for its lock: PostgreSQL re-checks the
    join on the newest version of the item, finds the agent row no longer joins
    and returns nothing. The agent's row then stays locked to the end of the
    transaction, which only holds a lock this transaction no longer needs.
    """
    found = _lock_rows(session, _item_and_agent_lock(), {"lock_item": item_id},
                       (RoutingItem, AgentState))
    if found is None:
        return None
    item, state = found
    return item, state


def lock_offer(session: Session, offer_id: int
               ) -> tuple[RoutingItem, Offer, AgentState] | None:
    """PostgreSQL: lock an offer's item, the offer and its agent in one statement.

    Locks in the order item, offer, agent: every other path locks an item before
    its agent, and writes offers only under their item's lock. The rows are the
    newest versions once the locks are held (PostgreSQL re-reads rows locked
    after a wait). None when the offer or its agent's state row is missing.
    """
    found = _lock_rows(session, _offer_lock(), {"lock_offer": offer_id},
                       (RoutingItem, Offer, AgentState))
    if found is None:
        return None
    item, offer, state = found
    return item, offer, state


def _lock_rows(session: Session, statement: Select[Any], params: dict[str, Any],
               classes: tuple[type, ...]) -> list[Any] | None:
    """Run a lock statement of ``classes``' columns (an agent's state last); their objects.

    The agent's lock is noted (``lock_agent`` will not lock or read them again). None
    when it found no row.
    """
    rows = fetch(session, statement, params)
    if not rows:
        return None
    found = as_loaded(session, classes, rows[0])
    _note_locked(session, found[-1].user_id)
    return found


def created_here(session: Session, item_id: int) -> RoutingItem | None:
    """Return an item inserted by this transaction (no other can see it, let alone lock it)."""
    if item_id not in _per_transaction(session, "routing_created_items"):
        return None
    return session.get(RoutingItem, item_id)


def mark_created(session: Session, item_id: int) -> None:
    """Remember that this transaction inserted the item (see ``created_here``)."""
    _per_transaction(session, "routing_created_items").add(item_id)


def refused_by(session: Session, item_id: int, policy: RoutingPolicy, now: dt.datetime
               ) -> frozenset[int]:
    """Return the agents who declined or let lapse an offer of the item within the cooldown."""
    cutoff = now - policy.decline_cooldown
    return frozenset(session.scalars(select(Offer.agent_id).where(
        Offer.item_id == item_id, Offer.outcome.in_(REFUSALS_SQL), Offer.ended_at > cutoff)))


def item_snapshot(session: Session, item: RoutingItem, policy: RoutingPolicy,
                  now: dt.datetime, *, with_refusals: bool = True) -> ItemSnapshot:
    """Load what routing knows of an item."""
    queue = queue_of(session, item.queue_id)
    return ItemSnapshot(
        item_id=item.id, kind=item.kind, channel=item.channel, queue_id=item.queue_id,
        queue_slug=queue.slug, queue_skill=queue.skill, enqueued_at=item.enqueued_at,
        rules_since=item.rules_since, priority=item.priority, language=item.language,
        skills={s.skill: s.min_level for s in item.skills},
        preferred_agent_id=item.preferred_agent_id,
        refused_by=refused_by(session, item.id, policy, now) if with_refusals else frozenset())


def _not_refused(agent_id: Any, item_id: Any, cutoff: Any) -> Any:
    return not_(exists().where(Offer.item_id == item_id, Offer.agent_id == agent_id,
                               Offer.outcome.in_(REFUSALS_SQL), Offer.ended_at > cutoff))


def _pick_filters(skills: int, has_languages: bool, arrays: bool = False) -> list[Any]:
    """What every descent of the pick checks besides queue, kind and rule step.

    Language, skills (``skill_<n>``/``level_<n>``), the agent's refusals
    (``agent_id``, ``refusal_cutoff``) and ``exclude``. With ``arrays`` (PostgreSQL)
    ``languages`` and ``exclude`` are bound as arrays, so that the statement's SQL is
    the same at every execution (compiled once); else as expanded ``IN`` lists.
    """
    agent_id: Any = bindparam("agent_id")
    held = [and_(RoutingItemSkill.skill == bindparam(f"skill_{n}"),
                 RoutingItemSkill.min_level <= bindparam(f"level_{n}"))
            for n in range(skills)]
    if arrays:
        speaks = RoutingItem.language == any_(
            bindparam("languages", type_=postgresql.ARRAY(String)))
        unexcluded = RoutingItem.id != all_(bindparam("exclude", type_=postgresql.ARRAY(Integer)))
    else:
        speaks = RoutingItem.language.in_(bindparam("languages", expanding=True))
        unexcluded = RoutingItem.id.not_in(bindparam("exclude", expanding=True))
    return [
        or_(RoutingItem.language.is_(None), speaks)
        if has_languages else RoutingItem.language.is_(None),
        not_(exists().where(RoutingItemSkill.item_id == RoutingItem.id,
                            not_(or_(*held) if held else false()))),
        not_(exists().where(Offer.item_id == RoutingItem.id, Offer.agent_id == agent_id,
                            Offer.outcome.in_(REFUSALS_SQL),
                            Offer.ended_at > bindparam("refusal_cutoff"))),
        unexcluded,
    ]


@functools.lru_cache(maxsize=64)
def _lateral_pick_shape(skills: int, has_languages: bool) -> Select[Any]:
    """PostgreSQL: the pick as one ``LIMIT 1`` descent per target, targets bound as arrays.

    ``pick_queues``, ``pick_kinds`` and ``pick_cutoffs`` (the rule step's cutoff
    in that queue; NULL: only items preferring the agent) are unnested into
    rows, and a LATERAL subquery descends the pick index once for each. The
    statement's text does not grow with the agent's queues and kinds (psycopg
    converts long queries anew each time), and agents with as many skills and
    languages or none share it.
    """
    targets = func.unnest(
        bindparam("pick_queues", type_=postgresql.ARRAY(Integer)),
        bindparam("pick_kinds", type_=postgresql.ARRAY(String)),
        bindparam("pick_cutoffs", type_=postgresql.ARRAY(UTCDateTime())),
    ).table_valued("queue_id", "kind", "cutoff").render_derived(name="target")
    best = (select(RoutingItem.id, RoutingItem.priority, RoutingItem.enqueued_at,
                   RoutingItem.queue_id, RoutingItem.kind)
            .where(RoutingItem.queue_id == targets.c.queue_id,
                   RoutingItem.state == WAITING_SQL, RoutingItem.kind == targets.c.kind,
                   or_(RoutingItem.preferred_agent_id == bindparam("agent_id"),
                       RoutingItem.rules_since <= targets.c.cutoff),
                   *_pick_filters(skills, has_languages, arrays=True))
            .order_by(RoutingItem.priority.desc(), RoutingItem.enqueued_at, RoutingItem.id)
            .limit(ONE).lateral("best"))
    return (select(best.c.id, best.c.priority, best.c.enqueued_at, best.c.queue_id,
                   best.c.kind).select_from(targets).join(best, true()))


@functools.lru_cache(maxsize=1024)
def _pick_shape(queues: tuple[tuple[int, bool], ...], kinds: tuple[str, ...],
                skills: tuple[str, ...], has_languages: bool) -> Select[Any]:
    """Build (once per shape) the pick statement; the values are bound parameters.

    Agents with the same queues, free kinds, skill names and language presence
    share one statement object, so a decision binds values instead of building
    SQL: ``agent_id``, ``refusal_cutoff``, ``exclude``, ``languages``,
    ``cutoff_<n>`` per queue and ``skill_<n>``/``level_<n>`` per skill.
    """
    agent_id: Any = bindparam("agent_id")
    common = _pick_filters(len(skills), has_languages)
    parts: list[Any] = []
    for n, (queue_id, reachable) in enumerate(queues):
        reach = RoutingItem.preferred_agent_id == agent_id
        if reachable:
            reach = or_(reach, RoutingItem.rules_since <= bindparam(f"cutoff_{n}"))
        for kind in kinds:
            parts.append(
                select(RoutingItem.id, RoutingItem.priority, RoutingItem.enqueued_at,
                       RoutingItem.queue_id, RoutingItem.kind)
                .where(RoutingItem.queue_id == queue_id, RoutingItem.state == ItemState.WAITING,
                       RoutingItem.kind == kind, reach, *common)
                .order_by(RoutingItem.priority.desc(), RoutingItem.enqueued_at, RoutingItem.id)
                .limit(1))
    if len(parts) == 1:
        single: Select[Any] = parts[0]
        return single
    union = union_all(*[select(part.subquery()) for part in parts]).subquery()
    return select(union.c.id, union.c.priority, union.c.enqueued_at, union.c.queue_id,
                  union.c.kind)


def pick_statement(session: Session, agent: AgentSnapshot, policy: RoutingPolicy,
                   now: dt.datetime, exclude: Collection[int] = ()
                   ) -> tuple[Select[Any], dict[str, Any]] | None:
    """Return the agent's pick and its parameters (None: nothing they could take).

    One statement: ``LIMIT 1`` descents of the pick index, one per queue the agent
    serves and kind they have room for, each filtered by the rule step the agent
    reaches in that queue, language, skills and refusals (a UNION ALL; on
    PostgreSQL a LATERAL join over the targets bound as arrays).
    """
    kinds = tuple(sorted(free_kinds(agent, policy)))
    if not kinds or not agent.queue_ids:
        return None
    queues: list[tuple[int, bool]] = []
    params: dict[str, Any] = {"agent_id": agent.user_id, "exclude": sorted(exclude),
                              "refusal_cutoff": now - policy.decline_cooldown,
                              "languages": sorted(agent.languages)}
    for n, (queue_id, info) in enumerate(queue_infos(session, agent.queue_ids).items()):
        threshold = agent_threshold(policy.rules_for(info.slug), info.skill, agent.team,
                                    agent.skills)
        queues.append((queue_id, threshold is not None))
        if threshold is not None:
            params[f"cutoff_{n}"] = now - dt.timedelta(seconds=threshold)
    skills = tuple(sorted(agent.skills))
    for n, skill in enumerate(skills):
        params[f"skill_{n}"] = skill
        params[f"level_{n}"] = agent.skills[skill]
    if not queues:
        return None
    if session.get_bind().dialect.name == "postgresql":
        targets = [(queue_id, kind, params.get(f"cutoff_{n}"))
                   for n, (queue_id, _reachable) in enumerate(queues) for kind in kinds]
        params.update(pick_queues=[t[0] for t in targets], pick_kinds=[t[1] for t in targets],
                      pick_cutoffs=[t[2] for t in targets])
        return _lateral_pick_shape(len(skills), bool(agent.languages)), params
    return _pick_shape(tuple(queues), kinds, skills, bool(agent.languages)), params


def pick_candidates(session: Session, agent: AgentSnapshot, policy: RoutingPolicy,
                    now: dt.datetime, exclude: Collection[int] = ()
                    ) -> list[tuple[int, int, dt.datetime, int, str]]:
    """Return the best waiting item of each (queue, kind) the agent may take, best first."""
    pick = pick_statement(session, agent, policy, now, exclude)
    if pick is None:
        return []
    rows = [tuple(row) for row in fetch(session, *pick)]
    return sorted(rows, key=lambda row: (-row[1], row[2], row[0]))


def _team_ids(session: Session, slugs: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    return dict(session.execute(select(Team.slug, Team.id).where(Team.slug.in_(wanted))
                                ).all())


# One reached rule step as the candidate query needs it: the team id (None: any
# team; 0: a team that does not exist), and the skill and level required (None: none).
StepOption = tuple[int | None, str | None, int | None]


def _step_options(session: Session, item: ItemSnapshot, policy: RoutingPolicy,
                  now: dt.datetime) -> tuple[StepOption, ...] | None:
    """The rule steps the item has reached (cumulative widening); None: no steps at all.

    The sticky agent's own option is added by the caller (``preferred_agent_id``).
    """
    rules = policy.rules_for(item.queue_slug)
    if not rules.steps:
        return None
    reached = active_step(rules, item.rules_since, now)
    elapsed = (now - item.rules_since).total_seconds()
    teams = _team_ids(session, [s.team for s in rules.steps if s.team])
    options: list[StepOption] = []
    for index, (step, start) in enumerate(zip(rules.steps, step_starts(rules), strict=True)):
        if index > reached or start > elapsed or step.preferred:
            continue
        team_id = None if step.team is None else teams.get(step.team, 0)
        skill = step.skill or item.queue_skill
        level = step.min_level if step.min_level is not None and skill is not None else None
        options.append((team_id, skill if level is not None else None, level))
    return tuple(options)


def _step_filter(options: tuple[StepOption, ...] | None, preferred: bool) -> Any:
    """SQL for "the item's rules have reached this agent" (values are literals of the shape)."""
    if options is None:
        return true()
    clauses: list[Any] = []
    if preferred:
        clauses.append(AgentState.user_id == bindparam("preferred_agent"))
    for team_id, skill, level in options:
        parts: list[Any] = []
        if team_id is not None:
            parts.append(AgentState.team_id == team_id if team_id else false())
        if level is not None:
            parts.append(exists().where(AgentSkill.user_id == AgentState.user_id,
                                        AgentSkill.skill == skill, AgentSkill.level >= level))
        clauses.append(and_(*parts) if parts else true())
    return or_(*clauses) if clauses else false()


@functools.lru_cache(maxsize=1024)
def _candidate_shape(kind: str, excluded_kinds: tuple[str, ...],
                     options: tuple[StepOption, ...] | None, preferred: bool,
                     has_language: bool, skills: int, has_exclude: bool,
                     order: tuple[str, ...]) -> Select[Any]:
    """Build (once per shape) the candidate statement; the values are bound parameters.

    Binds: ``queue_id``, ``refusal_cutoff``, ``item_id``, ``limit``, and as the
    shape needs them ``preferred_agent``, ``language_like``, ``cand_skill_<n>``/
    ``cand_level_<n>`` and ``exclude``. Building the statement each decision cost
    more Python time than running it.
    """
    query = (
        select(AgentState.user_id)
        .join(QueueMember, and_(QueueMember.user_id == AgentState.user_id,
                                QueueMember.queue_id == bindparam("queue_id")))
        .join(AgentCapacity, and_(AgentCapacity.user_id == AgentState.user_id,
                                  AgentCapacity.kind == kind))
        .where(has_room_for(kind),
               AgentState.presence == Presence.AVAILABLE,
               AgentCapacity.load < AgentCapacity.maximum,
               _step_filter(options, preferred),
               _not_refused(AgentState.user_id, bindparam("item_id"),
                            bindparam("refusal_cutoff")))
    )
    if excluded_kinds:
        other = AgentCapacity.__table__.alias("other_capacity")
        excluded = [kind_sql(k) for k in excluded_kinds]
        query = query.where(not_(exists().where(other.c.user_id == AgentState.user_id,
                                                other.c.kind.in_(excluded),
                                                other.c.load > 0)))
    if has_language:
        query = query.join(User, User.id == AgentState.user_id).where(
            (literal(",") + User.languages + literal(",")).like(bindparam("language_like")))
    for n in range(skills):
        query = query.where(exists().where(AgentSkill.user_id == AgentState.user_id,
                                           AgentSkill.skill == bindparam(f"cand_skill_{n}"),
                                           AgentSkill.level >= bindparam(f"cand_level_{n}")))
    if has_exclude:
        query = query.where(AgentState.user_id.not_in(bindparam("exclude", expanding=True)))
    ordering: list[Any] = []
    for criterion in order:
        if criterion == "sticky" and preferred:
            ordering.append(AgentState.user_id != bindparam("preferred_agent"))
        elif criterion == "blocking" and excluded_kinds:
            ordering.append(AgentCapacity.load == 0)
        elif criterion == "load":
            ordering.append(AgentCapacity.load * 1.0 / AgentCapacity.maximum)
        elif criterion == "idle":
            ordering.append(AgentState.last_assigned_at.asc().nulls_first())
    ordering.append(AgentState.user_id)
    return query.order_by(*ordering).limit(bindparam("limit"))


def candidate_agents(session: Session, item: ItemSnapshot, policy: RoutingPolicy,
                     now: dt.datetime, order: Sequence[str], limit: int = 20,
                     exclude: Collection[int] = ()) -> list[int]:
    """Return ids of available agents who may take the item, roughly best first.

    The SQL order approximates the queue's ranking; ``rank_agents`` orders the
    returned few exactly.
    """
    return list(session.scalars(*candidate_statement(session, item, policy, now, order, limit,
                                                     exclude)))


def candidate_statement(session: Session, item: ItemSnapshot, policy: RoutingPolicy,
                        now: dt.datetime, order: Sequence[str], limit: int = 20,
                        exclude: Collection[int] = ()
                        ) -> tuple[Select[Any], dict[str, Any]]:
    """The statement ``candidate_agents`` runs, and its parameters."""
    options = _step_options(session, item, policy, now)
    preferred = item.preferred_agent_id is not None
    skills = sorted(item.skills.items())
    statement = _candidate_shape(
        item.kind, tuple(sorted(policy.excluded_by(item.kind))), options, preferred,
        bool(item.language), len(skills), bool(exclude), tuple(order))
    params: dict[str, Any] = {"queue_id": item.queue_id, "item_id": item.item_id,
                              "refusal_cutoff": now - policy.decline_cooldown,
                              "limit": limit}
    if preferred:
        params["preferred_agent"] = item.preferred_agent_id
    if item.language:
        params["language_like"] = f"%,{item.language},%"
    for n, (skill, level) in enumerate(skills):
        params[f"cand_skill_{n}"] = skill
        params[f"cand_level_{n}"] = level
    if exclude:
        params["exclude"] = sorted(exclude)
    return statement, params


def free_agent_ids(session: Session, limit: int | None = None) -> list[int]:
    """Return available agents with room for at least one more item, longest idle first."""
    query = (select(AgentState.user_id)
             .where(FREE_AGENT, AgentState.presence == Presence.AVAILABLE,
                    exists().where(AgentCapacity.user_id == AgentState.user_id,
                                   AgentCapacity.load < AgentCapacity.maximum))
             .order_by(AgentState.last_assigned_at.asc().nulls_first(), AgentState.user_id))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
