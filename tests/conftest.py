"""Shared fixtures: settings, database, app, clients, recorders, real services and a browser."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.channels.base import load_builtin_adapters
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.events import RecordingPublisher, publish_pending
from contactcenter.jobs import InlineJobQueue, JobContext

SHARED = Path(__file__).resolve().parents[2] / "shared"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"


def unavailable(what: str, err: object) -> None:
    """Skip when a real service is missing, but fail in CI where it must run."""
    msg = f"{what} not available: {str(err).strip().splitlines()[0] if str(err).strip() else err}"
    if IN_CI:
        pytest.fail(msg + " (required when CI=true)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test passwords with cheap argon2 parameters (the algorithm is unchanged)."""
    from argon2 import PasswordHasher

    from contactcenter.accounts import service

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(service, "_hasher", cheap)
    monkeypatch.setattr(service, "_DUMMY_HASH", cheap.hash("not-a-real-password-at-all"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.effective_database_url)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def events(db: Database) -> RecordingPublisher:
    """Every envelope published after a commit, in order."""
    recorder = RecordingPublisher()
    db.on_commit(lambda rows: publish_pending(recorder, rows))
    return recorder


@pytest.fixture
def session(db: Database) -> Iterator[Any]:
    with db.session() as s:
        yield s


@pytest.fixture
def registry() -> Any:
    return load_builtin_adapters()


@pytest.fixture
def jobs(db: Database, settings: Settings, registry: Any) -> Iterator[InlineJobQueue]:
    """A synchronous in-process queue that records what ran."""
    ctx = JobContext(db=db, settings=settings, registry=registry)
    queue = InlineJobQueue(ctx, synchronous=True, periodic=False)
    ctx.jobs = queue
    yield queue
    queue.stop()


@pytest.fixture
def app(settings: Settings, db: Database, jobs: InlineJobQueue, events: RecordingPublisher) -> Any:
    application = create_app(settings, db=db, jobs=jobs)
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def clock() -> Iterator[Any]:
    import time_machine

    with time_machine.travel("2026-03-02 09:00:00+00:00", tick=False) as traveller:
        yield traveller


# --- real services -------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, dropped at the end."""
    try:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url
    except ImportError as exc:  # pragma: no cover
        unavailable("psycopg", exc)
        raise
    admin = make_url(PG_ADMIN).set(drivername="postgresql").render_as_string(False)
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
        raise
    name = f"test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_url(PG_ADMIN).set(database=name).render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_db(pg_url: str, tmp_path: Path) -> Iterator[Database]:
    """A PostgreSQL database migrated to head, emptied after the test."""
    from sqlalchemy import text

    from contactcenter.db import Base

    database = Database(pg_url)
    database.upgrade()
    yield database
    with database.engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    database.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, flushed before and after the test."""
    try:
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError as exc:  # pragma: no cover
        unavailable("redis", exc)
        raise
    # One database per pytest-xdist worker (gw0 takes 9, gw1 10, ...), so parallel
    # workers never flush each other's keys.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{9 + int(worker.removeprefix('gw') or 0) % 7}"
    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    except RedisConnectionError as exc:
        unavailable("Redis", exc)
    yield url
    client.flushdb()
    client.close()


# --- live server and browser ---------------------------------------------------------

@pytest.fixture
def live_url(app: Any) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread (WebSocket capable)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, live_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=live_url)
    pg = context.new_page()
    yield pg
    context.close()
