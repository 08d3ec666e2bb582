"""PostgreSQL through psycopg 3: three round trips fewer per short transaction.

``make_engine`` installs these on psycopg engines: a checkout pings only a connection
that sat idle (``ping_if_idle``), BEGIN travels with a transaction's first statement,
and the rows ``insert_with_commit`` holds travel with its COMMIT
(``pipeline_begin_and_commit``), one pipeline each.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
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


class _Description(Sequence[Any]):
    """A result's ``cursor.description``, its columns built only when looked at.

    psycopg builds a ``Column`` per field at every access; SQLAlchemy asks at every
    execution but, for a statement it compiled (its result layout cached), only
    checks that there is one. Built, the columns are psycopg's own, from the result
    this description was taken from.
    """

    __slots__ = ("_columns", "_cursor", "_result")

    def __init__(self, cursor: Any, result: Any) -> None:
        self._cursor = cursor
        self._result = result
        self._columns: list[Any] | None = None

    def _built(self) -> list[Any]:
        if self._columns is None:
            from types import SimpleNamespace

            from psycopg import Column

            # Column reads these three of its cursor; the result is the one taken then.
            source = SimpleNamespace(pgresult=self._result, adapters=self._cursor.adapters,
                                     _encoding=self._cursor._encoding)
            self._columns = [Column(source, i)  # type: ignore[arg-type]
                             for i in range(self._result.nfields)]
        return self._columns

    def __len__(self) -> int:
        return int(self._result.nfields)

    def __getitem__(self, index: Any) -> Any:
        return self._built()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        return self._built() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._built())


def lazy_description_cursors(dbapi_connection: Any, _record: Any) -> None:
    """Give a new psycopg connection cursors whose ``description`` is ``_Description``."""
    import psycopg

    if dbapi_connection.cursor_factory is psycopg.Cursor:  # (a chosen cursor class stays)
        dbapi_connection.cursor_factory = _lazy_cursor_class()


@functools.cache
def _lazy_cursor_class() -> type:
    """psycopg's ``Cursor`` with a lazily built ``description`` (psycopg imported late)."""
    import psycopg
    from psycopg import pq

    with_rows = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE,
                 getattr(pq.ExecStatus, "TUPLES_CHUNK", pq.ExecStatus.TUPLES_OK))

    class LazyDescriptionCursor(psycopg.Cursor):
        __module__ = __name__

        @property
        def description(self) -> Any:  # a _Description, or None
            result = self.pgresult
            if result and (result.nfields or result.status in with_rows):
                return _Description(self, result)
            return None

    return LazyDescriptionCursor


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
    if not _opens_transaction(connection.connection.driver_connection):
        return False
    connection.info[_AT_BEGIN] = GENERIC_PLANS
    return True


def _opens_transaction(driver: Any) -> bool:
    """Whether the driver's next statement opens a transaction (psycopg's implicit BEGIN)."""
    from psycopg import pq

    return bool(not driver.autocommit
                and driver.pgconn.transaction_status == pq.TransactionStatus.IDLE)


def _info_of(connection: Any) -> dict[str, Any]:
    """A connection's ``info`` (SQLAlchemy's or the pool's proxy); empty where it has none."""
    try:
        info: dict[str, Any] = connection.info
    except NotImplementedError:  # the ad-hoc proxy of the first connect has none
        return {}
    return info


