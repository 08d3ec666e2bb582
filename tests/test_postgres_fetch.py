"""``db_postgres.fetch``, ``as_loaded`` and lazy cursor descriptions on a real PostgreSQL.

``fetch`` sends a compiled Core statement straight to psycopg; these tests hold it to what
``session.execute`` would have done around it (autoflush, BEGIN, type processing, Python
defaults, listeners, error wrapping). The tables are this module's own, on a throwaway
metadata, created in the session's test database and dropped after each test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Self

import psycopg
import pytest
from sqlalchemy import (
    ForeignKey,
    MetaData,
    Numeric,
    String,
    bindparam,
    event,
    exc,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from contactcenter import db_postgres
from contactcenter.db import Database, UTCDateTime
from contactcenter.db_postgres import as_loaded, entity_columns, fetch
from tests.test_postgres_roundtrips import Trace, driver_of

pytestmark = pytest.mark.postgres

STAMP = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


class Model(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012 (as contactcenter.db.Base)


class Parent(Model):
    __tablename__ = "fetch_parent"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("1.50"))
    ratio: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime | None] = mapped_column(onupdate=lambda: STAMP)
    children: Mapped[list[Child]] = relationship(back_populates="parent", order_by="Child.id")


class Child(Model):
    __tablename__ = "fetch_child"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("fetch_parent.id"))
    label: Mapped[str] = mapped_column(String(40))
    parent: Mapped[Parent] = relationship(back_populates="children")


@pytest.fixture
def pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """One pooled connection (as ``test_postgres_roundtrips.one``), with this module's tables."""
    monkeypatch.setattr(db_postgres, "IDLE_BEFORE_PING", 3600.0)
    database = Database(pg_url, pool_size=1, max_overflow=0)
    Model.metadata.create_all(database.engine)
    with database.session() as s:
        s.add_all([Parent(id=1, name="one", amount=Decimal("2.50"), ratio=0.25,
                          at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)),
                   Parent(id=2, name="two", at=None),
                   Child(id=10, parent_id=1, label="a"), Child(id=11, parent_id=1, label="b")])
        s.commit()
    yield database
    Model.metadata.drop_all(database.engine)
    database.dispose()


