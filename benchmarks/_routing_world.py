"""Shared parts of the routing benchmarks: throwaway databases, a seeded world, bulk loading.

``bulk_seed`` writes, with SQLAlchemy Core ``insert()`` in batches, exactly the
rows the engine itself would have written for the same world: users with roles,
skills, languages and queue memberships; ``agent_states`` (available) with the
``agent_capacities`` rows ``ensure_agent`` creates (``maximum`` from the policy,
``load`` = what the agent holds); customers with value tiers, lifetime values
and contracts; and routing items, each scored with the policy's own
``priority_score`` (priority, reason, ``rescore_at``), its rule clock from
``rules_clock``, its language and skill row as ``enqueue_item`` derives them
from the queue. Items agents hold are ``assigned`` with their answer time and the
accepted offer that assigned them; the waiting ones are spread over the hours
before the run starts.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (  # noqa: F401 (re-exported)
    latency_figures,
    machine,
    psycopg_url,
    python_loop_seconds,
)
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from contactcenter.accounts.models import AgentSkill, User, UserRole
from contactcenter.customers.models import Contract, Customer
from contactcenter.db import Database, import_models
from contactcenter.routing.models import (
    AgentCapacity,
    AgentState,
    ItemState,
    Offer,
    OfferOutcome,
    Presence,
    RoutingItem,
    RoutingItemSkill,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.priority import PriorityInputs, priority_score
from contactcenter.routing.rules import rules_clock
from contactcenter.routing.vacancy import encode_free_kinds
from contactcenter.tickets.models import Queue, QueueMember

DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CHANNEL_OF = {"call": "voice", "chat": "chat", "ticket": "email"}
SKILLS = ("tech", "billing", "sales")
# slug, language, skill
QUEUES = (
    ("support-en", "en", "tech"),
    ("billing-en", "en", "billing"),
    ("sales-en", "en", "sales"),
    ("support-de", "de", "tech"),
    ("billing-de", "de", "billing"),
    ("general", None, None),
)
TIERS = (("A", 0.12), ("B", 0.23), ("C", 0.35), (None, 0.30))
CONTRACTS = {"A": (("platinum", 60), ("gold", 120)), "B": (("silver", 240),),
             "C": (("bronze", 1440),)}
BATCH = 5000


# --- measurement helpers ---------------------------------------------------------------

@contextmanager
def sqlite_database(prefix: str) -> Iterator[tuple[Database, str]]:
    """A migrated SQLite file database in a temp dir (WAL, as the product configures it)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'routing.db'}")
        try:
            with db.engine.connect() as conn:
                journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            db.upgrade()
            yield db, f"file in a temp dir, journal_mode={journal}, synchronous={sync}"
        finally:
            db.dispose()


@contextmanager
def postgres_database(admin_url: str, prefix: str, **engine_kwargs: Any
                      ) -> Iterator[tuple[Database, str, str]]:
    """A migrated throwaway PostgreSQL database, dropped at the end.

    Raises ``ConnectionError`` when the server cannot be reached.
    """
    import psycopg
    from psycopg import sql

    try:
        admin = psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise ConnectionError(str(exc).strip().splitlines()[0] if str(exc).strip()
                              else repr(exc)) from exc
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    with admin:
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url, **engine_kwargs)
    try:
        with db.engine.connect() as conn:
            sync = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
        db.upgrade()
        where = make_url(admin_url)
        yield db, (f"throwaway database on {where.host}:{where.port or 5432}, "
                   f"synchronous_commit={sync}"), version
    finally:
        db.dispose()
        with psycopg.connect(psycopg_url(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- the world ---------------------------------------------------------------------------

@dataclass
class AgentSpec:
    index: int
    languages: str
    skills: dict[str, int]
    queues: list[int]  # queue indexes


@dataclass
class CustomerSpec:
    index: int
    tier: str | None
    lifetime_value: Decimal | None
    contract: tuple[str, int] | None  # level, response minutes


@dataclass
class World:
    """Ids the database gave the seeded rows."""

    queue_ids: list[int]
    queue_slugs: list[str]
    queue_languages: list[str | None]
    queue_skills: list[str | None]
    agent_ids: list[int]
    customer_ids: list[int]
    customer_tiers: dict[int, str | None]
    held: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # agent -> items


def make_agents(rng: random.Random, n: int) -> list[AgentSpec]:
    """Agents with two or three skills (levels 1-5), English (a third also German)."""
    agents = []
    for i in range(n):
        german = rng.random() < 0.35
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.choice((2, 2, 3)))}
        queues = [q for q, (_slug, lang, skill) in enumerate(QUEUES)
                  if skill in skills and (lang == "en" or (lang == "de" and german))]
        if rng.random() < 0.5:
            queues.append(len(QUEUES) - 1)  # general
        agents.append(AgentSpec(i, "en,de" if german else "en", skills, queues))
    return agents


