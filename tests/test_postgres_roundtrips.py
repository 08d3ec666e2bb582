"""Round trips per transaction on a real PostgreSQL server, counted in libpq's trace.

A short transaction costs one round trip for its first statement (BEGIN travels with
it) and one for its COMMIT (the event rows travel with it); a checkout pings only a
connection that sat idle. Each test counts the client's waits in the protocol trace
of the one pooled connection (``pool_size=1``): a run of frontend messages followed
by backend messages is one round trip.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import bindparam, event, exc, func, insert, select, text
from sqlalchemy.orm import Session

from contactcenter import db as db_module
from contactcenter import db_postgres
from contactcenter.db import Database
from contactcenter.events import EventLog, record_event
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.postgres


class Trace:
    """The protocol messages of one psycopg connection, from libpq's trace."""

    def __init__(self, driver: Any) -> None:
        self.pgconn = driver.pgconn
        self.messages: list[tuple[str, str]] = []

    def run(self, work: Callable[[], Any]) -> list[tuple[str, str]]:
        """Trace ``work``; return its messages as (``F`` or ``B``, message type)."""
        fd, path = tempfile.mkstemp()
        self.pgconn.trace(fd)
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            work()
        finally:
            self.pgconn.untrace()
            os.close(fd)
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
            os.unlink(path)
        self.messages = [(line.split("\t")[0], line.split("\t")[2].split(" ")[0])
                         for line in lines if line[:2] in ("F\t", "B\t")]
        return self.messages

    def round_trips(self) -> int:
        """How many times the client waited for the server."""
        trips, previous = 0, ""
        for direction, _kind in self.messages:
            if direction == "B" and previous == "F":
                trips += 1
            previous = direction
        return trips

    def sent(self, kind: str) -> int:
        return sum(1 for direction, k in self.messages if direction == "F" and k == kind)


