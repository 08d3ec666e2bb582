"""The engine on a real PostgreSQL server: eight workers routing at once, the order of a
drained queue under concurrency, and the pick's use of its index at 20,000 waiting items.

Every worker has its own session; every operation is one transaction followed by
``commit_and_settle``. Decisions are audited as they are made (eligibility), and the
stored state is checked once the workers stop, before any repair sweep runs.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, insert, select, text

from contactcenter.accounts.models import AgentSkill, User
from contactcenter.config import Settings
from contactcenter.customers.models import Customer
from contactcenter.db import Database, utcnow
from contactcenter.routing import engine
from contactcenter.routing.errors import InvalidStateError, OfferNotFoundError
from contactcenter.routing.models import (
    HELD_STATES,
    AgentState,
    ItemState,
    Offer,
    OfferOutcome,
    RoutingItem,
)
from contactcenter.routing.rules import RoutingPolicy, parse_policy
from contactcenter.routing.store import agent_snapshot, pick_statement
from contactcenter.tickets.models import Queue, QueueMember
from tests.routing.helpers import DecisionAudit, check_invariants

pytestmark = pytest.mark.postgres

WORKERS = 8


def run_workers(fn: Callable[[int], None], n: int = WORKERS) -> list[BaseException]:
    """Run ``fn(i)`` in ``n`` threads released together; return what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"
    return errors


def build_center(db: Database, policy: RoutingPolicy, agents: int, presence: str,
                 queues: int = 2) -> tuple[list[int], list[int], list[int]]:
    """Create queues (the second needs billing), agents and customers; return their ids."""
    rng = random.Random(3)
    with db.session() as s:
        queue_ids = []
        for index in range(queues):
            queue = Queue(slug=f"pg-q{index}", name=f"Q{index}",
                          skill="billing" if index == 1 else None)
            s.add(queue)
            s.flush()
            queue_ids.append(queue.id)
        agent_ids = []
        for index in range(agents):
            user = User(email=f"pg{index}@example.test", name=f"Agent {index}",
                        languages=rng.choice(["en", "en,ru"]))
            user.skills = [AgentSkill(skill="billing", level=rng.randint(1, 5))]
            s.add(user)
            s.flush()
            for queue_id in queue_ids:
                if queue_id == queue_ids[0] or rng.random() < 0.7:
                    s.add(QueueMember(queue_id=queue_id, user_id=user.id))
            engine.ensure_agent(s, user.id, utcnow(), policy)
            agent_ids.append(user.id)
        customers = []
        for index in range(6):
            customer = Customer(name=f"C{index}", value_tier=rng.choice([None, "A", "B"]))
            s.add(customer)
            s.flush()
            customers.append(customer.id)
        s.commit()
        for agent_id in agent_ids:
            engine.set_presence(s, agent_id, presence, utcnow(), policy)
            s.commit()
    return queue_ids, agent_ids, customers


def test_eight_workers_routing_at_once_break_no_invariant(pg_db: Database) -> None:
    policy = parse_policy({}, Settings(routing_wrap_up_seconds="call=0",
                                       routing_capacity="call=1,chat=2,ticket=3"))
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 16, "available")
    problems: list[str] = []
    counts = {"ops": 0, "decisions": 0}
    lock = threading.Lock()

    def work(worker: int) -> None:
        rng = random.Random(worker)
        audit = DecisionAudit(policy, check_order=False)
        with pg_db.session() as s:
            audit.install(s)
            for _op in range(50):
                now = utcnow()
                roll = rng.random()
                try:
                    if roll < 0.35:
                        kind = rng.choice(["call", "chat", "ticket"])
                        engine.enqueue_item(
                            s, kind=kind, channel={"call": "voice"}.get(kind, kind),
                            queue_id=rng.choice(queue_ids), now=now, policy=policy,
                            customer_id=rng.choice(customers + [None]),
                            manual_priority=rng.choice(["normal", "high", "low"]))
                    elif roll < 0.65:
                        offer = s.scalars(select(Offer).where(
                            Offer.outcome == OfferOutcome.PENDING)
                            .order_by(func.random()).limit(1)).first()
                        if offer is None:
                            continue
                        if roll < 0.55:
                            engine.accept_offer(s, offer.id, offer.agent_id, now, policy)
                        else:
                            engine.decline_offer(s, offer.id, offer.agent_id, now, policy)
                    elif roll < 0.85:
                        item_id = s.scalar(select(RoutingItem.id).where(
                            RoutingItem.state == ItemState.ASSIGNED)
                            .order_by(func.random()).limit(1))
                        if item_id is None:
                            continue
                        engine.complete_item(s, item_id, now, policy)
                    elif roll < 0.95:
                        engine.set_presence(s, rng.choice(agent_ids),
                                            rng.choice(["available", "available", "away"]),
                                            now, policy)
                    else:
                        item_id = s.scalar(select(RoutingItem.id).where(
                            RoutingItem.state == ItemState.WAITING)
                            .order_by(func.random()).limit(1))
                        if item_id is None:
                            continue
                        engine.abandon_item(s, item_id, now, policy)
                    result = engine.commit_and_settle(s, now, policy)
                except (InvalidStateError, OfferNotFoundError):
                    s.rollback()  # another worker got there first
                    continue
                with lock:
                    counts["ops"] += 1
                    counts["decisions"] += len(result.decisions)
            with lock:
                problems.extend(audit.problems)
                problems.extend(s.info.get("routing_mismatches", []))

    errors = run_workers(work)
    assert errors == []
    assert problems == []
    assert counts["ops"] > 200
    with pg_db.session() as s:
        now = utcnow()
        # Checked before any repair sweep: the settles alone left nothing stranded.
        assert check_invariants(s, policy, now) == []
        accepted = s.execute(select(Offer.item_id, func.count()).where(
            Offer.outcome == OfferOutcome.ACCEPTED).group_by(Offer.item_id)
            .having(func.count() > 1)).all()
        assert accepted == []
        held = s.scalar(select(func.count()).select_from(RoutingItem).where(
            RoutingItem.state.in_(HELD_STATES)))
        completed = s.scalar(select(func.count()).select_from(RoutingItem).where(
            RoutingItem.state == ItemState.COMPLETED))
        assert (held or 0) + (completed or 0) > 20