def make_customers(rng: random.Random, n: int) -> list[CustomerSpec]:
    """Customers with a value tier (A the top ~12 %), lifetime value and maybe a contract."""
    customers = []
    labels = [t for t, _w in TIERS]
    weights = [w for _t, w in TIERS]
    for i in range(n):
        tier = rng.choices(labels, weights)[0]
        ltv = {"A": rng.uniform(40_000, 250_000), "B": rng.uniform(8_000, 40_000),
               "C": rng.uniform(1_000, 8_000)}.get(tier or "", rng.uniform(0, 1_000))
        contract = None
        if tier in CONTRACTS and rng.random() < 0.6:
            contract = rng.choice(CONTRACTS[tier])
        customers.append(CustomerSpec(i, tier, Decimal(f"{ltv:.2f}"), contract))
    return customers


def _with_defaults(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill the columns a row leaves out with the model's scalar defaults.

    ``COPY`` bypasses SQLAlchemy's Python-side defaults, so a NOT NULL column added
    to a model later (``users.locale``) would otherwise break the bulk load.
    """
    missing = {c.name: c.default.arg for c in table.columns
               if c.name not in rows[0] and c.default is not None
               and getattr(c.default, "is_scalar", False)}
    if not missing:
        return rows
    return [{**missing, **row} for row in rows]


def _batched(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: ``COPY`` on PostgreSQL, executemany ``insert()`` batches on SQLite."""
    if not rows:
        return
    rows = _with_defaults(table, rows)
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        raw = conn.connection.driver_connection
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cursor, cursor.copy(
                f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))
        return
    for start in range(0, len(rows), BATCH):
        conn.execute(insert(table), rows[start:start + BATCH])


def _returning_ids(conn: Any, table: Any, rows: list[dict[str, Any]], key: str) -> list[int]:
    """Insert rows and return their ids in the rows' order (matched on a unique column)."""
    _batched(conn, table, rows)
    wanted = [r[key] for r in rows]
    found = dict(conn.execute(text(f"SELECT {key}, id FROM {table.name}")).all())
    return [found[k] for k in wanted]


def _free_kinds(policy: RoutingPolicy, held: dict[str, int]) -> str:
    """What the engine stores in ``agent_states.free_kinds`` for an agent holding ``held``."""
    return encode_free_kinds(
        kind for kind in ("ticket", "call", "chat")
        if held.get(kind, 0) < policy.capacity_for(kind)
        and not any(held.get(other, 0) for other in policy.excluded_by(kind)))


