"""Own the engine, the session factory, the one declarative Base and migrations.

SQLite is the embedded default (WAL and foreign keys on every connection);
PostgreSQL is used when ``CONTACTCENTER_DATABASE_URL`` names it. Services take a
``Session`` as a parameter; this module only makes them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from contactcenter.db_postgres import (
    lazy_description_cursors,
    note_checkin,
    ping_if_idle,
    pipeline_begin_and_commit,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> dt.datetime:
    """Return the current instant as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Store aware datetimes as UTC and always load them back aware.

    SQLite has no timezone type, so naive values read back are UTC by contract;
    naive values written are refused, because they hide bugs.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def only_set(column: str) -> dict[str, Any]:
    """An index's keywords to hold only rows where ``column`` is set (PostgreSQL, SQLite).

    A query comparing the column (``=``, ``<=``, ...) still uses it: both databases
    know the comparison is false for NULL.
    """
    where = text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


class Base(DeclarativeBase):
    """The one declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


class TimestampMixin:
    """Add ``created_at`` and ``updated_at`` in UTC."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: Any, _name: str) -> None:
    # pysqlite (legacy transaction control) sends BEGIN only before DML, so a SAVEPOINT
    # issued first would open the transaction itself and its RELEASE would commit
    # everything: a later rollback of the session could not undo the savepoint's work.
    driver = conn.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout.

    PostgreSQL through psycopg saves three round trips per short transaction: a checkout
    pings only a connection that sat idle, BEGIN travels with the first statement and
    ``insert_with_commit`` rows with the COMMIT (``db_postgres``).
    """
    if url.startswith("sqlite"):
        if url in {"sqlite://", "sqlite:///:memory:"}:
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        if not url.endswith(":memory:") and url != "sqlite://":
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    psycopg = make_url(url).get_dialect().driver == "psycopg"
    # psycopg engines ping only connections that sat idle (``db_postgres.ping_if_idle``)
    # unless the caller chose ``pool_pre_ping`` either way; other drivers keep the pre-ping.
    ping_idle = psycopg and "pool_pre_ping" not in kwargs
    kwargs.setdefault("pool_pre_ping", not ping_idle)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if ping_idle:
        event.listen(engine, "checkin", note_checkin)
        event.listen(engine, "checkout", ping_if_idle)
    if psycopg:
        pipeline_begin_and_commit(engine)
        event.listen(engine, "connect", lazy_description_cursors)
    return engine


class Database:
    """An engine with its session factory.

    ``after_commit`` callbacks registered on the factory run once a session's
    transaction has committed: that is where collected domain events are
    published, and nowhere else.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit: list[Callable[[list[Any]], None]] = []
        event.listen(self.sessionmaker, "after_commit", self._run_after_commit)
        event.listen(self.sessionmaker, "after_soft_rollback", self._drop_pending)

    def on_commit(self, callback: Callable[[list[Any]], None]) -> None:
        """Register a callback given the event rows of every committed transaction."""
        self._after_commit.append(callback)

    def _run_after_commit(self, session: Session) -> None:
        # SQLAlchemy also fires after_commit when a SAVEPOINT is released; the outer
        # transaction may still roll back then, so only the outermost commit publishes.
        if session.in_nested_transaction():
            return
        rows = session.info.pop("pending_events", [])
        if not rows:
            return
        for callback in self._after_commit:
            callback(rows)

    @staticmethod
    def _drop_pending(session: Session, previous: Any) -> None:
        # Only the outermost rollback discards the transaction's events; a savepoint
        # rolled back inside it leaves the outer transaction's events standing.
        if previous.nested or previous.parent is not None:
            return
        session.info.pop("pending_events", None)

    def session(self) -> Session:
        """Open a new session."""
        return self.sessionmaker()

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """Open a session, commit on success, roll back on error, always close."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def create_all(self) -> None:
        """Create every table directly (tests); production uses migrations."""
        import_models()
        Base.metadata.create_all(self.engine)

    def revision(self) -> str | None:
        """Return the schema revision stored in the database (None: not migrated yet)."""
        from sqlalchemy import inspect, text

        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        if len(rows) > 1:
            raise RuntimeError("the database has several migration heads")
        return str(rows[0][0]) if rows else None

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``.

        Short commands (``ingest email``, ``replay``, workers) open the database on every
        run: when it is already at the packaged head, the migration environment is not run
        (a sixth of a second each time), only the models are imported as it would have.
        """
        if revision == "head" and self.revision() == packaged_head():
            import_models()
            return
        from alembic import command

        command.upgrade(alembic_config(self.url, self.engine), revision)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_FROM_OBJECT, _SCALAR_DEFAULT, _CALLABLE_DEFAULT, _DATABASE_DEFAULT = range(4)
