"""PostgreSQL through psycopg 3: three round trips fewer per short transaction.

``make_engine`` installs these on psycopg engines: a checkout pings only a connection
that sat idle (``ping_if_idle``), BEGIN travels with a transaction's first statement,
and the rows ``insert_with_commit`` holds travel with its COMMIT
(``pipeline_begin_and_commit``), one pipeline each.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

IDLE_BEFORE_PING = 0.1
"""Seconds a pooled connection may have sat checked in before a checkout pings it.

A restart of the server takes longer than this, so a connection that was fine this
recently and has died since is one whose first statement would have failed anyway.
"""

MOST_ROWS_WITH_COMMIT = 16
"""Past this many rows ``insert_with_commit`` leaves them to one multi-row INSERT."""

GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

# Keys of a pooled connection's ``info``: what the transaction on it leaves for its
# BEGIN, its COMMIT and after its COMMIT; and, on the connection record, when it was
# last checked in (``time.monotonic()``).
_AT_BEGIN = "contactcenter.at_begin"
_AT_COMMIT = "contactcenter.at_commit"
_AFTER_COMMIT = "contactcenter.after_commit"
_CHECKED_IN_AT = "contactcenter.checked_in_at"
_PIPELINED: weakref.WeakSet[Dialect] = weakref.WeakSet()


def note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection checked in more than ``IDLE_BEFORE_PING`` ago (pool ``checkout``).

    SQLAlchemy's pessimistic-disconnect recipe: a ``DisconnectionError`` makes the pool
    replace the connection and check out again. The ping is an empty query (the simple
    protocol, nothing to parse or plan), which opens no transaction. A fresh connection
    (never checked in) is not pinged, as the pool's own pre-ping does not ping it.
    """
    checked_in = record.info.pop(_CHECKED_IN_AT, None)
    if checked_in is None or time.monotonic() - checked_in <= IDLE_BEFORE_PING:
        return
    from psycopg import pq

    pgconn = dbapi_connection.pgconn
    if pgconn.status == pq.ConnStatus.OK:
        answer = pgconn.exec_(b"")
        if (answer.status == pq.ExecStatus.EMPTY_QUERY
                and pgconn.transaction_status == pq.TransactionStatus.IDLE):
            return
    raise DisconnectionError("a pooled connection sat idle and no longer answers")


