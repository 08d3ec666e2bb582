"""PostgreSQL through psycopg 3: less work per short transaction.

``make_engine`` installs these on psycopg engines: a checkout pings only a connection
that sat idle (``ping_if_idle``); a transaction that plans generically sends its SET
LOCAL with its BEGIN, one simple query (``plan_generically``); a read queued with
``query_after_commit`` runs right after the COMMIT, before the connection goes back to
the pool (``commit_then_read``); and ``fetch`` sends a compiled statement straight to
the driver.

Nothing here uses psycopg's pipeline mode. On a machine where the server shares the
cores, CPU is what a transaction costs, and a statement sent in a pipeline cost the
client more than a statement and its own round trip (measured on a 2-core machine,
client and server CPU together: BEGIN, SET LOCAL and a statement pipelined, then
COMMIT, 458-491 us; the same in three round trips, 311-325 us).
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

IDLE_BEFORE_PING = 0.1
"""Seconds a pooled connection may have sat checked in before a checkout pings it.

A restart of the server takes longer than this, so a connection that was fine this
recently and has died since is one whose first statement would have failed anyway.
"""

GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

# Keys of a pooled connection's ``info``: the reads its transaction left for after its
# COMMIT; and, on the connection record, when it was last checked in (``time.monotonic()``).
_AFTER_COMMIT = "contactcenter.after_commit"
_CHECKED_IN_AT = "contactcenter.checked_in_at"
_PSYCOPG: weakref.WeakSet[Dialect] = weakref.WeakSet()  # dialects given ``commit_then_read``


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
    """Begin the session's transaction planning prepared statements once.

    PostgreSQL plans a prepared statement for its values (a custom plan) until a plan
    made without them looks no dearer; for some statements it never does, and they are
    planned anew at every execution, which can cost more than running them. Routing's
    statements are index descents whose plan does not depend on the values, so its
    transactions ask for generic plans: BEGIN and ``SET LOCAL plan_cache_mode`` are sent
    now, one simple query (one round trip), and the setting ends with the transaction.
    Does nothing (returns False) on other drivers or when a transaction is already open
    on the connection.
    """
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect not in _PSYCOPG:
        return False
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    if not _opens_transaction(driver):
        return False
    import psycopg

    command = f"{_begin_command(driver)}; {GENERIC_PLANS}"
    cursor = driver.cursor()
    try:
        with _no_implicit_begin(driver):
            cursor.execute(command)  # no parameters: the simple protocol, both at once
    except psycopg.Error as exc:
        connection._handle_dbapi_exception(exc, command, None, cursor, None)
        raise  # (not reached: the call above raises SQLAlchemy's wrapper)
    return True


def _opens_transaction(driver: Any) -> bool:
    """Whether the driver's next statement opens a transaction (psycopg's implicit BEGIN)."""
    from psycopg import pq

    return bool(not driver.autocommit
                and driver.pgconn.transaction_status == pq.TransactionStatus.IDLE)


def _take_after_commit(dbapi_connection: Any) -> list[AfterCommit]:
    """Take the reads the ending transaction left on its connection."""
    if not isinstance(dbapi_connection, PoolProxiedConnection):
        return []
    try:
        info: dict[str, Any] = dbapi_connection.info
    except NotImplementedError:  # the ad-hoc proxy of the first connect has none
        return []
    taken: list[AfterCommit] = info.pop(_AFTER_COMMIT, [])
    return taken


@contextmanager
def _no_implicit_begin(driver: Any) -> Iterator[None]:
    """Keep psycopg from sending a BEGIN of its own for what the block executes.

    psycopg's private autocommit flag (its setter refuses while a transaction is open,
    which is when a read after the COMMIT would need it changed back). Should an upgrade
    change it, psycopg sends its BEGIN after all: one round trip more, and a read after
    the COMMIT would run in a transaction of its own, which ends with the next commit.
    """
    flag = driver._autocommit
    driver._autocommit = True
    try:
        yield
    finally:
        driver._autocommit = flag


def commit_then_read(engine: Engine) -> None:
    """Run the reads ``query_after_commit`` queued right after the COMMIT.

    SQLAlchemy has no event inside its error handling for the commit, so this engine's
    dialect gets its own ``do_commit`` (called by ``Connection._commit_impl`` in that
    handling; an engine ``commit`` listener runs outside it): the COMMIT, then the
    reads; and its own ``do_rollback``, which drops them.
    """
    import psycopg

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        after = _take_after_commit(dbapi_connection)
        commit(dbapi_connection)
        if not after:
            return
        driver = dbapi_connection.driver_connection
        try:
            with _no_implicit_begin(driver):
                for query in after:
                    query.run(driver)
        except psycopg.Error:
            # A read after the COMMIT failed: the commit stands (its callers learn
            # nothing from the read, and ask again).
            for query in after:
                query.rows = None

    def do_rollback(dbapi_connection: Any) -> None:
        _take_after_commit(dbapi_connection)
        rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    _PSYCOPG.add(dialect)


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
    """A read run right after the COMMIT, outside a transaction (``query_after_commit``).

    ``rows`` holds its rows once the session has committed; None until then, and when the
    commit failed or the read did (the commit stands then: read again).
    """

    connection: Connection
    statement: str
    parameters: dict[str, Any]
    rows: list[tuple[Any, ...]] | None = None

    def run(self, driver: Any) -> None:
        """Run the read (the caller keeps psycopg from opening a transaction for it)."""
        self.statement, self.parameters = _before_execute(
            self.connection, None, self.statement, self.parameters, many=False)
        cursor = driver.cursor()
        cursor.execute(self.statement, self.parameters, prepare=True)
        self.rows = ([tuple(row) for row in cursor.fetchall()]
                     if cursor.pgresult is not None and cursor.pgresult.nfields else None)
        self.connection.dispatch.after_cursor_execute(
            self.connection, cursor, self.statement, self.parameters, None, False)


def query_after_commit(session: Session, statement: Select[Any], parameters: dict[str, Any]
                       ) -> AfterCommit | None:
    """Queue a read to run on the session's connection right after its COMMIT.

    The read runs outside any transaction, so it sees what every transaction committed
    by then, this one included, before the connection goes back to the pool. Its
    ``rows`` are there once ``session.commit()`` returns. None (nothing queued) where
    that is not possible: another driver, a two-phase session, a connection in
    autocommit mode, or a statement whose SQL SQLAlchemy completes at execution time
    (expanding ``IN`` lists).
    """
    bind = session.get_bind(clause=statement)
    if not isinstance(bind, Engine) or bind.dialect not in _PSYCOPG or session.twophase:
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
    the reads after a COMMIT. What SQLAlchemy would do around it still happens: the
    session autoflushes first, psycopg sends BEGIN when the transaction has not begun,
    bound values and returned values go through the column types' processors, the
    engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners run, and a
    driver error is raised wrapped as SQLAlchemy wraps it (a disconnect invalidating the
    connection). Elsewhere, and for statements SQLAlchemy completes at each execution,
    this is ``session.execute``.
    """
    connection = session.connection(bind_arguments={"clause": statement})
    dialect = connection.dialect
    compiled = _compiled(dialect, statement, ()) if dialect in _PSYCOPG else None
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

    try:
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