def seed_static(db: Database, agents: list[AgentSpec], customers: list[CustomerSpec],
                policy: RoutingPolicy, now: dt.datetime, *, presence: str = Presence.OFFLINE,
                loads: dict[int, dict[str, int]] | None = None, tag: str = "") -> World:
    """Queues, users, skills, memberships, agent states and capacities, customers, contracts.

    ``loads`` (agent index -> kind -> count) is what each agent will hold: the
    caller inserts those items (``insert_items``) assigned to them.
    """
    loads = loads or {}
    import_models()
    with db.engine.begin() as conn:
        queue_ids = _returning_ids(conn, Queue.__table__, [
            {"slug": slug, "name": slug, "language": lang, "skill": skill,
             "created_at": now, "updated_at": now} for slug, lang, skill in QUEUES], "slug")
        user_ids = _returning_ids(conn, User.__table__, [
            {"email": f"agent{a.index}{tag}@bench.example", "name": f"Agent {a.index}",
             "languages": a.languages, "is_active": True, "financial_access": False,
             "created_at": now, "updated_at": now} for a in agents], "email")
        _batched(conn, UserRole.__table__, [{"user_id": u, "role": "agent"} for u in user_ids])
        _batched(conn, AgentSkill.__table__, [
            {"user_id": user_ids[a.index], "skill": s, "level": lvl}
            for a in agents for s, lvl in a.skills.items()])
        _batched(conn, QueueMember.__table__, [
            {"queue_id": queue_ids[q], "user_id": user_ids[a.index]}
            for a in agents for q in a.queues])
        _batched(conn, AgentState.__table__, [
            {"user_id": user_ids[a.index], "presence": str(presence),
             "presence_reason": "", "presence_since": now, "lapsed_offers": 0,
             "last_assigned_at": (now - dt.timedelta(seconds=len(agents) - a.index)
                                  if loads else None), "updated_at": now,
             "free_kinds": _free_kinds(policy, loads.get(a.index, {}))} for a in agents])
        _batched(conn, AgentCapacity.__table__, [
            {"user_id": user_ids[a.index], "kind": kind, "maximum": policy.capacity_for(kind),
             "load": loads.get(a.index, {}).get(kind, 0)} for a in agents for kind in ("ticket", "call", "chat")])
        customer_ids = _returning_ids(conn, Customer.__table__, [
            {"name": f"Customer {c.index}", "external_id": f"bench-{c.index}{tag}",
             "value_tier": c.tier, "lifetime_value": c.lifetime_value, "notes": "",
             "created_at": now, "updated_at": now} for c in customers], "external_id")
        _batched(conn, Contract.__table__, [
            {"external_id": f"bench-contract-{c.index}{tag}", "customer_id": customer_ids[c.index],
             "level": c.contract[0], "starts_on": now.date() - dt.timedelta(days=200),
             "ends_on": now.date() + dt.timedelta(days=200), "response_minutes": c.contract[1],
             "currency": "USD", "created_at": now, "updated_at": now}
            for c in customers if c.contract is not None])
    return World(queue_ids=queue_ids, queue_slugs=[q[0] for q in QUEUES],
                 queue_languages=[q[1] for q in QUEUES], queue_skills=[q[2] for q in QUEUES],
                 agent_ids=user_ids, customer_ids=customer_ids,
                 customer_tiers={customer_ids[c.index]: c.tier for c in customers})


@dataclass
class ItemSpec:
    """One routing item to bulk-load (waiting, or assigned to an agent)."""

    kind: str
    queue: int  # queue index
    customer: CustomerSpec
    enqueued_at: dt.datetime
    agent_id: int | None = None
    answered_at: dt.datetime | None = None


