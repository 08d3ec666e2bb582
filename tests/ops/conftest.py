"""Fixtures of the fault suite: the scaled deployment on loopback against real services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from contactcenter.db import Database
from tests.conftest import unavailable
from tests.factories import make_inbox, make_queue
from tests.ops.deployment import Deployment, RedisServer, RelaySink, TcpProxy

SUPPORT = "support@example.test"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (restarting it disturbs nobody)."""
    server = RedisServer(tmp_path / "redis")
    try:
        server.start()
    except (OSError, AssertionError) as exc:
        unavailable("redis-server", exc)
    yield server
    server.stop()


@pytest.fixture
def relay() -> Iterator[RelaySink]:
    sink = RelaySink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def deployment(tmp_path: Path, pg_db: Database, private_redis: RedisServer,
               relay: RelaySink) -> Iterator[Deployment]:
    """PostgreSQL behind a breakable proxy, a private Redis, a relay; processes added by tests."""
    url = make_url(pg_db.url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    with pg_db.session() as session:
        queue = make_queue(session, "support")
        make_inbox(session, queue=queue, channel="email").address = SUPPORT
        session.commit()
    found = Deployment(tmp_path, pg_db.url, private_redis, proxy, relay)
    yield found
    found.stop_all()
    proxy.stop()