_Row = TypeVar("_Row")


@functools.cache
def _insert_plan(mapper: Any) -> tuple[Any, Any, tuple[tuple[str, str, int, Any], ...],
                                       tuple[tuple[str, str], ...]]:
    """Build (once per model) what ``insert_now`` needs: its statements and column rules."""
    from sqlalchemy import insert

    table = mapper.local_table
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if column.table is not table:
            continue
        default = column.default
        if default is not None and default.is_scalar:
            columns.append((prop.key, column.key, _SCALAR_DEFAULT, default.arg))
        elif default is not None and default.is_callable:
            columns.append((prop.key, column.key, _CALLABLE_DEFAULT, default.arg))
        elif default is None and column.server_default is None and not column.primary_key:
            columns.append((prop.key, column.key, _FROM_OBJECT, None))  # unset: NULL
        else:
            columns.append((prop.key, column.key, _DATABASE_DEFAULT, None))
    keys = tuple((mapper.get_property_by_column(c).key, c.key) for c in table.primary_key.columns)
    statement = insert(table)
    return statement, statement.returning(*table.primary_key.columns), tuple(columns), keys


def insert_now(session: Session, obj: _Row) -> _Row:
    """Insert one new ORM object with one Core statement; it is then persistent, as if loaded.

    For hot paths (intake) that add a row nothing else pending depends on: it skips a
    flush of the unit of work (dependency sort, bookkeeping), which costs several times
    the statement itself. Column defaults evaluable in Python are evaluated here, so the
    object holds every value it was written with (a server-side default is read back
    on first access). Relationships are not followed: set foreign keys by id. A model
    with insert listeners takes the ordinary path (``session.add``, flushed later).
    """
    from sqlalchemy.orm.attributes import instance_state

    state = instance_state(obj)
    mapper = state.mapper
    if mapper.dispatch.before_insert or mapper.dispatch.after_insert:
        session.add(obj)
        return obj
    statement, returning, columns, keys = _insert_plan(mapper)
    held = state.dict
    values: dict[str, Any] = {}
    for key, column_key, rule, default in columns:
        if key not in held:
            if rule == _DATABASE_DEFAULT:
                continue  # the database's own default: read back on first access
            held[key] = (None if rule == _FROM_OBJECT else default if rule == _SCALAR_DEFAULT
                         else default(None))
        values[column_key] = held[key]
    connection = session.connection()
    if any(values.get(column_key) is None for _key, column_key in keys):
        row = connection.execute(returning, values).one()
        for (key, _column_key), value in zip(keys, row, strict=True):
            held[key] = value
    else:
        connection.execute(statement, values)
    session.add(obj)
    # What a flush does after its INSERT: the object joins the identity map as persistent
    # and is registered as new in the transaction, so a rollback (of a SAVEPOINT too)
    # expunges it exactly as it would a flushed one.
    session._register_persistent({state})
    return obj


@functools.cache
def packaged_head() -> str | None:
    """Return the head revision of the packaged migrations (fixed for a process's life).

    Read from the migration files' ``revision`` and ``down_revision`` lines: the
    revision no other file names as its parent. Alembic's own script directory imports
    every migration module, a tenth of a second at each start of a short command; a test
    holds this to Alembic's answer.
    """
    import re

    assignment = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(assignment.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        revisions.add(found["revision"].strip().strip("'\""))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", found.get("down_revision", "")))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the packaged migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def alembic_config(url: str, engine: Engine | None = None) -> Any:
    """Build an Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def import_models() -> None:
    """Import every model module so that ``Base.metadata`` is complete."""
    from contactcenter import events  # noqa: F401
    from contactcenter.accounts import models as _accounts  # noqa: F401
    from contactcenter.channels.chat import models as _chat  # noqa: F401
    from contactcenter.channels.email import loop_models as _email_loops  # noqa: F401
    from contactcenter.channels.email import models as _email  # noqa: F401
    from contactcenter.channels.forms import models as _forms  # noqa: F401
    from contactcenter.channels.phone import models as _phone  # noqa: F401
    from contactcenter.customers import models as _customers  # noqa: F401
    from contactcenter.field import models as _field  # noqa: F401
    from contactcenter.knowledge import models as _knowledge  # noqa: F401
    from contactcenter.reports import models as _reports  # noqa: F401
    from contactcenter.routing import models as _routing  # noqa: F401
    from contactcenter.sales import models as _sales  # noqa: F401
    from contactcenter.sla import models as _sla  # noqa: F401
    from contactcenter.tickets import models as _tickets  # noqa: F401
