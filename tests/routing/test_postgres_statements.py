"""PostgreSQL's one-statement writes give what the plain statements give.

A load change with its free-kinds flag (and the agent's snapshot), and an offer
with its item's new state, are each one statement on PostgreSQL (data-modifying
CTEs); SQLite runs them as separate statements. These tests run random load
changes and offers on a real server and compare every result with what fresh
reads say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any, Self

import pytest
from sqlalchemy import event, select

from contactcenter.config import Settings
from contactcenter.db import Database, utcnow
from contactcenter.routing import engine
from contactcenter.routing.models import (
    AgentCapacity,
    AgentState,
    ItemState,
    Offer,
    OfferOutcome,
    RoutingItem,
)
from contactcenter.routing.offering import change_load, make_offer
from contactcenter.routing.policy import parse_policy
from contactcenter.routing.snapshot import agent_snapshot
from contactcenter.routing.store import lock_agent, lock_item
from contactcenter.routing.vacancy import snapshot_free_kinds
from tests.routing.test_postgres import build_center
from tests.test_postgres_roundtrips import Trace

pytestmark = pytest.mark.postgres


class Statements:
    """Count the statements sent to a database while active."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.count = 0
        self.sent: list[str] = []

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.sent.append(" ".join(statement.split()))  # one line, single spaces

    def __enter__(self) -> Self:
        event.listen(self.db.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._on)


def _loads(session: Any, agent_id: int) -> dict[str, tuple[int, int]]:
    return {kind: (maximum, load) for kind, maximum, load in session.execute(
        select(AgentCapacity.kind, AgentCapacity.maximum, AgentCapacity.load)
        .where(AgentCapacity.user_id == agent_id))}