def _take_at_begin(connection: Connection | None) -> str | None:
    """Take what ``plan_generically`` left for the BEGIN about to be sent on ``connection``."""
    if connection is None:
        return None
    taken: str | None = _info_of(connection).pop(_AT_BEGIN, None)
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
    begin = _opens_transaction(driver)
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
    ``do_rollback``, which drops them, and ends with COMMIT a transaction that wrote
    nothing (``_wrote_nothing``).
    """
    import psycopg

    def execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if (not _opens_transaction(cursor.connection)
                or isinstance(cursor, psycopg.ServerCursor) or _several_statements(statement)):
            return False
        with _one_round_trip(cursor.connection, _take_at_begin(_root(context))):
            cursor.execute(statement, parameters)
        return True

    def execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        return execute(cursor, statement, None, context)

    def executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        # psycopg runs an executemany in a pipeline already, but syncs its BEGIN first.
        if not _opens_transaction(cursor.connection):
            return False
        with _one_round_trip(cursor.connection, _take_at_begin(_root(context))):
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
        driver = dbapi_connection.driver_connection
        if _wrote_nothing(driver):
            try:
                driver.commit()  # the same end, and psycopg keeps its prepared statements
                return
            except psycopg.Error:  # the transaction has ended all the same
                pass
        rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    _PIPELINED.add(dialect)


NO_TRANSACTION_ID = "SELECT pg_current_xact_id_if_assigned() IS NULL"


def _wrote_nothing(driver: Any) -> bool:
    """Whether the open transaction can end with COMMIT as well as ROLLBACK, keeping plans.

    psycopg deallocates every prepared statement of a connection at each ROLLBACK (the
    transaction might have dropped what they refer to). A session that only read ends in
    a rollback, so a pooled connection that served one would prepare and plan the routing
    statements again, after a DEALLOCATE ALL round trip. When the connection holds
    prepared statements and the server says the transaction has no transaction id (it
    wrote, locked and created nothing), COMMIT has the rollback's effect: this asks, in
    the round trip the DEALLOCATE ALL would have taken (a transaction that did write, a
    failure's rollback, pays it on top). The application neither sets
    anything at session level nor sends NOTIFY, which a COMMIT would keep and a ROLLBACK
    undo. Whether statements are prepared is psycopg's private ``_prepared._names``:
    should an upgrade change it, every rollback is a ROLLBACK again.
    """
    import psycopg
    from psycopg import pq

    prepared = getattr(getattr(driver, "_prepared", None), "_names", None)
    if (not prepared or driver.autocommit or driver.info.server_version < 130000
            or getattr(driver, "_pipeline", None) is not None
            or driver.pgconn.transaction_status != pq.TransactionStatus.INTRANS):
        return False
    try:
        row = driver.execute(NO_TRANSACTION_ID, prepare=True).fetchone()
    except psycopg.Error:  # the rollback follows, and meets the same trouble if any
        return False
    return bool(row and row[0])


def _root(context: Any) -> Connection | None:
    return None if context is None else context.root_connection


def _several_statements(statement: str) -> bool:
    # A pipeline uses the extended protocol, one statement per message; a string of
    # several (possible without parameters) goes the usual way. A semicolon in a literal
    # only costs the saving.
    return ";" in statement.rstrip().rstrip(";")


def _before_execute(connection: Connection, cursor: Any, statement: str, parameters: Any,
                    *, many: bool) -> tuple[str, Any]:
    """Run the engine's ``before_cursor_execute`` listeners for what goes to psycopg directly.

    Their context is None, as SQLAlchemy documents for raw executions; they may rewrite
    the statement and its parameters. The caller dispatches ``after_cursor_execute``.
    """
    for listener in connection.dispatch.before_cursor_execute:
        statement, parameters = listener(connection, cursor, statement, parameters, None, many)
    return statement, parameters


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
        self.statement, self.parameters = _before_execute(
            self.connection, None, self.statement, self.parameters, many=False)
        self._cursor = driver.cursor()
        with _no_implicit_begin(driver):
            self._cursor.execute(self.statement, self.parameters, prepare=True)

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
        statement, rows = _before_execute(self.connection, cursors[0] if cursors else None,
                                          self.statement, self.rows, many=True)
        for cursor, row in zip(cursors, rows, strict=True):
            cursor.execute(statement, row, prepare=True)
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
MOST_COMPILED = 2048
"""Statements kept compiled per dialect; past it the oldest goes (each is compiled once
when built once, as the callers' statement builders are; one built per call is
compiled per call, as SQLAlchemy's own cache would, and does not grow this one)."""
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
        if len(known) >= MOST_COMPILED:
            del known[next(iter(known))]
        known[(statement, keys)] = found
        return found
    return known[(statement, keys)]


def _bound(compiled: _Compiled, values: dict[str, Any]) -> dict[str, Any]:
    """The driver's parameters for ``values``, processed as SQLAlchemy would."""
    statement, processors = compiled
    return {name: processors[name](value) if name in processors else value
            for name, value in statement.construct_params(values).items()}


def fetch(session: Session, statement: Any, parameters: dict[str, Any]) -> Sequence[Any]:
    """Run a Core statement in the session's transaction; return its rows (tuple-like).

    On a psycopg engine the statement, compiled once, goes straight to the driver's
    cursor: SQLAlchemy's execution machinery costs several times the driver's own
    work for a short statement. It is prepared at its first execution on a connection
    (psycopg would send it to be parsed and planned anew for its first five), as are
    the reads and inserts sent with a COMMIT. What SQLAlchemy would do around it still happens: the
    session autoflushes first, BEGIN (and what ``plan_generically`` left) travels
    with it when the transaction has not begun, bound values and returned values go
    through the column types' processors, the engine's ``before_cursor_execute`` and
    ``after_cursor_execute`` listeners run, and a driver error is raised wrapped as
    SQLAlchemy wraps it (a disconnect invalidating the connection). Elsewhere, and for
    statements SQLAlchemy completes at each execution, this is ``session.execute``.
    """
    connection = session.connection(bind_arguments={"clause": statement})
    dialect = connection.dialect
    compiled = _compiled(dialect, statement, ()) if dialect in _PIPELINED else None
    if compiled is None:
        return session.execute(statement, parameters).all()
    if session.autoflush:
        session.flush()
    sql, bound = _before_execute(
        connection, None, compiled[0].string,
        _bound(compiled, _with_defaults(compiled[0], parameters)), many=False)
    driver: Any = connection.connection.driver_connection
    cursor = driver.cursor()
    import psycopg

    begins = (_one_round_trip(driver, _take_at_begin(connection))
              if _opens_transaction(driver) else nullcontext())
    try:
        with begins:
            cursor.execute(sql, bound, prepare=True)
        rows = cursor.fetchall() if cursor.pgresult is not None and cursor.pgresult.nfields else []
    except psycopg.Error as exc:
        connection._handle_dbapi_exception(exc, sql, bound, cursor, None)
        raise  # (not reached: the call above raises SQLAlchemy's wrapper)
    connection.dispatch.after_cursor_execute(connection, cursor, sql, bound, None, False)
    processors = _result_processors(dialect, compiled[0], cursor) if rows else None
    if processors:
        return [tuple(value if process is None else process(value)
                      for process, value in zip(processors, row, strict=True)) for row in rows]
    return rows


def _with_defaults(compiled: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """Add the Python-side defaults SQLAlchemy computes at execution (``onupdate=utcnow``)."""
    prefetch = compiled.insert_prefetch + compiled.update_prefetch
    if not prefetch:
        return parameters
    values = dict(parameters)
    for column in prefetch:
        if column.key in values:
            continue
        default = column.onupdate if column in compiled.update_prefetch else column.default
        if default is None or not (default.is_scalar or default.is_callable):
            raise ValueError(f"no value for {column} and no Python-side default")
        values[column.key] = default.arg if default.is_scalar else default.arg(None)
    return values


_RESULT_PROCESSORS: weakref.WeakKeyDictionary[Any, list[Any] | None] = (
    weakref.WeakKeyDictionary())


def _result_processors(dialect: Dialect, compiled: Any, cursor: Any) -> list[Any] | None:
    """The result columns' type processors of a compiled statement (None: none needed).

    Some take the type the server returned (PostgreSQL's numeric types), read off the
    statement's first result.
    """
    if compiled not in _RESULT_PROCESSORS:
        result = cursor.pgresult
        found = [column.type._cached_result_processor(dialect, result.ftype(i))
                 for i, column in enumerate(compiled._result_columns)]
        _RESULT_PROCESSORS[compiled] = found if any(p is not None for p in found) else None
    return _RESULT_PROCESSORS[compiled]


@functools.lru_cache(maxsize=64)
def entity_columns(cls: type) -> tuple[Any, ...]:
    """The table columns of a mapped class's column attributes, in mapper order.

    Select these (Core) and hand each row's slice to ``as_loaded``: the objects come
    out as an ORM query with ``populate_existing`` would load them, without the ORM's
    per-execution machinery.
    """
    return tuple(prop.columns[0] for prop in _column_props(cls))


@functools.lru_cache(maxsize=64)
def _column_props(cls: type) -> tuple[Any, ...]:
    from sqlalchemy.orm import ColumnProperty

    mapper = _mapper(cls)
    props = tuple(p for p in mapper.column_attrs if isinstance(p, ColumnProperty)
                  and len(p.columns) == 1 and p.columns[0].table is mapper.local_table)
    if len(props) != len(mapper.column_attrs):
        raise TypeError(f"{cls.__name__} maps attributes that are not its own table's columns")
    return props


def as_loaded(session: Session, classes: Sequence[type], row: Sequence[Any]) -> list[Any]:
    """The objects of ``classes`` whose ``entity_columns`` ``row`` holds, in that order.

    Each is the session's object of that identity, its attributes set to the row's
    values as committed ones (what ``populate_existing`` does, pending changes to
    them discarded), or a new one made persistent as loaded (no SQL: documented use
    of ``make_transient_to_detached``). Relationships load as they would otherwise.
    """
    from sqlalchemy.orm import make_transient_to_detached
    from sqlalchemy.orm.attributes import instance_state

    found = []
    start = 0
    for cls in classes:
        props = _column_props(cls)
        values = row[start:start + len(props)]
        start += len(props)
        existing = session.identity_map.get(
            identity_key(cls, [values[i] for i in _key_positions(cls)]))
        if existing is not None:
            # As the ORM's loader does with populate_existing: the values, then the
            # whole state committed (no history, not dirty, nothing left expired).
            state = instance_state(existing)
            state.dict.update(zip((p.key for p in props), values, strict=True))
            state._commit_all(state.dict, session.identity_map)
            found.append(existing)
            continue
        obj = _mapper(cls).class_manager.new_instance()
        obj.__dict__.update(zip((p.key for p in props), values, strict=True))
        make_transient_to_detached(obj)
        session.add(obj)
        found.append(obj)
    return found


def identity_key(cls: type, primary_key: Sequence[Any]) -> Any:
    """The session identity-map key of ``cls``'s row with this primary key.

    ``Session.identity_key`` inspects the class at every call; this takes its mapper once.
    """
    return _mapper(cls).identity_key_from_primary_key(list(primary_key))


@functools.lru_cache(maxsize=64)
def _mapper(cls: type) -> Any:
    from sqlalchemy import inspect

    return inspect(cls)


@functools.lru_cache(maxsize=64)
def _key_positions(cls: type) -> tuple[int, ...]:
    """Where a class's primary key columns are among its ``entity_columns``."""
    columns = [prop.columns[0] for prop in _column_props(cls)]
    return tuple(columns.index(column) for column in _mapper(cls).primary_key)