class Statements:
    """The SQL statements an engine sends (``before_cursor_execute``), while listening."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.seen.append((" ".join(statement.split()), parameters))

    def __enter__(self) -> Self:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self)

    def verbs(self) -> list[str]:
        return [statement.split()[0] for statement, _ in self.seen]


PARENT_ROW = select(Parent.id, Parent.name, Parent.amount, Parent.ratio, Parent.at).where(
    Parent.id == bindparam("pid"))


def test_fetch_returns_rows_with_the_column_types_processing(pg: Database) -> None:
    with pg.session() as s:
        s.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))  # psycopg returns +09:00 values
        rows = fetch(s, PARENT_ROW, {"pid": 1})
        assert rows == [(1, "one", Decimal("2.50"), 0.25, dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))]
        row = rows[0]
        assert isinstance(row, tuple) and isinstance(row[2], Decimal) and type(row[3]) is float
        assert row[4].tzinfo is dt.UTC
        assert fetch(s, PARENT_ROW, {"pid": 3}) == []


def test_fetch_binds_through_the_column_types(pg: Database) -> None:
    plus_two_eleven = dt.datetime(2026, 3, 2, 11, 0, tzinfo=PLUS_TWO)  # 09:00 UTC
    by_time = select(Parent.name).where(Parent.at == bindparam("at", type_=UTCDateTime()))
    with pg.session() as s, Statements(pg.engine) as statements:
        assert fetch(s, by_time, {"at": plus_two_eleven}) == [("one",)]
        bound = statements.seen[-1][1]["at"]
        assert bound == plus_two_eleven and bound.tzinfo is dt.UTC  # processed before psycopg
        with pytest.raises((ValueError, exc.StatementError), match="naive datetime"):
            fetch(s, by_time, {"at": plus_two_eleven.replace(tzinfo=None)})


def test_fetch_autoflushes_the_session_first(pg: Database) -> None:
    names = select(Parent.name).order_by(Parent.id)
    with pg.session() as s:
        s.add(Parent(id=3, name="pending"))
        assert fetch(s, names, {}) == [("one",), ("two",), ("pending",)]
        s.rollback()


def test_a_first_fetch_begins_the_transaction_in_one_round_trip(pg: Database) -> None:
    rename = (update(Parent).where(Parent.id == bindparam("pid"))
              .values(name=bindparam("new")).returning(Parent.name))
    with pg.session() as s:
        trace = Trace(driver_of(pg))
        trace.run(lambda: s.connection())  # checkout only: nothing sent
        assert trace.messages == []
        trace.run(lambda: fetch(s, rename, {"pid": 2, "new": "renamed"}))
        assert trace.round_trips() == 1, trace.messages
        assert trace.sent("Sync") == 1 and trace.sent("Query") == 0, trace.messages
        assert s.scalar(text("SELECT name FROM fetch_parent WHERE id = 2")) == "renamed"
        s.rollback()
        assert s.scalar(text("SELECT name FROM fetch_parent WHERE id = 2")) == "two"
        s.rollback()


def test_a_statement_is_prepared_at_its_first_fetch(pg: Database) -> None:
    # psycopg would send it unnamed, parsed and planned anew, for its first five runs.
    prepared = text("SELECT statement FROM pg_prepared_statements WHERE statement LIKE :sql")
    with pg.session() as s:
        assert fetch(s, PARENT_ROW, {"pid": 2})[0][1] == "two"
        statements = s.execute(prepared, {"sql": "%FROM fetch_parent%"}).scalars().all()
        assert len(statements) == 1 and "WHERE fetch_parent.id = $1" in statements[0]
        assert fetch(s, PARENT_ROW, {"pid": 1})[0][1] == "one"  # the same one, run again
        assert s.execute(prepared, {"sql": "%FROM fetch_parent%"}).scalars().all() == statements


def test_python_side_defaults_are_applied(pg: Database) -> None:
    rename = (update(Parent).where(Parent.id == bindparam("pid"))
              .values(name=bindparam("new")).returning(Parent.updated_at))
    add = insert(Parent).values(id=bindparam("pid"), name=bindparam("new")).returning(
        Parent.amount)
    with pg.session() as s:
        assert fetch(s, rename, {"pid": 1, "new": "uno"}) == [(STAMP,)]
        assert fetch(s, add, {"pid": 5, "new": "five"}) == [(Decimal("1.50"),)]
        s.commit()
    with pg.session() as s:
        stored = s.execute(select(Parent.id, Parent.updated_at).order_by(Parent.id)).all()
        assert stored == [(1, STAMP), (2, None), (5, None)]


def test_driver_errors_are_wrapped_as_sqlalchemy_wraps_them(pg: Database) -> None:
    duplicate = insert(Parent).values(id=bindparam("pid"), name=bindparam("new"))
    with pg.session() as s:
        for first in (True, False):  # BEGIN pipelined with it, or not
            if not first:
                s.execute(text("SELECT 1"))
            with pytest.raises(exc.IntegrityError) as raised:
                fetch(s, duplicate, {"pid": 9, "new": "one"})
            assert isinstance(raised.value, exc.DBAPIError)
            assert isinstance(raised.value.orig, psycopg.errors.UniqueViolation)
            assert not raised.value.connection_invalidated
            s.rollback()
        with pytest.raises(exc.ProgrammingError) as bad_sql:
            fetch(s, text("SELECT no_such_column FROM fetch_parent"), {})
        assert isinstance(bad_sql.value.orig, psycopg.errors.UndefinedColumn)
        assert "no_such_column" in str(bad_sql.value.statement)
        s.rollback()
        assert fetch(s, select(Parent.name).where(Parent.id == 2), {}) == [("two",)]


def test_statement_listeners_see_what_fetch_runs(pg: Database) -> None:
    seen: list[tuple[str, str, Any]] = []

    def before(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> tuple[str, Any]:
        seen.append(("before", statement, dict(params)))
        return statement + " -- tagged", params

    def after(_c: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append(("after", statement, cursor.rowcount))

    event.listen(pg.engine, "before_cursor_execute", before, retval=True)
    event.listen(pg.engine, "after_cursor_execute", after)
    try:
        with pg.session() as s:
            assert fetch(s, PARENT_ROW, {"pid": 2}) == [(2, "two", Decimal("1.50"), None, None)]
    finally:
        event.remove(pg.engine, "before_cursor_execute", before)
        event.remove(pg.engine, "after_cursor_execute", after)
    (when, sql, params), (when_after, sql_after, count) = seen
    assert (when, when_after, count) == ("before", "after", 1)
    assert sql.startswith("SELECT fetch_parent.id") and params == {"pid": 2}
    assert sql_after == sql + " -- tagged"  # what the first listener returned was run


def test_fetch_on_sqlite_is_session_execute() -> None:
    database = Database("sqlite://")
    try:
        Model.metadata.create_all(database.engine)
        with database.session() as s:
            s.add(Parent(id=1, name="one", amount=Decimal("2.50"), ratio=0.25,
                         at=dt.datetime(2026, 3, 2, 11, tzinfo=PLUS_TWO)))
            rows = fetch(s, PARENT_ROW, {"pid": 1})  # autoflushed too
            assert rows == s.execute(PARENT_ROW, {"pid": 1}).all()
            assert rows == [(1, "one", Decimal("2.50"), 0.25,
                             dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))]
    finally:
        database.dispose()



def test_fetch_uses_the_bind_session_execute_would(pg: Database) -> None:
    # Fails at the time of writing: fetch asks session.get_bind() without the statement.
    with Session(binds={Parent: pg.engine, Child: pg.engine}) as s:
        assert fetch(s, PARENT_ROW, {"pid": 2}) == s.execute(PARENT_ROW, {"pid": 2}).all()


LOCK = (select(*entity_columns(Child), *entity_columns(Parent))
        .join(Parent, Child.parent_id == Parent.id).where(Child.id == bindparam("cid")))


def test_as_loaded_makes_persistent_clean_objects(pg: Database) -> None:
    assert entity_columns(Parent) == tuple(Parent.__table__.columns)
    with pg.session() as s, Statements(pg.engine) as statements:
        row = fetch(s, LOCK, {"cid": 10})[0]
        child, parent = as_loaded(s, (Child, Parent), row)
        assert isinstance(child, Child) and isinstance(parent, Parent)
        assert inspect(child).persistent and inspect(parent).persistent
        assert (child.id, child.parent_id, child.label) == row[:3]
        assert (parent.id, parent.name, parent.amount, parent.ratio, parent.at,
                parent.updated_at) == row[3:]
        assert not s.dirty and not s.new and not s.is_modified(parent)
        assert s.get(Child, 10) is child  # in the identity map
        del statements.seen[:]
        assert child.parent is parent  # many-to-one from the identity map: no SQL
        assert statements.seen == []
        assert [c.label for c in parent.children] == ["a", "b"]  # loaded lazily, now
        assert parent.children[0] is child and statements.verbs() == ["SELECT"]
        s.commit()
        assert statements.verbs() == ["SELECT"]  # no UPDATE


def test_as_loaded_overwrites_a_pending_change_like_populate_existing(pg: Database) -> None:
    with pg.session() as s, Statements(pg.engine) as statements:
        parent = s.get(Parent, 1)
        assert parent is not None
        parent.name = "changed"
        parent.ratio = 9.5
        s.autoflush = False  # the change stays pending while the row is read
        row = fetch(s, select(*entity_columns(Parent)).where(Parent.id == 1), {})[0]
        s.autoflush = True
        again, = as_loaded(s, (Parent,), row)
        assert again is parent
        assert (parent.name, parent.ratio) == ("one", 0.25)
        assert not s.is_modified(parent)
        dirty = list(s.dirty)  # (a flush would fire before_update for what it holds)
        s.commit()
        assert "UPDATE" not in statements.verbs()
        assert dirty == [], "populate_existing leaves no object in session.dirty"


def test_cursor_descriptions_are_psycopgs_built_lazily(pg: Database) -> None:
    query = "SELECT 1 AS n, 'x'::varchar(5) AS word, now() AS at, NULL::numeric AS amount"
    with pg.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        assert isinstance(cursor, db_postgres._lazy_cursor_class())
        assert isinstance(cursor, psycopg.Cursor)
        plain = psycopg.Cursor(driver)
        plain.execute(query)
        cursor.execute(query)
        description, expected = cursor.description, plain.description
        assert isinstance(description, db_postgres._Description) and expected is not None
        assert len(description) == len(expected) == 4
        assert description._columns is None  # its length built no column
        assert [c.name for c in description] == [c.name for c in expected]
        assert [c.type_code for c in description] == [c.type_code for c in expected]
        assert [tuple(c) for c in description] == [tuple(c) for c in expected]
        assert description[1].name == "word" and cursor.fetchall() == plain.fetchall()
        cursor.execute("UPDATE fetch_parent SET name = name WHERE id = 1")
        assert cursor.description is None and plain.description is not None
        cursor.execute("SET LOCAL work_mem = '8MB'")
        assert cursor.description is None
        cursor.execute("SELECT")  # a result of no columns: described, empty
        assert cursor.description is not None and len(cursor.description) == 0
        cursor.execute(query)
        taken = cursor.description
        cursor.execute("SELECT 2 AS other")
        assert taken is not None and [c.name for c in taken] == ["n", "word", "at", "amount"]
        assert [c.name for c in cursor.description or ()] == ["other"]
        cursor.execute(query)
        taken = cursor.description
        cursor.close()  # built after its cursor closed: still the result it was taken from
        assert taken is not None and [c.type_code for c in taken] == [
            c.type_code for c in expected]
        conn.rollback()


def test_only_plain_psycopg_cursors_are_replaced(pg_url: str) -> None:
    connection = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                                 cursor_factory=psycopg.ClientCursor)
    try:
        db_postgres.lazy_description_cursors(connection, None)
        assert connection.cursor_factory is psycopg.ClientCursor
        connection.cursor_factory = psycopg.Cursor
        db_postgres.lazy_description_cursors(connection, None)
        lazy = connection.cursor_factory
        db_postgres.lazy_description_cursors(connection, None)
        assert connection.cursor_factory is lazy is db_postgres._lazy_cursor_class()
    finally:
        connection.close()


def test_compiled_statements_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import bindparam, select
    from sqlalchemy.dialects import postgresql

    monkeypatch.setattr(db_postgres, "MOST_COMPILED", 3)
    dialect = postgresql.dialect()
    built = [select(bindparam("x") + n) for n in range(5)]
    for statement in built:
        assert db_postgres._compiled(dialect, statement, ()) is not None
    known = db_postgres._COMPILED[dialect]
    assert len(known) == 3
    assert (built[0], ()) not in known and (built[4], ()) in known