def test_a_load_change_rewrites_the_flag_and_returns_the_snapshot_in_one_statement(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    _queues, agent_ids, _customers = build_center(pg_db, policy, 3, "available")
    rng = random.Random(11)
    with pg_db.session() as s:
        for agent_id in agent_ids:
            # Room for two chats, so that held chats and calls exclude each other.
            s.execute(AgentCapacity.__table__.update()
                      .where(AgentCapacity.user_id == agent_id, AgentCapacity.kind == "chat")
                      .values(maximum=2))
        s.commit()
    for step in range(120):
        agent_id = rng.choice(agent_ids)
        kind = rng.choice(["ticket", "chat", "call"])
        delta = rng.choice([1, -1])
        now = utcnow()
        with pg_db.session() as s:
            state = lock_agent(s, agent_id)
            assert state is not None
            before = _loads(s, agent_id)
            maximum, load = before[kind]
            stamp = now if delta > 0 and rng.random() < 0.5 else None
            with Statements(pg_db) as sent:
                if not 0 <= load + delta <= maximum:
                    with pytest.raises(RuntimeError):
                        change_load(s, agent_id, kind, delta, policy, assigned_at=stamp,
                                    snapshot_of=state)
                    assert sent.count == 1
                    assert _loads(s, agent_id) == before
                    continue
                returned = change_load(s, agent_id, kind, delta, policy, assigned_at=stamp,
                                       snapshot_of=state)
                assert sent.count == 1, step
            fresh = agent_snapshot(s, s.get(AgentState, agent_id))  # type: ignore[arg-type]
            assert returned is not None
            assert dataclasses.asdict(returned) == dataclasses.asdict(fresh)
            assert fresh.load[kind] == load + delta
            assert state.free_kinds == snapshot_free_kinds(fresh, policy)
            s.commit()
        with pg_db.session() as s:
            stored = s.get(AgentState, agent_id)
            assert stored is not None
            assert stored.free_kinds == snapshot_free_kinds(agent_snapshot(s, stored), policy)
            if stamp is not None:
                assert stored.last_assigned_at == stamp


def test_an_offer_writes_the_load_its_row_and_the_item_in_one_statement(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 1, "offline")
    agent_id = agent_ids[0]
    now = utcnow()
    item_ids = []
    with pg_db.session() as s:
        for customer_id in customers[:2]:
            queued = engine.enqueue_item(s, kind="chat", channel="chat", queue_id=queue_ids[0],
                                         now=now, policy=policy, customer_id=customer_id)
            item_ids.append(queued.item.id)
        s.execute(AgentCapacity.__table__.update()
                  .where(AgentCapacity.user_id == agent_id, AgentCapacity.kind == "chat")
                  .values(maximum=1))
        s.commit()
    expires = now + dt.timedelta(seconds=30)
    with pg_db.session() as s:
        item = lock_item(s, item_ids[0])
        assert item is not None and item.state == ItemState.WAITING
        state = lock_agent(s, agent_id)
        assert state is not None
        with Statements(pg_db) as sent:
            offer_id = make_offer(s, item, agent_id, now, expires, policy)
            # The item's and the agent's new values are known without a refresh.
            seen = (item.state, item.agent_id, item.offered_at, item.offer_expires_at,
                    item.offer_count, state.free_kinds, state.last_assigned_at)
        assert sent.count == 1
        fresh = agent_snapshot(s, state)
        assert fresh.load["chat"] == 1
        assert seen == (ItemState.OFFERED, agent_id, now, expires, 1,
                        snapshot_free_kinds(fresh, policy), now)
        assert "chat" not in seen[5] and "call" not in seen[5]
        assert not s.dirty
        # No room for a second chat: nothing is written.
        other = lock_item(s, item_ids[1])
        assert other is not None
        with pytest.raises(RuntimeError):
            make_offer(s, other, agent_id, now, expires, policy)
        assert s.scalar(select(Offer.id).where(Offer.item_id == other.id)) is None
        assert s.scalar(select(RoutingItem.state).where(RoutingItem.id == other.id)) == "waiting"
        assert agent_snapshot(s, state).load == fresh.load
        s.commit()
    with pg_db.session() as s:
        stored = s.get(RoutingItem, item_ids[0])
        offer = s.get(Offer, offer_id)
        agent = s.get(AgentState, agent_id)
        assert stored is not None and offer is not None and agent is not None
        assert (stored.state, stored.agent_id, stored.offered_at, stored.offer_expires_at,
                stored.offer_count) == (ItemState.OFFERED, agent_id, now, expires, 1)
        assert stored.updated_at > now
        assert (offer.item_id, offer.agent_id, offer.made_at, offer.expires_at, offer.outcome,
                offer.ended_at, offer.reason) == (item_ids[0], agent_id, now, expires,
                                                  OfferOutcome.PENDING, None, "")
        assert (agent.free_kinds, agent.last_assigned_at) == (seen[5], now)


def test_completing_an_assigned_item_lowers_the_load_in_the_same_statement(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 1, "available")
    agent_id = agent_ids[0]
    now = utcnow()
    item_ids = []
    with pg_db.session() as s:
        for customer_id in customers[:2]:
            queued = engine.enqueue_item(s, kind="ticket", channel="email",
                                         queue_id=queue_ids[0], now=now, policy=policy,
                                         customer_id=customer_id)
            item_ids.append(queued.item.id)
            for decision in queued.match.decisions:
                assert decision.offer_id is not None
                engine.accept_offer(s, decision.offer_id, agent_id, now, policy)
        s.commit()
    done = now + dt.timedelta(minutes=5)
    with pg_db.session() as s:
        item = s.get(RoutingItem, item_ids[0])
        assert item is not None and item.state == ItemState.ASSIGNED
        answered = item.answered_at
        assert answered is not None
        before = _loads(s, agent_id)["ticket"][1]
        with Statements(pg_db) as sent:
            engine.complete_item(s, item_ids[0], done, policy, wrap_up=False)
        # The item, its completion and the agent's load and snapshot are one write.
        writes = [sql.split()[0:4] for sql in sent.sent if not sql.startswith("SELECT")]
        assert writes == [["WITH", "changed_load", "AS", "(UPDATE"]], sent.sent
        assert (item.state, item.completed_at, item.offer_expires_at, item.handle_seconds) == (
            ItemState.COMPLETED, done, None, int((done - answered).total_seconds()))
        state = s.get(AgentState, agent_id)
        assert state is not None
        fresh = agent_snapshot(s, state)
        assert fresh.load["ticket"] == before - 1
        assert state.free_kinds == snapshot_free_kinds(fresh, policy)
        s.commit()
    with pg_db.session() as s:
        stored = s.get(RoutingItem, item_ids[0])
        assert stored is not None
        assert (stored.state, stored.completed_at, stored.handle_seconds) == (
            ItemState.COMPLETED, done, int((done - answered).total_seconds()))
        # A load that cannot drop (written behind the engine's back) completes nothing.
        s.execute(AgentCapacity.__table__.update()
                  .where(AgentCapacity.user_id == agent_id, AgentCapacity.kind == "ticket")
                  .values(load=0))
        with pytest.raises(RuntimeError):
            engine.complete_item(s, item_ids[1], done, policy, wrap_up=False)
        assert s.scalar(select(RoutingItem.state).where(
            RoutingItem.id == item_ids[1])) == ItemState.ASSIGNED


def _waiting_chat(session: Any, policy: Any, queue_id: int, customer_id: int,
                  now: dt.datetime) -> Any:
    """Queue a chat that nobody can take (uncommitted); return what ``enqueue_item`` did."""
    queued = engine.enqueue_item(session, kind="chat", channel="chat", queue_id=queue_id,
                                 now=now, policy=policy, customer_id=customer_id)
    assert queued.item.state == ItemState.WAITING
    return queued


def test_an_arrival_nobody_can_take_is_rechecked_after_commit_outside_a_transaction(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, _agents, customers = build_center(pg_db, policy, 2, "offline")
    now = utcnow()
    with pg_db.session() as s:
        queued = _waiting_chat(s, policy, queue_ids[0], customers[0], now)
        item_id = queued.item.id
        driver = s.connection().connection.driver_connection
        outcome: list[Any] = []
        with Statements(pg_db) as sent:
            # The re-check travels right after the COMMIT, in the same round trip.
            trace = Trace(driver)
            trace.run(lambda: outcome.append(engine.commit_and_settle(s, now, policy)))
            assert trace.round_trips() == 1, " ".join(d + ":" + k for d, k in trace.messages)
            settled = outcome[0]
            # The connection the re-check used is back in transaction mode.
            assert driver is not None and driver.autocommit is False
        assert settled.decisions == [] and not settled.contended
        reads = [sql for sql in sent.sent if "FROM agent_states" in sql]
        assert len(reads) == 1  # the candidate query, once
        assert "routing_settling" not in s.info or not s.info["routing_settling"]
        s.rollback()
    with pg_db.session() as s:
        assert s.connection().connection.driver_connection.autocommit is False  # type: ignore[union-attr]
        assert s.scalar(select(RoutingItem.state).where(
            RoutingItem.id == item_id)) == ItemState.WAITING


def test_a_new_item_and_its_skills_are_one_insert_and_loaded_as_written(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, _agents, customers = build_center(pg_db, policy, 1, "offline")
    now = utcnow()
    with pg_db.session() as s:
        with Statements(pg_db) as sent:
            queued = engine.enqueue_item(
                s, kind="call", channel="phone", queue_id=queue_ids[1], now=now, policy=policy,
                customer_id=customers[0], skills={"billing": 3, "french": 2},
                external_ref="call-1", due_at=now + dt.timedelta(hours=1))
            item = queued.item
            seen = {c.key: getattr(item, c.key) for c in RoutingItem.__table__.columns}
            needs = sorted((k.skill, k.min_level) for k in item.skills)
        inserts = [sql for sql in sent.sent if "INSERT INTO routing_item" in sql]
        assert len(inserts) == 1 and "routing_item_skills" in inserts[0]
        assert not any("FROM routing_items" in sql and "routing_items.id =" in sql
                       for sql in sent.sent)  # no refresh of the new row
        assert not s.new and not s.dirty
        assert needs == [("billing", 3), ("french", 2)]
        s.commit()
    with pg_db.session() as s:
        stored = s.get(RoutingItem, seen["id"])
        assert stored is not None
        assert {c.key: getattr(stored, c.key) for c in RoutingItem.__table__.columns} == seen
        assert sorted((k.skill, k.min_level) for k in stored.skills) == needs
        assert stored.offer_count == 0 and stored.state == ItemState.WAITING


def test_an_arrival_reads_its_first_candidates_in_the_statement_that_inserts_it(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 6, "available")
    rng = random.Random(11)
    now = utcnow()
    outcomes = set()
    for round_ in range(30):
        now += dt.timedelta(seconds=1)
        kind = rng.choice(["ticket", "chat", "call"])
        queue_id = rng.choice(queue_ids)
        with pg_db.session() as s:
            with Statements(pg_db) as sent:
                queued = engine.enqueue_item(
                    s, kind=kind, channel={"ticket": "email", "chat": "chat",
                                           "call": "voice"}[kind],
                    queue_id=queue_id, now=now, policy=policy,
                    customer_id=rng.choice(customers))
            inserts = [sql for sql in sent.sent if "INSERT INTO routing_item" in sql]
            assert len(inserts) == 1 and "FROM agent_states" in inserts[0]
            # No candidate query of its own before the first agent is locked.
            before_lock = sent.sent[:next((i for i, sql in enumerate(sent.sent)
                                           if "FOR UPDATE" in sql), len(sent.sent))]
            assert not [sql for sql in before_lock
                        if sql.startswith("SELECT agent_states.user_id FROM agent_states JOIN "
                                          "queue_members")], round_
            # What matching decided is what a fresh, separate candidate query allows.
            for decision in queued.match.decisions:
                assert decision.agent_id in agent_ids
            s.commit()
        with pg_db.session() as s:
            item = s.get(RoutingItem, queued.item.id)
            assert item is not None
            if item.state == ItemState.WAITING:
                # Nobody was free for it: a separate query agrees.
                from contactcenter.routing.store import candidate_agents, item_snapshot

                snapshot = item_snapshot(s, item, policy, now)
                assert candidate_agents(s, snapshot, policy, now,
                                        policy.rules_for(snapshot.queue_slug).ranking) == []
            else:
                assert item.state == ItemState.OFFERED and item.agent_id in agent_ids
            offers = s.scalars(select(Offer).where(Offer.item_id == item.id)).all()
            assert len(offers) == (0 if item.state == ItemState.WAITING else 1)
            outcomes.add(item.state)
    assert outcomes == {ItemState.WAITING, ItemState.OFFERED}  # both ways were taken


def _offered_tickets(db: Database, policy: Any, queue_id: int, customers: list[int],
                     now: dt.datetime) -> list[engine.Decision]:
    """Queue a ticket for each customer (committed); return the offers made for them."""
    decisions: list[engine.Decision] = []
    with db.session() as s:
        for customer_id in customers:
            decisions += engine.enqueue_item(s, kind="ticket", channel="email",
                                             queue_id=queue_id, now=now, policy=policy,
                                             customer_id=customer_id).match.decisions
        s.commit()
    assert all(d.offer_id is not None for d in decisions)
    return decisions


def test_accepting_an_offer_is_one_locking_read_and_one_write(pg_db: Database) -> None:
    from contactcenter.routing.errors import InvalidStateError, OfferNotFoundError

    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 2, "available")
    now = utcnow()
    decisions = _offered_tickets(pg_db, policy, queue_ids[0], customers[:2], now)
    assert len(decisions) == 2
    offer = decisions[0]
    other_agent = next(a for a in agent_ids if a != offer.agent_id)
    later = now + dt.timedelta(seconds=3)
    with pg_db.session() as s:
        with pytest.raises(OfferNotFoundError):
            engine.accept_offer(s, offer.offer_id, other_agent, later, policy)  # type: ignore[arg-type]
        s.rollback()
        with pytest.raises(InvalidStateError):  # too late
            engine.accept_offer(s, offer.offer_id, offer.agent_id,  # type: ignore[arg-type]
                                offer.expires_at, policy)  # type: ignore[arg-type]
        s.rollback()
        with Statements(pg_db) as sent:
            item = engine.accept_offer(s, offer.offer_id, offer.agent_id,  # type: ignore[arg-type]
                                       later, policy)
            s.flush()
        locks = [sql for sql in sent.sent if "FOR UPDATE" in sql]
        assert len(locks) == 1 and "routing_offers" in locks[0] and "agent_states" in locks[0]
        assert locks[0].rstrip().endswith("FOR UPDATE OF routing_items, routing_offers, "
                                          "agent_states"), locks[0]
        writes = [sql for sql in sent.sent if not sql.startswith("SELECT")]
        assert len(writes) == 1 and writes[0].startswith("WITH accepted_offer"), writes
        assert len(sent.sent) == 2, sent.sent
        assert (item.state, item.agent_id, item.answered_at, item.offer_expires_at) == (
            ItemState.ASSIGNED, offer.agent_id, later, None)
        assert not s.dirty
        s.commit()
    with pg_db.session() as s:
        stored = s.get(RoutingItem, offer.item_id)
        row = s.get(Offer, offer.offer_id)
        assert stored is not None and row is not None
        assert (stored.state, stored.agent_id, stored.answered_at, stored.wait_seconds,
                stored.offer_expires_at) == (ItemState.ASSIGNED, offer.agent_id, later, 3, None)
        assert (row.outcome, row.ended_at) == (OfferOutcome.ACCEPTED, later)
        with pytest.raises(InvalidStateError):  # accepted already
            engine.accept_offer(s, offer.offer_id, offer.agent_id, later, policy)  # type: ignore[arg-type]


def test_completing_locks_the_item_and_its_agent_in_one_statement(pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 1, "available")
    now = utcnow()
    (decision,) = _offered_tickets(pg_db, policy, queue_ids[0], customers[:1], now)
    with pg_db.session() as s:
        engine.accept_offer(s, decision.offer_id, agent_ids[0], now, policy)  # type: ignore[arg-type]
        s.commit()
    with pg_db.session() as s:
        with Statements(pg_db) as sent:
            engine.complete_item(s, decision.item_id, now, policy, wrap_up=False)
        locks = [sql for sql in sent.sent if "FOR UPDATE" in sql]
        assert locks and locks[0].rstrip().endswith("FOR UPDATE OF routing_items, agent_states")
        # The agent is not locked (or read) again by matching them afterwards.
        assert not [sql for sql in sent.sent[1:] if "FROM agent_states" in sql
                    and "FOR UPDATE" in sql], sent.sent
        s.commit()


def test_an_agent_found_free_after_the_commit_is_matched_without_asking_again(
        pg_db: Database) -> None:
    policy = parse_policy({}, Settings())
    queue_ids, agent_ids, customers = build_center(pg_db, policy, 1, "offline")
    now = utcnow()
    with pg_db.session() as s:
        queued = _waiting_chat(s, policy, queue_ids[0], customers[0], now)
        # The agent comes back meanwhile, and cannot see the item not yet committed.
        with pg_db.session() as other:
            came = engine.set_presence(other, agent_ids[0], "available", now, policy)
            came.merge(engine.commit_and_settle(other, now, policy))
            assert came.decisions == []
        with Statements(pg_db) as sent:
            settled = engine.commit_and_settle(s, now, policy)
        assert [d.item_id for d in settled.decisions] == [queued.item.id]
        candidates = [sql for sql in sent.sent if sql.startswith(
            "SELECT agent_states.user_id FROM agent_states JOIN queue_members")]
        # The read that travelled with the COMMIT, then matching's own two (its unlocked
        # check before locking the item, and its candidates); not the old re-check again.
        assert len(candidates) == 3, [sql[:70] for sql in sent.sent]
