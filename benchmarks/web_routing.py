"""Routing decisions as a web process makes them: each after a read-only session.

Usage::

    .venv/bin/python benchmarks/web_routing.py --json
    .venv/bin/python benchmarks/web_routing.py --agents 5000 --waiting 50000 --rounds 3 --json

In a web process one pooled connection serves a request's read-only session (the
signed-in user, a page's reads) and then a routing decision. SQLAlchemy ends a session
that only read with a rollback, and psycopg deallocates every prepared statement of the
connection at each ROLLBACK, so the routing statements were prepared and planned again
at every decision. The engine now ends such a transaction with COMMIT when the server
says it wrote nothing (``db_postgres._wrote_nothing``), and the statements stay
prepared.

The routing benchmark's world (``_routing_world.py``; ``--agents``, ``--waiting``, one
PostgreSQL router) runs ``routing.run_decisions``, each decision's session preceded by a
read-only session on the same connection. The baseline is the same workload in the same
run with every rollback a ROLLBACK (``_wrote_nothing`` answering no). The two variants
alternate for ``--rounds`` rounds on one database (the number waiting stays constant);
each figure is the median of its rounds, and ``runs`` lists them all. Latency covers the
read-only session and the decision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

from sqlalchemy import text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _routing_world import DEFAULT_PG_ADMIN, machine, postgres_database, python_loop_seconds
from routing import SEED, START, TICK, build_plan, check_invariants, run_decisions, seed

from contactcenter import db_postgres
from contactcenter.db import Database, import_models
from contactcenter.routing import engine

VARIANTS = ("kept", "rollback")
FIGURES = ("decisions_per_s", "p50_ms", "p95_ms", "p99_ms")


def read_first(db: Database) -> None:
    """Make each session of ``db`` follow a read-only one, as a web request's would."""
    open_session = db.session

    def session() -> Any:
        with open_session() as reading:  # ends in a rollback, as SQLAlchemy closes it
            reading.execute(text("SELECT count(*) FROM agent_states WHERE user_id = 1"))
        return open_session()

    db.session = session  # type: ignore[method-assign]


def figures_of(run: dict[str, Any]) -> dict[str, Any]:
    return {key: run[key] for key in FIGURES}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in FIGURES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--n", type=int, default=800, help="timed cycles per round and variant")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args(argv)
    for name in ("agents", "waiting", "n", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    loop_at_start = python_loop_seconds()
    import_models()
    policy = engine.default_policy()
    wrote_nothing = db_postgres._wrote_nothing
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    try:
        opened = postgres_database(args.postgres_url, "bench_web_routing_")
        with opened as (db, where, version):
            print(f"seeding {args.agents} agents, {args.waiting} waiting", file=sys.stderr)
            plan = build_plan(args.agents, args.waiting)
            world, _seeded = seed(db, plan, policy)
            read_first(db)
            start = START
            for round_ in range(args.rounds):
                for variant in VARIANTS:
                    db_postgres._wrote_nothing = (  # type: ignore[assignment]
                        wrote_nothing if variant == "kept" else (lambda _driver: False))
                    db.engine.dispose()  # each variant starts on a new connection
                    run = run_decisions(db, world, plan, policy, args.n, args.warmup,
                                        seed_=SEED + 1 + round_, start=start)
                    start += TICK * (args.n + args.warmup + 10)
                    runs[variant].append(figures_of(run))
                    print(f"round {round_ + 1} {variant}: {run['decisions_per_s']}/s "
                          f"p50 {run['p50_ms']} ms", file=sys.stderr)
            invariants = check_invariants(db)
    except ConnectionError as exc:
        print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        db_postgres._wrote_nothing = wrote_nothing  # type: ignore[assignment]
    kept, baseline = median_of(runs["kept"]), median_of(runs["rollback"])
    report = {
        "benchmark": "web_routing",
        "machine": machine(version, loop_at_start),
        "workload": {"database": where, "agents": args.agents, "waiting": args.waiting,
                     "cycles_per_run": args.n, "warmup": args.warmup, "rounds": args.rounds,
                     "each_decision_after": "a read-only session on the same connection"},
        **kept,
        "baseline": {"what": "every rollback a ROLLBACK (psycopg drops prepared statements)",
                     **baseline},
        "ratio_to_baseline": round(kept["decisions_per_s"] / baseline["decisions_per_s"], 3),
        "runs": runs,
        "invariants": invariants,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"kept: {kept['decisions_per_s']}/s p50 {kept['p50_ms']} ms "
              f"p99 {kept['p99_ms']} ms; rollback: {baseline['decisions_per_s']}/s "
              f"p50 {baseline['p50_ms']} ms p99 {baseline['p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
