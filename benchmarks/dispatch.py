"""Measure the dispatch suggestion for one visit among many technicians and open visits.

Usage::

    .venv/bin/python benchmarks/dispatch.py --json                 # 500 technicians, 5,000 visits
    .venv/bin/python benchmarks/dispatch.py --quick --json         # 50 and 500, fewer samples
    .venv/bin/python benchmarks/dispatch.py --backends sqlite --json

A world of ``--technicians`` technicians (2-4 of 8 skills, 1-3 of 20 areas, one
of three working calendars, a daily maximum) and ``--visits`` open visits (a
third unassigned, the rest assigned over the coming week with windows) is
bulk-loaded with Core ``insert()`` into a migrated database. Then ``suggest``
(``contactcenter.field.dispatch``: candidate technicians by skills, their areas,
their visits in the look-ahead, calendars, ranking) is timed for random
unassigned visits, each in its own session, as the API calls it.

The baseline, in the same run on the same data, is the bare indexed query for
the candidate technicians (``candidate_query``: active technicians holding every
required skill) fetched into a list: the least any suggestion must do.
``ratio_to_baseline`` is suggestion p50 over baseline p50.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from typing import Any

from sqlalchemy import insert, select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import latency_figures, machine
from _routing_world import DEFAULT_PG_ADMIN, postgres_database, sqlite_database

from contactcenter.accounts.models import User
from contactcenter.customers.models import Customer
from contactcenter.db import Database
from contactcenter.field.dispatch import candidate_query, suggest
from contactcenter.field.models import (
    Technician,
    TechnicianArea,
    TechnicianSkill,
    Visit,
)
from contactcenter.sla.models import SlaCalendar
from contactcenter.tickets.models import Ticket

SKILLS = ("router", "fiber", "copper", "tv", "alarm", "solar", "wifi", "phone")
AREAS = tuple(f"area-{i:02d}" for i in range(20))
CALENDARS = (("Field weekdays", "mon-fri 08:00-18:00"), ("Field long", "mon-sat 07:00-20:00"),
             ("Field 24x7", "24x7"))
BATCH = 2000
NOW = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC)  # a Monday morning


def _chunks(rows: list[dict[str, Any]]) -> Any:
    for i in range(0, len(rows), BATCH):
        yield rows[i:i + BATCH]


def load_world(db: Database, n_techs: int, n_visits: int, seed: int = 13) -> list[int]:
    """Bulk-load technicians and visits; return the ids of the unassigned visits."""
    rng = random.Random(seed)
    with db.engine.begin() as conn:
        cal_ids = [conn.execute(insert(SlaCalendar).values(name=name, hours=hours, timezone="UTC")
                                .returning(SlaCalendar.id)).scalar_one()
                   for name, hours in CALENDARS]
        users = [{"email": f"tech{i}@bench.test", "name": f"Technician {i}"}
                 for i in range(n_techs)]
        for chunk in _chunks(users):
            conn.execute(insert(User), chunk)
        tech_ids = list(conn.scalars(select(User.id).order_by(User.id)))[:n_techs]
        conn.execute(insert(Technician), [
            {"user_id": uid, "calendar_id": rng.choice(cal_ids), "home_area": rng.choice(AREAS),
             "max_visits_per_day": rng.choice((5, 6, 8))} for uid in tech_ids])
        skills, areas = [], []
        for uid in tech_ids:
            skills += [{"user_id": uid, "skill": s} for s in rng.sample(SKILLS, rng.randint(2, 4))]
            areas += [{"user_id": uid, "area": a} for a in rng.sample(AREAS, rng.randint(1, 3))]
        for chunk in _chunks(skills):
            conn.execute(insert(TechnicianSkill), chunk)
        for chunk in _chunks(areas):
            conn.execute(insert(TechnicianArea), chunk)
        n_customers = max(1, n_visits // 2)
        for chunk in _chunks([{"name": f"Customer {i}"} for i in range(n_customers)]):
            conn.execute(insert(Customer), chunk)
        customer_ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
        tickets = [{"number": 1000 + i, "channel": "email", "subject": "Visit needed",
                    "customer_id": customer_ids[i % len(customer_ids)],
                    "reply_token": f"{i:032x}"[-32:]} for i in range(n_visits)]
        for chunk in _chunks(tickets):
            conn.execute(insert(Ticket), chunk)
        ticket_ids = list(conn.scalars(select(Ticket.id).order_by(Ticket.id)))
        visits = []
        for i, tid in enumerate(ticket_ids):
            skill_set = rng.sample(SKILLS, rng.choice((0, 1, 1, 2)))
            row: dict[str, Any] = {
                "ticket_id": tid, "customer_id": customer_ids[i % len(customer_ids)],
                "address": f"{i} Bench Street", "area": rng.choice(AREAS),
                "problem": "No signal", "skills": ",".join(skill_set),
                "duration_minutes": rng.choice((30, 60, 90, 120)), "state": "pending",
                "technician_id": None, "window_start": None, "window_end": None}
            if i % 3:
                start = NOW.replace(hour=8) + dt.timedelta(days=rng.randint(0, 6),
                                                           minutes=30 * rng.randint(0, 18))
                row.update(state="assigned", technician_id=rng.choice(tech_ids),
                           window_start=start, window_end=start + dt.timedelta(hours=2))
            visits.append(row)
        for chunk in _chunks(visits):
            conn.execute(insert(Visit), chunk)
        pending = list(conn.scalars(select(Visit.id).where(Visit.state == "pending")))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return pending


def measure(db: Database, pending: list[int], n: int, warmup: int, seed: int = 7
            ) -> dict[str, Any]:
    """Time suggestions and the baseline candidate query for the same random visits."""
    rng = random.Random(seed)
    sample = [rng.choice(pending) for _ in range(n + warmup)]
    suggest_times: list[float] = []
    base_times: list[float] = []
    candidates: list[int] = []
    suggested: list[int] = []
    for index, visit_id in enumerate(sample):
        with db.session() as session:
            visit = session.get(Visit, visit_id)
            assert visit is not None
            skills = visit.skill_list
            t0 = time.perf_counter()
            rows = session.execute(candidate_query(skills)).all()
            t1 = time.perf_counter()
        with db.session() as session:
            visit = session.get(Visit, visit_id)
            assert visit is not None
            t2 = time.perf_counter()
            ranked = suggest(session, visit, NOW)
            t3 = time.perf_counter()
        if index >= warmup:
            base_times.append(t1 - t0)
            suggest_times.append(t3 - t2)
            candidates.append(len(rows))
            suggested.append(len(ranked))
    suggest_figures = latency_figures(suggest_times)
    base_figures = latency_figures(base_times)
    return {
        "suggest": {**suggest_figures, "per_s": round(len(suggest_times) / sum(suggest_times), 1),
                    "mean_candidates": round(sum(candidates) / len(candidates), 1),
                    "mean_suggestions": round(sum(suggested) / len(suggested), 2)},
        "baseline": {"what": "bare candidate-technician query (skills join), fetched",
                     **base_figures, "per_s": round(len(base_times) / sum(base_times), 1)},
        "ratio_to_baseline": round(suggest_figures["p50_ms"] / base_figures["p50_ms"], 2)
        if base_figures.get("p50_ms") else None,
    }


def run_backend(backend: str, args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """Load and measure on one backend; return its figures and the server version."""
    version = None
    if backend == "sqlite":
        context: Any = sqlite_database("bench-dispatch-")
    else:
        context = postgres_database(args.postgres_url, "bench_dispatch_")
    with context as opened:
        db, where = opened[0], opened[1]
        if backend == "postgres":
            version = opened[2]
        t0 = time.perf_counter()
        pending = load_world(db, args.technicians, args.visits)
        load_s = time.perf_counter() - t0
        figures = measure(db, pending, args.n, args.warmup)
    return {"database": where, "load_seconds": round(load_s, 2),
            "unassigned_visits": len(pending), **figures}, version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--technicians", type=int, default=500)
    parser.add_argument("--visits", type=int, default=5000)
    parser.add_argument("--n", type=int, default=300, help="timed suggestions per backend")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--quick", action="store_true", help="50 technicians, 500 visits")
    args = parser.parse_args(argv)
    if args.quick:
        args.technicians, args.visits, args.n, args.warmup = 50, 500, 50, 5
    result: dict[str, Any] = {"benchmark": "dispatch", "technicians": args.technicians,
                              "open_visits": args.visits, "n": args.n}
    pg_version = None
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            result[backend], version = run_backend(backend, args)
            pg_version = version or pg_version
        except ConnectionError as exc:
            result[backend] = {"skipped": str(exc)}
    result["machine"] = machine(pg_version)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
