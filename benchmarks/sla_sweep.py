"""Measure one SLA sweep among 100,000 open tickets, against the bare indexed query (the floor).

Usage::

    .venv/bin/python benchmarks/sla_sweep.py --json                  # 100,000 open, sqlite+postgres
    .venv/bin/python benchmarks/sla_sweep.py --quick --json          # 10,000 open, CI-sized
    .venv/bin/python benchmarks/sla_sweep.py --backends sqlite --open 50000 --many 2000 --json

``--open`` tickets, each with a running first-response clock (as intake writes
them: ``next_check_at`` is the next instant the sweep must act on), are
bulk-loaded with Core ``insert()``. Most are due in the future (1 hour to 30
days). Two scenarios are then timed, each ``--rounds`` times (the due set is
re-armed between rounds, untimed):

- ``few_due``: ``--few`` clocks (default 20) passed their due instant;
- ``many_due``: ``--many`` clocks (default 5,000) passed it at once (after an
  outage, say).

For each: ``sweep`` is ``run_sweep`` (lock, decide, write the clock, record the
``sla.breached`` event, commit per batch of 500; escalation and e-mail off, so
the figure is the sweep's own cost), and ``floor`` is the bare indexed query
that finds the same due clocks (``due_clock_ids``), in the same run on the same
data. ``scan_open`` is a query touching every open clock (what a sweep without
the index would read), for scale. A sweep that costs only what is due keeps
``few_due.sweep`` near the floor and far below ``scan_open``, and grows with
``many`` rather than with ``open``. Figures come from a shared 2-core machine:
noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine, psycopg_url  # noqa: E402
from sqlalchemy import func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from contactcenter.config import Settings  # noqa: E402
from contactcenter.customers.models import Customer  # noqa: E402
from contactcenter.db import Database  # noqa: E402
from contactcenter.events import EventLog  # noqa: E402
from contactcenter.sla.models import SlaClock  # noqa: E402
from contactcenter.sla.sweep import due_clock_ids, run_sweep  # noqa: E402
from contactcenter.tickets.models import Queue, Ticket  # noqa: E402

DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BATCH = 10_000
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@contextmanager
def sqlite_db() -> Iterator[tuple[Database, str | None]]:
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'sla.db'}")
        try:
            db.create_all()
            yield db, None
        finally:
            db.dispose()


@contextmanager
def postgres_db(admin_url: str) -> Iterator[tuple[Database, str | None]]:
    import psycopg
    from psycopg import sql

    admin = psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=3)
    name = f"sla_bench_{uuid.uuid4().hex[:10]}"
    with admin:
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = Database(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    try:
        db.create_all()
        yield db, str(version)
    finally:
        db.dispose()
        with psycopg.connect(psycopg_url(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def load(db: Database, n_open: int, rng: random.Random) -> None:
    """Bulk-load customers, open tickets and one running first-response clock per ticket."""
    with db.session() as s:
        queue = Queue(slug="support", name="Support")
        s.add(queue)
        s.flush()
        customers = [{"name": f"Customer {i}", "notes": ""} for i in range(1000)]
        s.execute(insert(Customer), customers)
        first_customer = s.scalar(select(func.min(Customer.id)))
        for start in range(0, n_open, BATCH):
            rows = []
            for i in range(start, min(start + BATCH, n_open)):
                created = NOW - dt.timedelta(minutes=rng.randint(1, 600))
                rows.append({"number": 1000 + i, "subject": f"Ticket {i}", "status": "open",
                             "priority": "normal", "channel": "email",
                             "customer_id": first_customer + i % 1000, "queue_id": queue.id,
                             "reply_token": f"{i:016x}", "last_activity_at": created,
                             "reopen_count": 0, "created_at": created, "updated_at": created})
            s.execute(insert(Ticket), rows)
        first_ticket = s.scalar(select(func.min(Ticket.id)))
        for start in range(0, n_open, BATCH):
            rows = []
            for i in range(start, min(start + BATCH, n_open)):
                due = NOW + dt.timedelta(seconds=rng.randint(3600, 30 * 86400))
                rows.append({"ticket_id": first_ticket + i, "kind": "first_response",
                             "cycle": 1, "target_minutes": 240, "warn_percent": 80,
                             "pause_on_hold": True, "state": "running",
                             "started_at": NOW - dt.timedelta(hours=1),
                             "running_since": NOW - dt.timedelta(hours=1),
                             "elapsed_seconds": 0, "warn_at": None, "due_at": due,
                             "next_check_at": due, "warned_at": NOW - dt.timedelta(hours=1),
                             "created_at": NOW, "updated_at": NOW})
            s.execute(insert(SlaClock), rows)
        s.commit()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def arm(db: Database, ids: list[int], rng: random.Random) -> None:
    """Make the given clocks due (breach instant in the last 10 minutes, not reported)."""
    with db.session() as s:
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            due = NOW - dt.timedelta(seconds=rng.randint(1, 600))
            s.execute(update(SlaClock).where(SlaClock.id.in_(chunk)).values(
                due_at=due, next_check_at=due, breached_at=None, breach_reported_at=None))
        s.commit()


def timed(func: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def scenario(db: Database, settings: Settings, all_ids: list[int], size: int, rounds: int,
             rng: random.Random) -> dict[str, Any]:
    floors, sweeps, scans = [], [], []
    for _ in range(rounds):
        ids = rng.sample(all_ids, size)
        arm(db, ids, rng)
        with db.session() as s:
            floor_s, found = timed(lambda: due_clock_ids(s, NOW, size + 1000))
            assert len(found) == size, (len(found), size)
            s.rollback()
        with db.session() as s:
            scan_s, _count = timed(lambda: s.scalar(
                select(func.count(SlaClock.id)).where(SlaClock.state == "running",
                                                      SlaClock.due_at.is_not(None))))
            s.rollback()
        with db.session() as s:
            sweep_s, result = timed(lambda: run_sweep(s, settings, NOW))
        assert result.breached == size, (result.breached, size)
        floors.append(floor_s)
        sweeps.append(sweep_s)
        scans.append(scan_s)
    with db.session() as s:
        assert not due_clock_ids(s, NOW, 10)
    floor, sweep = statistics.median(floors), statistics.median(sweeps)
    return {"due": size, "rounds": rounds,
            "sweep_ms": round(sweep * 1000, 2), "sweep_min_ms": round(min(sweeps) * 1000, 2),
            "sweep_per_due_ms": round(sweep * 1000 / size, 4),
            "due_per_s": round(size / sweep, 1),
            "floor": {"query": "due_clock_ids: SELECT id WHERE next_check_at < now "
                               "ORDER BY next_check_at (partial index)",
                      "ms": round(floor * 1000, 3)},
            "ratio_to_floor": round(sweep / floor, 1) if floor else None,
            "scan_open": {"query": "count of every running clock (no index help)",
                          "ms": round(statistics.median(scans) * 1000, 2)}}


def run_backend(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    rng = random.Random(7)
    settings = Settings(sla_on_breach="", sla_on_warning="", sla_email_on_breach=False,
                        sla_sweep_batch=500)
    ctx = sqlite_db() if name == "sqlite" else postgres_db(args.postgres_url)
    with ctx as (db, version):
        load_s, _ = timed(lambda: load(db, args.open, rng))
        with db.session() as s:
            all_ids = list(s.scalars(select(SlaClock.id)))
        few = scenario(db, settings, all_ids, args.few, args.rounds, rng)
        many = scenario(db, settings, all_ids, args.many, max(1, args.rounds // 2), rng)
        with db.session() as s:
            events = s.scalar(select(func.count(EventLog.id)))
            if name == "postgres":
                plan = [str(r[0]) for r in s.execute(text(
                    "EXPLAIN SELECT id FROM sla_clocks WHERE next_check_at IS NOT NULL "
                    "AND next_check_at < :now ORDER BY next_check_at LIMIT 100"), {"now": NOW})]
            else:
                plan = [str(r[-1]) for r in s.execute(text(
                    "EXPLAIN QUERY PLAN SELECT id FROM sla_clocks WHERE next_check_at IS NOT "
                    "NULL AND next_check_at < '2026-03-02 12:00:00' ORDER BY next_check_at "
                    "LIMIT 100"))]
        return {"open": args.open, "load_s": round(load_s, 2), "few_due": few,
                "many_due": many, "events_recorded": events, "due_query_plan": plan}, version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--open", type=int, default=100_000, help="open tickets")
    parser.add_argument("--few", type=int, default=20, help="clocks due in few_due")
    parser.add_argument("--many", type=int, default=5_000, help="clocks due in many_due")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 open, 1,000 many, 3 rounds")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args(argv)
    if args.quick:
        args.open, args.many, args.rounds = 10_000, 1_000, 3
    out: dict[str, Any] = {"benchmark": "sla_sweep", "n": args.open}
    pg_version = None
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            out[backend], version = run_backend(backend, args)
            pg_version = version or pg_version
        except ConnectionError as exc:  # pragma: no cover - no server here
            out[backend] = {"skipped": str(exc)}
        except Exception as exc:  # noqa: BLE001 - report which backend failed
            import psycopg

            if isinstance(exc, psycopg.OperationalError):
                out[backend] = {"skipped": str(exc).strip().splitlines()[0]}
            else:
                raise
    out["machine"] = machine(pg_version)
    out["note"] = "shared 2-core machine; figures are noisy"
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