def _begin_command(driver: Any) -> str:
    """Return the BEGIN psycopg would send, with the connection's transaction characteristics."""
    from psycopg import IsolationLevel

    parts = ["BEGIN"]
    if driver.isolation_level is not None:
        level = IsolationLevel(driver.isolation_level).name.replace("_", " ")
        parts.append(f"ISOLATION LEVEL {level}")
    if driver.read_only is not None:
        parts.append("READ ONLY" if driver.read_only else "READ WRITE")
    if driver.deferrable is not None:
        parts.append("DEFERRABLE" if driver.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def plan_generically(session: Session) -> bool:
    """Have the transaction the session is about to begin plan prepared statements once.

    PostgreSQL plans a prepared statement for its values (a custom plan) until a plan
    made without them looks no dearer; for some statements it never does, and they are
    planned anew at every execution, which can cost more than running them. Routing's
    statements are index descents whose plan does not depend on the values, so its
    transactions ask for generic plans: ``SET LOCAL plan_cache_mode`` is sent in the
    pipeline that carries BEGIN (no round trip of its own) and ends with the transaction.
    Does nothing (returns False) where no such pipeline is used or a transaction is
    already open on the connection.
    """
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect not in _PIPELINED:
        return False
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    from psycopg import pq

    if driver.autocommit or driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    connection.info[_AT_BEGIN] = GENERIC_PLANS
    return True


def _info_of(connection: Any) -> dict[str, Any]:
    """A connection's ``info`` (SQLAlchemy's or the pool's proxy); empty where it has none."""
    try:
        info: dict[str, Any] = connection.info
    except NotImplementedError:  # the ad-hoc proxy of the first connect has none
        return {}
    return info


def _take_at_begin(context: Any) -> str | None:
    if context is None:
        return None
    taken: str | None = _info_of(context.root_connection).pop(_AT_BEGIN, None)
    return taken


def _take_at_commit(dbapi_connection: Any) -> tuple[list[_DeferredInsert], list[AfterCommit]]:
    """Take what the ending transaction left on its connection: inserts and reads.

    A setting left for a BEGIN that never came is dropped too, not left to the next.
    """
    if not isinstance(dbapi_connection, PoolProxiedConnection):
        return [], []
    info = _info_of(dbapi_connection)
    info.pop(_AT_BEGIN, None)
    return list(info.pop(_AT_COMMIT, {}).values()), info.pop(_AFTER_COMMIT, [])


@contextmanager
def _no_implicit_begin(driver: Any) -> Iterator[None]:
    """Keep psycopg from sending a BEGIN of its own for what the block executes.

    psycopg's private autocommit flag: its setter refuses inside a pipeline. Should an
    upgrade change it, psycopg sends its BEGIN after all, which costs a round trip.
    """
    flag = driver._autocommit
    driver._autocommit = True
    try:
        yield
    finally:
        driver._autocommit = flag


@contextmanager
def _one_round_trip(driver: Any, at_begin: str | None = None) -> Iterator[None]:
    """Send what the block executes in one pipeline, preceded by BEGIN when none is open.

    psycopg would open the transaction itself, but follows its implicit BEGIN with a Sync
    and waits for it even in pipeline mode (psycopg/psycopg#401: otherwise a statement
    fetched early could make it send a second BEGIN), which is the round trip saved here.
    So the BEGIN is sent as the block's first statement, with psycopg kept from adding
    its own (``_no_implicit_begin``). The block runs one Sync: one round trip in all.
    ``at_begin`` (a ``SET LOCAL``) follows the BEGIN it sends.
    """
    from psycopg import pq

    begin = not driver.autocommit and driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
    with driver.pipeline():
        if not begin:
            yield
            return
        with _no_implicit_begin(driver):
            driver.cursor().execute(_begin_command(driver))
            if at_begin is not None:
                driver.cursor().execute(at_begin)
            yield


def pipeline_begin_and_commit(engine: Engine) -> None:
    """Make BEGIN travel with a transaction's first statement, and inserts with its COMMIT.

    The first statement goes through the dialect's ``do_execute`` events, which run where
    SQLAlchemy calls the driver, inside its error handling: errors are wrapped as usual
    and disconnects detected. SQLAlchemy has no such event for the commit, so this
    engine's dialect gets its own ``do_commit`` (called by ``Connection._commit_impl`` in
    the same error handling; an engine ``commit`` listener runs outside it), which sends
    the inserts ``insert_with_commit`` left, then COMMIT, in one pipeline; and its own
    ``do_rollback``, which drops them.
    """
    import psycopg

    idle = psycopg.pq.TransactionStatus.IDLE

    def execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        driver = cursor.connection
        if (driver.autocommit or driver.pgconn.transaction_status != idle
                or isinstance(cursor, psycopg.ServerCursor) or _several_statements(statement)):
            return False
        with _one_round_trip(driver, _take_at_begin(context)):
            cursor.execute(statement, parameters)
        return True

    def execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        return execute(cursor, statement, None, context)

    def executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        # psycopg runs an executemany in a pipeline already, but syncs its BEGIN first.
        driver = cursor.connection
        if driver.autocommit or driver.pgconn.transaction_status != idle:
            return False
        with _one_round_trip(driver, _take_at_begin(context)):
            cursor.executemany(statement, parameters)
        return True

    event.listen(engine, "do_execute", execute)
    event.listen(engine, "do_execute_no_params", execute_no_params)
    event.listen(engine, "do_executemany", executemany)

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        deferred, after = _take_at_commit(dbapi_connection)
        if not deferred and not after:
            commit(dbapi_connection)
            return
        driver = dbapi_connection.driver_connection
        autocommit = driver.autocommit  # (marked so inside the block when it sends BEGIN)
        sent = []
        committed = None
        try:
            with _one_round_trip(driver):
                for insert in deferred:
                    sent.append((insert, insert.send(driver)))
                if not autocommit:
                    committed = driver.cursor()
                    committed.execute("COMMIT")
                for query in after:
                    query.send(driver)
        except psycopg.Error:
            # A query after the COMMIT failed once the COMMIT had succeeded: the commit
            # stands (its callers learn nothing from the query, and ask again).
            if not after or committed is None or committed.statusmessage != "COMMIT":
                raise
            for query in after:
                query.rows = None
        for insert, cursors in sent:
            insert.received(cursors)
        for query in after:
            query.received()

    def do_rollback(dbapi_connection: Any) -> None:
        _take_at_commit(dbapi_connection)
        rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    _PIPELINED.add(dialect)


def _several_statements(statement: str) -> bool:
    # A pipeline uses the extended protocol, one statement per message; a string of
    # several (possible without parameters) goes the usual way. A semicolon in a literal
    # only costs the saving.
    return ";" in statement.rstrip().rstrip(";")


@dataclass
class AfterCommit:
    """A read sent in the pipeline that commits, just after the COMMIT, outside a transaction.

    ``rows`` holds its rows once the session has committed; None until then, and when the
    commit failed or the read did (the commit stands then: read again).
    """

    connection: Connection
    statement: str
    parameters: dict[str, Any]
    rows: list[tuple[Any, ...]] | None = None
    _cursor: Any = None

    def send(self, driver: Any) -> None:
        """Queue the read after the COMMIT; psycopg adds no BEGIN before it (autocommit)."""
        for listener in self.connection.dispatch.before_cursor_execute:
            self.statement, self.parameters = listener(
                self.connection, None, self.statement, self.parameters, None, False)
        self._cursor = driver.cursor()
        with _no_implicit_begin(driver):
            self._cursor.execute(self.statement, self.parameters)

    def received(self) -> None:
        """Keep the rows the read returned (after the pipeline synced)."""
        cursor, self._cursor = self._cursor, None
        if cursor is None or cursor.pgresult is None or cursor.description is None:
            self.rows = None
            return
        self.rows = [tuple(row) for row in cursor.fetchall()]
        self.connection.dispatch.after_cursor_execute(
            self.connection, cursor, self.statement, self.parameters, None, False)


def query_after_commit(session: Session, statement: Select[Any], parameters: dict[str, Any]
                       ) -> AfterCommit | None:
    """Send a read in the pipeline that commits the session, right after its COMMIT.

    The read runs outside any transaction, so it sees what every transaction committed
    by then, this one included: what a read of its own after the commit would see,
    without the round trip. Its ``rows`` are there once ``session.commit()`` returns.
    None (nothing queued) where that is not possible: no such pipeline, a two-phase
    session, a connection in autocommit mode, or a statement whose SQL SQLAlchemy
    completes at execution time (expanding ``IN`` lists).
    """
    bind = session.get_bind(clause=statement)
    if not isinstance(bind, Engine) or bind.dialect not in _PIPELINED or session.twophase:
        return None
    connection = session.connection(bind_arguments={"clause": statement})
    if connection.connection.driver_connection.autocommit:  # type: ignore[union-attr]
        return None
    compiled = _compiled(connection.dialect, statement, ())
    if compiled is None:
        return None
    query = AfterCommit(connection, compiled[0].string, _bound(compiled, parameters))
    connection.info.setdefault(_AFTER_COMMIT, []).append(query)
    return query


@dataclass
class _DeferredInsert:
    """One INSERT ... RETURNING per row, to be sent in the pipeline that commits."""

    connection: Connection
    statement: str
    rows: list[dict[str, Any]]
    returned: Callable[[list[Any]], None]

    def send(self, driver: Any) -> list[Any]:
        """Queue one execution per row (each row on its own cursor, to keep its result).

        The engine's statement listeners see it as one executemany, as they did when it
        was one; their context is None, as SQLAlchemy documents for raw executions.
        """
        cursors = [driver.cursor() for _ in self.rows]
        statement, rows = self.statement, self.rows
        for listener in self.connection.dispatch.before_cursor_execute:
            statement, rows = listener(self.connection, cursors[0] if cursors else None,
                                       statement, rows, None, True)
        for cursor, row in zip(cursors, rows, strict=True):
            cursor.execute(statement, row)
        self.statement, self.rows = statement, rows
        return cursors

    def received(self, cursors: list[Any]) -> None:
        """Hand the returned values (first column, row order) over once committed."""
        values = []
        for cursor in cursors:
            found = cursor.fetchone()
            if found is None:
                raise RuntimeError("an insert sent with the commit returned no row")
            values.append(found[0])
        self.returned(values)
        self.connection.dispatch.after_cursor_execute(
            self.connection, cursors[0] if cursors else None, self.statement, self.rows, None,
            True)


def insert_with_commit(session: Session, statement: Insert, rows: Sequence[dict[str, Any]],
                       returned: Callable[[list[Any]], None]) -> bool:
    """Send ``statement`` once per row in the pipeline that commits the session (psycopg).

    ``statement`` is an ``insert(table).returning(column)``; ``returned`` gets the
    returned values in row order once COMMIT has succeeded, before the session's
    ``after_commit`` hooks. A failing insert fails the commit, and nothing is committed.
    Called again before that commit (a retry), it replaces what it queued; a rollback
    drops it. Returns False, queuing nothing, for more than ``MOST_ROWS_WITH_COMMIT``
    rows (one multi-row INSERT costs the server less than as many single ones, and a
    round trip is little beside it), and where this is not possible: another
    driver, a two-phase session, a session bound to a connection (whose commit may not
    be the session's to make), or a connection in autocommit mode.
    """
    bind = session.get_bind(clause=statement)
    if (not isinstance(bind, Engine) or bind.dialect not in _PIPELINED or session.twophase
            or not rows or len(rows) > MOST_ROWS_WITH_COMMIT):
        return False
    connection = session.connection(bind_arguments={"clause": statement})
    if connection.connection.driver_connection.autocommit:  # type: ignore[union-attr]
        return False  # each row would commit alone, where one statement is atomic
    compiled = _compiled(connection.dialect, statement, tuple(rows[0]))
    if compiled is None:
        return False
    connection.info.setdefault(_AT_COMMIT, {})[statement.table] = _DeferredInsert(
        connection, compiled[0].string, [_bound(compiled, row) for row in rows], returned)
    return True


_Compiled = tuple[Any, dict[str, Any]]  # the compiled statement, its bind processors
_COMPILED: weakref.WeakKeyDictionary[Dialect, dict[tuple[Any, tuple[str, ...]],
                                                   _Compiled | None]] = weakref.WeakKeyDictionary()


def _compiled(dialect: Dialect, statement: Insert | Select[Any], keys: tuple[str, ...]
              ) -> _Compiled | None:
    """Compile ``statement`` for ``dialect`` once, with its parameters' type processors.

    ``keys`` are an INSERT's columns. The processors are the ones SQLAlchemy applies
    when it executes the statement (the column types' ``process_bind_param``, JSON
    serialisation, ...). None for a statement SQLAlchemy must complete at each
    execution (expanding parameters).
    """
    known = _COMPILED.setdefault(dialect, {})
    if (statement, keys) not in known:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) or None)
        found: _Compiled | None = None
        if not (compiled.post_compile_params or compiled.literal_execute_params):
            processors: dict[str, Any] = {}
            for name, bound in compiled.binds.items():
                processor = bound.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            found = (compiled, processors)
        known[(statement, keys)] = found
    return known[(statement, keys)]


def _bound(compiled: _Compiled, values: dict[str, Any]) -> dict[str, Any]:
    """The driver's parameters for ``values``, processed as SQLAlchemy would."""
    statement, processors = compiled
    return {name: processors[name](value) if name in processors else value
            for name, value in statement.construct_params(values).items()}
