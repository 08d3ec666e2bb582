"""The RQ worker builds its job context once; each forked work horse reuses it safely."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from contactcenter import jobs as jobs_module
from contactcenter.channels.base import ChannelRegistry
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.jobs import (
    JobContext,
    adopt_inherited_worker_context,
    install_worker_context,
    set_worker_context_factory,
    worker_context,
)


def in_child(check: Any) -> dict[str, Any]:
    """Run ``check()`` in a forked child (as RQ forks a work horse); return its JSON answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's atexit hooks
        os.close(read)
        try:
            answer = {"ok": True, **check()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            answer = {"ok": False, "error": repr(exc)}
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@pytest.fixture
def worker_ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'worker.db'}")
    ctx = JobContext(database, Settings(data_dir=tmp_path, secret_key="x" * 32),
                     ChannelRegistry())
    monkeypatch.setattr(jobs_module, "_worker_ctx", {})
    monkeypatch.setattr(jobs_module, "_worker_ctx_factory", None)
    yield ctx
    database.dispose()


def test_a_forked_horse_reuses_the_parents_context_without_building_one(worker_ctx: Any) -> None:
    built: list[int] = []

    def factory() -> JobContext:
        built.append(os.getpid())
        return worker_ctx

    set_worker_context_factory(factory)
    install_worker_context(worker_ctx)
    with worker_ctx.db.engine.connect() as conn:  # the parent holds a pooled connection
        conn.execute(text("SELECT 1"))
    parent_pool = id(worker_ctx.db.engine.pool)

    def check() -> dict[str, Any]:
        ctx = worker_context()
        with ctx.db.engine.connect() as conn:
            value = conn.execute(text("SELECT 41 + 1")).scalar()
        return {"same": ctx is worker_ctx, "built": len(built), "value": value,
                "new_pool": id(ctx.db.engine.pool) != parent_pool,
                "keyed": list(jobs_module._worker_ctx) == [os.getpid()]}

    answer = in_child(check)
    assert answer == {"ok": True, "same": True, "built": 0, "value": 42, "new_pool": True,
                      "keyed": True}
    # The parent's pool and its connection are untouched (dispose(close=False) in the child).
    assert id(worker_ctx.db.engine.pool) == parent_pool
    with worker_ctx.db.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert built == []


def test_without_an_installed_context_the_horse_builds_its_own(worker_ctx: Any) -> None:
    set_worker_context_factory(lambda: worker_ctx)
    assert adopt_inherited_worker_context() is None
    answer = in_child(lambda: {"same": worker_context() is worker_ctx,
                               "keyed": list(jobs_module._worker_ctx) == [os.getpid()]})
    assert answer == {"ok": True, "same": True, "keyed": True}