def item_rows(world: World, specs: list[ItemSpec], policy: RoutingPolicy, now: dt.datetime
              ) -> list[dict[str, Any]]:
    """The rows ``enqueue_item`` (and, for held ones, the offer and acceptance) would write."""
    rows = []
    for spec in specs:
        c = spec.customer
        level, minutes = c.contract if c.contract else (None, None)
        channel = CHANNEL_OF[spec.kind]
        slug = world.queue_slugs[spec.queue]
        at = spec.answered_at or now
        scored = priority_score(PriorityInputs(
            kind=spec.kind, channel=channel, enqueued_at=spec.enqueued_at, value_tier=c.tier,
            lifetime_value=c.lifetime_value, contract_level=level, response_minutes=minutes,
            due_at=None, manual_priority="normal"), policy.weights, at)
        held = spec.agent_id is not None
        rows.append({
            "kind": spec.kind, "channel": channel, "queue_id": world.queue_ids[spec.queue],
            "ticket_id": None, "customer_id": world.customer_ids[c.index], "external_ref": None,
            "language": world.queue_languages[spec.queue],
            "state": (ItemState.ASSIGNED if held else ItemState.WAITING).value,
            "priority": scored.score, "priority_reason": scored.reason,
            "rescore_at": scored.changes_at, "manual_priority": "normal",
            "value_tier": c.tier, "lifetime_value": c.lifetime_value, "contract_level": level,
            "response_minutes": minutes, "due_at": None, "enqueued_at": spec.enqueued_at,
            "rules_since": rules_clock(policy.rules_for(slug), spec.enqueued_at, False),
            "preferred_agent_id": None, "agent_id": spec.agent_id,
            "offered_at": spec.answered_at, "offer_expires_at": None,
            "offer_count": 1 if held else 0, "answered_at": spec.answered_at,
            "wait_seconds": (int((spec.answered_at - spec.enqueued_at).total_seconds())
                             if held and spec.answered_at else None),
            "completed_at": None, "handle_seconds": None, "abandoned_at": None,
            "created_at": spec.enqueued_at, "updated_at": at,
        })
    return rows


def insert_items(db: Database, world: World, specs: list[ItemSpec], policy: RoutingPolicy,
                 now: dt.datetime) -> list[int]:
    """Bulk-insert items and their skill rows; return the new ids in order."""
    rows = item_rows(world, specs, policy, now)
    table = RoutingItem.__table__
    skills_t = RoutingItemSkill.__table__
    ids: list[int] = []
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Take ids from the table's own sequence, then COPY the rows with them.
            ids = list(conn.execute(text(
                "SELECT nextval(pg_get_serial_sequence('routing_items', 'id')) "
                "FROM generate_series(1, :n)"), {"n": len(rows)}).scalars())
            for item_id, row in zip(ids, rows, strict=True):
                row["id"] = item_id
            _batched(conn, table, rows)
        else:
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                before = conn.execute(text("SELECT coalesce(max(id), 0) FROM routing_items")
                                      ).scalar_one()
                conn.execute(insert(table), chunk)
                ids.extend(range(before + 1, before + 1 + len(chunk)))
        skill_rows = [{"item_id": item_id, "skill": world.queue_skills[spec.queue],
                       "min_level": 1}
                      for item_id, spec in zip(ids, specs, strict=True)
                      if world.queue_skills[spec.queue] is not None]
        _batched(conn, skills_t, skill_rows)
        _batched(conn, Offer.__table__, offer_rows(ids, specs, policy, now))
    return ids


def offer_rows(ids: list[int], specs: list[ItemSpec], policy: RoutingPolicy, now: dt.datetime
               ) -> list[dict[str, Any]]:
    """The accepted offer the engine wrote for each held item (its routing history).

    Without them the offers table starts empty, and its statistics say so: plans made
    for an empty table scan it whole, and keep scanning it as the run fills it.
    """
    rows = []
    for item_id, spec in zip(ids, specs, strict=True):
        if spec.agent_id is None:
            continue
        at = spec.answered_at or now
        rows.append({"item_id": item_id, "agent_id": spec.agent_id, "made_at": at,
                     "expires_at": at + dt.timedelta(seconds=policy.offer_timeout(spec.kind)),
                     "outcome": OfferOutcome.ACCEPTED.value, "ended_at": at, "reason": ""})
    return rows


def analyze(db: Database) -> None:
    """Refresh planner statistics after a bulk load (autovacuum would, a little later)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
