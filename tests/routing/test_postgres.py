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
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text

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
    RoutingItemSkill,
)
from contactcenter.routing.policy import RoutingPolicy, parse_policy
from contactcenter.routing.snapshot import agent_snapshot
from contactcenter.routing.store import pick_statement
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
    # Offers lapse within the run, so the sweeper expires them, sets repeat lapsers away
    # and re-routes while the workers arrive, accept, decline, complete and come back.
    policy = parse_policy({}, Settings(routing_wrap_up_seconds="call=1",
                                       routing_offer_timeouts="call=1,chat=1,ticket=2",
                                       routing_capacity="call=1,chat=2,ticket=3"))
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 16, "available")
    problems: list[str] = []
    counts = {"ops": 0, "decisions": 0, "sweeps": 0}
    lock = threading.Lock()
    done = threading.Event()

    def sweep() -> None:
        with pg_db.session() as s:
            while not done.is_set():
                result = engine.run_sweep(s, utcnow(), policy)
                with lock:
                    counts["sweeps"] += 1
                    counts["decisions"] += len(result.decisions)
                done.wait(0.05)

    def work(worker: int) -> None:
        if worker == WORKERS:
            sweep()
            return
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
                counts["workers_done"] = counts.get("workers_done", 0) + 1
                if counts["workers_done"] == WORKERS:
                    done.set()

    errors = run_workers(work, WORKERS + 1)
    assert errors == []
    assert problems == []
    assert counts["ops"] > 200 and counts["sweeps"] > 3
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
        ids = list(s.scalars(select(RoutingItem.id)))
        # Skills on half the items and a history of refusals, so that the planner
        # sees real tables behind the pick's anti-joins.
        s.execute(insert(RoutingItemSkill), [
            {"item_id": i, "skill": "billing", "min_level": rng.randint(1, 5)}
            for i in ids[::2]])
        s.execute(insert(Offer), [
            {"item_id": rng.choice(ids), "agent_id": rng.choice(agent_ids), "made_at": base,
             "expires_at": base, "outcome": rng.choice(["declined", "expired", "accepted"]),
             "ended_at": base + dt.timedelta(seconds=rng.randint(0, 20_000)), "reason": ""}
            for _ in range(20_000)])
        s.commit()
    with pg_db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    with pg_db.session() as s:
        state = s.get(AgentState, agent_ids[0])
        agent = agent_snapshot(s, state)
        pick = pick_statement(s, agent, policy, utcnow())
        assert pick is not None
        sent: list[tuple[str, Any]] = []

        def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))

        event.listen(pg_db.engine, "before_cursor_execute", grab)
        try:
            s.execute(*pick).all()  # exactly what a decision sends
        finally:
            event.remove(pg_db.engine, "before_cursor_execute", grab)
        sql, parameters = sent[-1]
        plan = "\n".join(r[0] for r in s.connection().exec_driver_sql(
            "EXPLAIN " + sql, parameters))
        assert "ix_routing_items_pick" in plan, plan
        assert "Seq Scan on routing_" not in plan, plan  # no table scan: indexes only
        # And the engine makes the decision through it.
        result = engine.match_agent(s, agent_ids[0], utcnow(), policy)
        assert result.decisions
        s.commit()