@pytest.fixture
def one(pg_db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A second handle on the migrated test database with one pooled connection.

    Its checkouts are not pinged (a stall of this machine between two transactions
    would otherwise add one to the count), unless a test sets the delay again.
    """
    monkeypatch.setattr(db_postgres, "IDLE_BEFORE_PING", 3600.0)
    database = Database(pg_url, pool_size=1, max_overflow=0)
    yield database
    database.dispose()


def driver_of(database: Database) -> Any:
    with database.engine.connect() as conn:
        return conn.connection.driver_connection


def backend_pid(database: Database) -> int:
    with database.session() as s:
        return int(s.scalar(text("SELECT pg_backend_pid()")) or 0)


def terminate(pid: int) -> None:
    """Kill a backend as an administrator would, and wait until it is gone."""
    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (pid,)).fetchone() == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


def small_transaction(database: Database, events: int = 1) -> list[EventLog]:
    """BEGIN; one SELECT by primary key; record events; COMMIT (through ``session()``)."""
    with database.session() as s:
        s.get(EventLog, 1)
        rows = [record_event(s, "ticket.updated", {"n": i}, ["agent:1"]) for i in range(events)]
        s.commit()
    return rows


def count_events(database: Database) -> int:
    with database.session() as s:
        return int(s.scalar(select(func.count()).select_from(EventLog)) or 0)


def test_a_small_transaction_costs_two_round_trips(one: Database) -> None:
    published: list[list[int]] = []
    one.on_commit(lambda rows: published.append([r.id for r in rows]))
    small_transaction(one)  # connects
    trace = Trace(driver_of(one))
    trace.run(lambda: small_transaction(one, events=3))
    # BEGIN and the SELECT, then the three INSERTs and COMMIT: no ping, no lone BEGIN.
    assert trace.round_trips() == 2, trace.messages
    assert trace.sent("Query") == 0  # no ping (an empty simple query)
    assert trace.sent("Sync") == 2
    assert [kind for d, kind in trace.messages if d == "B"].count("ReadyForQuery") == 2
    first, second = published
    assert len(second) == 3 and second == sorted(second) and second[0] > first[0]


def test_a_transaction_of_events_only_commits_them_in_one_round_trip(one: Database) -> None:
    small_transaction(one)
    published: list[list[int]] = []
    one.on_commit(lambda rows: published.append([r.id for r in rows]))
    trace = Trace(driver_of(one))

    def only_events() -> None:
        with one.session() as s:
            record_event(s, "ticket.created", {}, ["agent:2"])
            record_event(s, "ticket.assigned", {}, ["agent:2"])
            s.commit()

    trace.run(only_events)
    assert trace.round_trips() == 1, trace.messages
    assert published == [[2, 3]]
    with one.session() as s:
        assert s.scalars(select(EventLog.type).order_by(EventLog.id)).all() == [
            "ticket.updated", "ticket.created", "ticket.assigned"]


def test_a_first_statement_run_for_many_rows_takes_begin_along_too(one: Database) -> None:
    small_transaction(one, events=3)
    trace = Trace(driver_of(one))

    def rename() -> None:
        with one.session() as s:
            s.execute(text("UPDATE event_log SET rooms = :rooms WHERE id = :id"),
                      [{"rooms": "queue:1", "id": 1}, {"rooms": "queue:2", "id": 3}])
            s.commit()

    trace.run(rename)
    assert trace.round_trips() == 2, trace.messages  # BEGIN with both UPDATEs; COMMIT
    with one.session() as s:
        assert s.scalars(select(EventLog.rooms).order_by(EventLog.id)).all() == [
            "queue:1", "agent:1 supervisors", "queue:2"]


def test_events_get_their_ids_in_order_and_are_published_after_commit(
        one: Database, pg_url: str) -> None:
    seen: list[tuple[list[int], list[int]]] = []

    def on_publish(rows: list[Any]) -> None:
        # Another connection already reads them: the hook runs after COMMIT.
        other = Database(pg_url, pool_size=1)
        try:
            with other.session() as s:
                stored = s.scalars(select(EventLog.id).order_by(EventLog.id)).all()
        finally:
            other.dispose()
        seen.append(([r.id for r in rows], list(stored)))

    one.on_commit(on_publish)
    with one.session() as s:
        rows = [record_event(s, "ticket.updated", {"n": i}, ["agent:1"]) for i in range(5)]
        assert all(r.id is None for r in rows)
        s.commit()
    ids = [r.id for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert seen == [(ids, ids)]
    with one.session() as s:
        payloads = s.execute(select(EventLog.id, EventLog.payload).order_by(EventLog.id)).all()
    assert [(i, p["n"]) for i, p in payloads] == list(zip(ids, range(5), strict=True))
    # Past MOST_ROWS_WITH_COMMIT they go in one multi-row INSERT before the COMMIT.
    many = db_postgres.MOST_ROWS_WITH_COMMIT + 3
    trace = Trace(driver_of(one))

    def record_many() -> None:
        with one.session() as s:
            rows[:] = [record_event(s, "ticket.updated", {"n": i}, ["agent:1"])
                       for i in range(many)]
            s.commit()

    trace.run(record_many)
    ids = [r.id for r in rows]
    assert len(ids) == many and ids == sorted(ids) and ids[0] > seen[0][0][-1]
    assert seen[-1][0] == ids
    # BEGIN with the one INSERT (all rows, one statement), then the COMMIT.
    assert trace.sent("Execute") == 2 and trace.sent("Query") == 1, trace.messages
    assert trace.round_trips() == 2, trace.messages


def test_a_failing_insert_at_commit_commits_nothing(one: Database) -> None:
    published: list[Any] = []
    one.on_commit(published.append)
    small_transaction(one)
    session = one.session()
    with session:
        session.execute(insert(EventLog).values(  # an ordinary write
            type="ticket.created", rooms="x", payload={}, created_at=db_module.utcnow()))
        record_event(session, "ticket.updated", {}, ["agent:1"])
        # 1000 characters is the column's limit: the server refuses the second row.
        record_event(session, "ticket.updated", {}, [f"agent:{i}" for i in range(200)])
        with pytest.raises(exc.DBAPIError) as raised:
            session.commit()
        assert isinstance(raised.value.orig, psycopg.errors.StringDataRightTruncation)
        session.rollback()
        assert count_events(one) == 1  # neither the ordinary write nor the events
        assert len(published) == 1
        # The connection is fine, and nothing of the failed commit is sent again.
        record_event(session, "ticket.assigned", {}, ["agent:1"])
        session.commit()
    assert count_events(one) == 2
    assert [r.type for r in published[-1]] == ["ticket.assigned"]


def test_a_failed_flush_at_commit_leaves_no_rows_for_the_next_commit(one: Database) -> None:
    small_transaction(one)
    with one.session() as s:
        record_event(s, "ticket.created", {}, ["agent:1"])
        s.add(EventLog(id=1, type="ticket.created", rooms="", payload={},
                       created_at=db_module.utcnow()))  # a duplicate key, flushed at commit
        with pytest.raises(exc.IntegrityError):
            s.commit()
        s.rollback()
        record_event(s, "ticket.assigned", {}, ["agent:1"])
        s.commit()
    with one.session() as s:
        assert s.scalars(select(EventLog.type).order_by(EventLog.id)).all() == [
            "ticket.updated", "ticket.assigned"]


def test_savepoints_keep_and_drop_their_events_as_before(one: Database) -> None:
    published: list[list[str]] = []
    one.on_commit(lambda rows: published.append([r.type for r in rows]))
    with one.session() as s:
        record_event(s, "ticket.created", {}, ["agent:1"])
        with s.begin_nested():
            record_event(s, "ticket.assigned", {}, ["agent:1"])
        nested = s.begin_nested()
        mark = len(s.info["pending_events"])
        record_event(s, "ticket.updated", {}, ["agent:1"])
        nested.rollback()
        del s.info["pending_events"][mark:]  # what the callers of a savepoint do
        assert published == []  # a released savepoint publishes nothing
        s.commit()
    assert published == [["ticket.created", "ticket.assigned"]]
    with one.session() as s:
        assert s.scalars(select(EventLog.type).order_by(EventLog.id)).all() == [
            "ticket.created", "ticket.assigned"]
        record_event(s, "ticket.updated", {}, ["agent:1"])
        s.rollback()
    assert count_events(one) == 2 and len(published) == 1


def test_a_session_over_two_engines_commits_both(one: Database, pg_url: str) -> None:
    other = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        with other.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS side (n int)"))
        side = text("INSERT INTO side VALUES (1)")
        with Session(binds={EventLog: one.engine}, bind=other.engine) as s:
            s.execute(side)
            rows = [record_event(s, "ticket.updated", {}, ["agent:1"]) for _ in range(2)]
            s.commit()
        assert [r.id for r in rows] == [1, 2]
        with other.engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM side")) == 1
            conn.execute(text("DROP TABLE side"))
            conn.commit()
        assert count_events(one) == 2
    finally:
        other.dispose()


def test_statement_listeners_still_see_the_event_insert(one: Database) -> None:
    small_transaction(one)
    seen: list[tuple[str, bool, int]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               many: bool) -> None:
        seen.append((statement.split()[0], many, len(parameters) if many else 1))

    event.listen(one.engine, "before_cursor_execute", listen)
    try:
        small_transaction(one, events=2)
    finally:
        event.remove(one.engine, "before_cursor_execute", listen)
    assert seen == [("SELECT", False, 1), ("INSERT", True, 2)]


def test_a_connection_that_sat_idle_is_pinged_and_replaced_when_killed(
        one: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_postgres, "IDLE_BEFORE_PING", 0.05)
    pid = backend_pid(one)
    trace = Trace(driver_of(one))
    trace.run(lambda: small_transaction(one))
    assert trace.sent("Query") == 0  # checked in a moment ago: not pinged
    time.sleep(0.1)
    trace.run(lambda: small_transaction(one))
    assert trace.sent("Query") == 1 and trace.round_trips() == 3  # the ping, then as usual
    terminate(pid)
    time.sleep(0.1)
    small_transaction(one)  # the ping fails, the pool connects again, nothing fails
    assert backend_pid(one) != pid
    assert count_events(one) == 3


def test_a_connection_killed_just_after_checkin_fails_its_first_statement_as_before(
        one: Database) -> None:
    pid = backend_pid(one)
    terminate(pid)
    with one.session() as s, pytest.raises(exc.OperationalError) as raised:
        s.get(EventLog, 1)  # BEGIN and this SELECT, pipelined
    assert raised.value.connection_invalidated
    assert backend_pid(one) != pid  # replaced


def test_pre_ping_stays_the_callers_choice(pg_url: str) -> None:
    chosen = Database(pg_url, pool_pre_ping=True, pool_size=1)
    default = Database(pg_url, pool_size=1)
    try:
        assert chosen.engine.pool._pre_ping is True
        assert default.engine.pool._pre_ping is False
        assert event.contains(default.engine, "checkout", db_postgres.ping_if_idle)
        assert not event.contains(chosen.engine, "checkout", db_postgres.ping_if_idle)
    finally:
        chosen.dispose()
        default.dispose()


def test_a_transaction_can_ask_for_generic_plans_without_a_round_trip(one: Database) -> None:
    small_transaction(one)  # connects
    trace = Trace(driver_of(one))
    modes: list[str] = []

    def asked() -> None:
        with one.session() as s:
            assert db_postgres.plan_generically(s)
            modes.append(str(s.scalar(text("SHOW plan_cache_mode"))))
            s.get(EventLog, 1)
            # Asked again inside the open transaction: nothing to do.
            assert not db_postgres.plan_generically(s)
            s.commit()

    trace.run(asked)
    # BEGIN, the SET LOCAL and the SHOW in one round trip; the get; the COMMIT.
    assert trace.round_trips() == 3, trace.messages
    assert modes == ["force_generic_plan"]
    with one.session() as s:  # the setting ended with its transaction
        assert s.scalar(text("SHOW plan_cache_mode")) == "auto"
        s.commit()
    with one.session() as s:  # and one asked for but never begun leaves nothing behind
        assert db_postgres.plan_generically(s)
        s.rollback()
        assert s.scalar(text("SHOW plan_cache_mode")) == "auto"


def test_routing_transactions_plan_generically(pg_db: Database) -> None:
    from contactcenter.routing.store import begin_write

    with pg_db.session() as s:
        begin_write(s)
        assert s.scalar(text("SHOW plan_cache_mode")) == "force_generic_plan"
        s.rollback()
        s.scalar(text("SELECT 1"))  # a transaction already open: routing changes nothing
        begin_write(s)
        assert s.scalar(text("SHOW plan_cache_mode")) == "auto"


def test_a_read_sent_after_the_commit_sees_the_commit_without_a_round_trip(
        one: Database) -> None:
    from sqlalchemy import bindparam, literal

    small_transaction(one)  # connects
    before = count_events(one)
    count = select(func.count()).select_from(EventLog).where(
        EventLog.id > bindparam("after"))
    trace = Trace(driver_of(one))
    read: list[Any] = []

    def work() -> None:
        with one.session() as s:
            s.get(EventLog, 1)
            record_event(s, "ticket.updated", {"n": 1}, ["agent:1"])
            queued = db_postgres.query_after_commit(s, count, {"after": 0})
            assert queued is not None and queued.rows is None
            s.commit()
            read.append(queued.rows)
            # The session goes on with a transaction of its own, as before.
            assert s.connection().connection.driver_connection.autocommit is False  # type: ignore[union-attr]
            s.rollback()

    trace.run(work)
    # BEGIN and the get; the INSERT, COMMIT and the read: two round trips.
    assert trace.round_trips() == 2, trace.messages
    assert read == [[(before + 1,)]]  # it saw this transaction's own committed row
    with one.session() as s:
        # A read that fails after the COMMIT leaves the commit standing, and no rows.
        record_event(s, "ticket.updated", {"n": 2}, ["agent:1"])
        failing = db_postgres.query_after_commit(
            s, select(literal(1) / bindparam("zero")), {"zero": 0})
        assert failing is not None
        s.commit()
        assert failing.rows is None
    assert count_events(one) == before + 2
    with one.session() as s:
        # A commit that fails leaves the read unread.
        s.add(EventLog(id=1, type="ticket.created", rooms="x", payload={},
                       created_at=db_module.utcnow()))  # a duplicate key, flushed at commit
        queued = db_postgres.query_after_commit(s, count, {"after": 0})
        with pytest.raises(exc.IntegrityError):
            s.commit()
        assert queued is not None and queued.rows is None
        s.rollback()
    with one.session() as s:  # SQL completed per execution (an expanding IN): not queued
        s.get(EventLog, 1)
        assert db_postgres.query_after_commit(
            s, select(EventLog.id).where(EventLog.id.in_(bindparam("ids", expanding=True))),
            {"ids": [1, 2]}) is None
        s.rollback()


def test_a_first_statement_that_fails_rolls_back_as_before(one: Database) -> None:
    small_transaction(one)  # connects
    before = count_events(one)
    with one.session() as s:
        with pytest.raises(exc.DataError):  # SQLAlchemy's wrapper, as without the pipeline
            s.execute(text("SELECT 1 / 0"))
        driver = s.connection().connection.driver_connection
        assert driver.pgconn.transaction_status == pq.TransactionStatus.INERROR  # type: ignore[union-attr]
        s.rollback()
        assert driver.autocommit is False  # type: ignore[union-attr]
    # The connection goes on: a transaction with its first statement and an event.
    small_transaction(one)
    assert count_events(one) == before + 1
    with one.session() as s:
        with pytest.raises(exc.IntegrityError):  # a failing first write, then the same
            s.execute(insert(EventLog).values(id=1, type="ticket.created", rooms="x",
                                              payload={}, created_at=db_module.utcnow()))
        s.rollback()
    small_transaction(one)
    assert count_events(one) == before + 2


# --- a rollback keeps the connection's prepared statements when nothing was written ---

BY_ID = select(EventLog.id).where(EventLog.id == bindparam("id"))


def prepared_names(driver: Any) -> set[str]:
    """The statements the server holds prepared for this connection (its own transaction)."""
    rows = driver.execute("SELECT name FROM pg_prepared_statements").fetchall()
    driver.commit()
    return {row[0] for row in rows}


def prime(database: Database) -> tuple[Any, set[str]]:
    """Prepare ``BY_ID`` on the one connection (``fetch`` prepares at first use).

    Returns the connection's driver and the names of its prepared statements: psycopg
    names each anew (``_pg3_N``), so a statement prepared again has another name.
    """
    small_transaction(database)
    with database.session() as s:
        db_postgres.fetch(s, BY_ID, {"id": 1})
        s.commit()
    driver = driver_of(database)
    names = prepared_names(driver)
    assert names
    return driver, names


def test_a_session_that_only_read_keeps_the_prepared_statements(one: Database) -> None:
    driver, prepared = prime(one)
    with one.session() as s:  # reads, then closes: SQLAlchemy rolls the transaction back
        s.get(EventLog, 1)
        s.execute(select(func.count()).select_from(EventLog))
    assert prepared <= prepared_names(driver)


def test_a_session_that_wrote_is_rolled_back(one: Database) -> None:
    driver, prepared = prime(one)
    before = count_events(one)
    with one.session() as s:
        s.execute(insert(EventLog).values(type="ticket.updated", rooms="x", payload={},
                                          created_at=db_module.utcnow()))
        s.rollback()
    assert count_events(one) == before
    # psycopg drops its prepared statements at a real ROLLBACK.
    assert prepared.isdisjoint(prepared_names(driver))


def test_a_session_that_only_locked_is_rolled_back(one: Database) -> None:
    driver, prepared = prime(one)
    with one.session() as s:
        s.execute(select(EventLog.id).where(EventLog.id == 1).with_for_update())
        s.rollback()  # row locks take a transaction id: a real ROLLBACK
    assert prepared.isdisjoint(prepared_names(driver))


def test_rows_queued_for_the_commit_are_dropped_by_a_rollback(one: Database) -> None:
    driver, prepared = prime(one)
    before = count_events(one)
    returned: list[Any] = []
    with one.session() as s:
        s.get(EventLog, 1)
        assert db_postgres.insert_with_commit(
            s, insert(EventLog).returning(EventLog.id),
            [{"type": "ticket.updated", "rooms": "x", "payload": {},
              "created_at": db_module.utcnow()}], returned.extend)
        s.rollback()  # nothing was sent: it ends with COMMIT, without the queued row
    assert count_events(one) == before and returned == []
    assert prepared <= prepared_names(driver)
    small_transaction(one)  # and the next commit does not send it either
    assert count_events(one) == before + 1


def test_a_failed_transaction_with_prepared_statements_rolls_back(one: Database) -> None:
    driver, _prepared = prime(one)
    before = count_events(one)
    with one.session() as s:
        with pytest.raises(exc.DataError):
            s.execute(text("SELECT 1 / 0"))
        s.rollback()
    assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
    small_transaction(one)
    assert count_events(one) == before + 1