def test_a_queue_drained_by_eight_workers_is_served_in_strict_order(pg_db: Database) -> None:
    policy = parse_policy({"default": {"steps": [{"name": "anyone"}]}},
                          Settings(routing_offer_timeouts="ticket=0",
                                   routing_capacity="ticket=2"))
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 16, "away", queues=1)
    rng = random.Random(11)
    start = utcnow() - dt.timedelta(minutes=1)
    with pg_db.session() as s:
        for index in range(200):
            engine.enqueue_item(s, kind="ticket", channel="email", queue_id=queue_ids[0],
                                now=start + dt.timedelta(milliseconds=index), policy=policy,
                                customer_id=rng.choice(customers + [None]),
                                manual_priority=rng.choice(["normal", "high", "low", "urgent"]))
        s.commit()

    def work(worker: int) -> None:
        mine = agent_ids[worker * 2:worker * 2 + 2]
        with pg_db.session() as s:
            for agent_id in mine:
                engine.set_presence(s, agent_id, "available", utcnow(), policy)
                engine.commit_and_settle(s, utcnow(), policy)
            for _round in range(5):
                for agent_id in mine:
                    for item_id in s.scalars(select(RoutingItem.id).where(
                            RoutingItem.agent_id == agent_id,
                            RoutingItem.state == ItemState.ASSIGNED)).all():
                        engine.complete_item(s, item_id, utcnow(), policy)
                        engine.commit_and_settle(s, utcnow(), policy)

    assert run_workers(work) == []
    with pg_db.session() as s:
        rows = s.execute(select(RoutingItem.id, RoutingItem.state, RoutingItem.priority,
                                RoutingItem.enqueued_at)).all()
    key = {row.id: (-row.priority, row.enqueued_at, row.id) for row in rows}
    taken = [row.id for row in rows if row.state != ItemState.WAITING]
    waiting = [row.id for row in rows if row.state == ItemState.WAITING]
    assert len(taken) == 16 * 2 * 6 and waiting
    assert max(key[i] for i in taken) < min(key[i] for i in waiting)


def test_the_pick_descends_its_index_at_twenty_thousand_waiting(pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, _customers = build_center(pg_db, policy, 2, "available")
    base = utcnow() - dt.timedelta(hours=3)
    rng = random.Random(5)
    rows = [{"kind": rng.choice(["ticket", "chat", "call"]), "channel": "email",
             "queue_id": rng.choice(queue_ids), "state": ItemState.WAITING,
             "priority": rng.randint(-100, 2000), "priority_reason": "", "manual_priority":
             "normal", "enqueued_at": base + dt.timedelta(milliseconds=i),
             "rules_since": base, "offer_count": 0, "created_at": base, "updated_at": base}
            for i in range(20_000)]
    with pg_db.session() as s:
        s.execute(insert(RoutingItem), rows)
        s.commit()
    with pg_db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    with pg_db.session() as s:
        state = s.get(AgentState, agent_ids[0])
        agent = agent_snapshot(s, state)
        statement = pick_statement(s, agent, policy, utcnow())
        assert statement is not None
        compiled = statement.compile(dialect=s.get_bind().dialect,
                                      compile_kwargs={"render_postcompile": True})
        plan = "\n".join(r[0] for r in s.connection().exec_driver_sql(
            "EXPLAIN " + compiled.string, compiled.params))
        assert "ix_routing_items_pick" in plan, plan
        assert "Seq Scan on routing_items" not in plan, plan
        # And the engine makes the decision through it.
        result = engine.match_agent(s, agent_ids[0], utcnow(), policy)
        assert result.decisions
        s.commit()
