"""Measure the report queries over many tickets on PostgreSQL, and the wallboard per event.

Usage::

    .venv/bin/python benchmarks/reports.py --json                 # 1,000,000 tickets
    .venv/bin/python benchmarks/reports.py --tickets 20000 --n 5 --json   # quick

A throwaway PostgreSQL database (migrated to head) is bulk-loaded with COPY:
``--tickets`` tickets over 90 days in six queues from 50,000 customers in four
value tiers, one routing item per ticket (answered after a random wait or
abandoned), one customer message per ticket and a reply on most, and a CSAT
answer for one ticket in ten. Then the report page's request is timed the way
the page makes it (``build_report`` for a period and filter, one session per
run), ``--n`` times per scenario: the last 7 days, the last 30 days, 30 days
for one queue, 30 days for one tier, 90 days. The ``floor`` is the cheapest
query any report must make, a count of the period's tickets by index, with
``ratio_to_floor``.

The wallboard: a snapshot (``contactcenter.reports.wallboard.snapshot``,
fetched by the page at start and on resync) is timed on the same database,
and the page's model (``static/supervisor/wallboard_model.js``) is run under
Node on a stream of synthetic events to give the browser's cost per event; the
server's own per-event cost is nothing beyond publishing the event it already
publishes (the page never refetches per event). ``ratio_to_refetch`` compares
a per-event model update with refetching a snapshot per event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import latency_figures, machine  # noqa: E402
from _routing_world import DEFAULT_PG_ADMIN, analyze, postgres_database  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from contactcenter.db import Base, Database  # noqa: E402
from contactcenter.reports.queries import ReportFilter, build_report  # noqa: E402
from contactcenter.reports.wallboard import Thresholds, snapshot  # noqa: E402
from contactcenter.routing.policy import default_policy  # noqa: E402
from contactcenter.tickets.models import Ticket  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("support", "billing", "sales", "tech", "vip", "general")
CHANNELS = (("email", "ticket"), ("voice", "call"), ("chat", "chat"), ("sms", "ticket"))
TIERS = ("A", "B", "C", None)


def _fill_defaults(table_name: str, row_columns: list[str], now: dt.datetime) -> dict[str, Any]:
    """Values for NOT NULL columns the loader does not set (columns other packages add)."""
    extra: dict[str, Any] = {}
    for column in Base.metadata.tables[table_name].columns:
        if column.name in row_columns or column.nullable or column.server_default is not None:
            continue
        default = column.default
        if default is None:
            raise RuntimeError(f"{table_name}.{column.name} is NOT NULL with no default")
        if getattr(default, "is_scalar", False):
            extra[column.name] = default.arg  # type: ignore[attr-defined]
        elif column.type.python_type is dt.datetime:
            extra[column.name] = now
        else:
            extra[column.name] = default.arg(None)  # type: ignore[attr-defined]
    return extra


def _copy(conn: Any, table: str, columns: list[str], rows: Any, now: dt.datetime) -> int:
    extra = _fill_defaults(table, columns, now)
    names = columns + list(extra)
    tail = [extra[k] for k in extra]
    count = 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, *tail))
                count += 1
    return count


def load(db: Database, n_tickets: int, now: dt.datetime, seed: int = 7) -> dict[str, Any]:
    """Bulk-load the world with COPY; return its sizes."""
    import psycopg

    from _common import psycopg_url

    rng = random.Random(seed)
    url = db.engine.url.render_as_string(hide_password=False)
    started = time.perf_counter()
    n_customers = min(50_000, max(100, n_tickets // 20))
    n_agents = 200
    with psycopg.connect(psycopg_url(url)) as conn:
        _copy(conn, "queues", ["id", "slug", "name", "created_at", "updated_at"],
              ((i + 1, s, s.title(), now, now) for i, s in enumerate(QUEUES)), now)
        _copy(conn, "users", ["id", "email", "name", "password_hash", "is_active",
                              "created_at", "updated_at"],
              ((i + 1, f"agent{i}@bench.test", f"Agent {i}", "x", True, now, now)
               for i in range(n_agents)), now)
        _copy(conn, "agent_states", ["user_id", "presence", "presence_since", "updated_at"],
              ((i + 1, rng.choice(("available", "busy", "away", "offline")), now, now)
               for i in range(n_agents)), now)
        _copy(conn, "customers", ["id", "name", "value_tier", "created_at", "updated_at"],
              ((i + 1, f"Customer {i}", TIERS[i % 4], now, now) for i in range(n_customers)),
              now)

        tickets, items, messages, surveys = [], [], [], []
        message_id = 0
        for t in range(1, n_tickets + 1):
            created = now - dt.timedelta(seconds=rng.randrange(90 * 86400))
            queue = rng.randrange(len(QUEUES)) + 1
            channel, kind = rng.choice(CHANNELS)
            customer = rng.randrange(n_customers) + 1
            agent = rng.randrange(n_agents) + 1
            first = created + dt.timedelta(seconds=rng.randrange(30, 8 * 3600))
            solved = (first + dt.timedelta(seconds=rng.randrange(60, 3 * 86400))
                      if rng.random() < 0.8 else None)
            if solved is not None and solved > now:
                solved = None
            status = "solved" if solved else "open"
            tickets.append((t, 1000 + t, f"Ticket {t}", status, "normal", channel, customer,
                            queue, agent, f"r{t}", created, first if first <= now else None,
                            solved, rng.random() < 0.05 and 1 or 0, created, created))
            abandoned = kind != "ticket" and rng.random() < 0.06
            wait = rng.randrange(0, 300)
            at = created + dt.timedelta(seconds=wait)
            items.append((t, kind, channel, queue, t, customer, "abandoned" if abandoned
                          else "completed", 0, "", "normal", TIERS[(customer - 1) % 4],
                          created, created, None if abandoned else agent,
                          None if abandoned else at, None if abandoned else wait,
                          at if abandoned else None, None if abandoned else rng.randrange(60, 900),
                          0, created, created))
            message_id += 1
            messages.append((message_id, t, "inbound", channel, f"in-{t}", created, created,
                             created))
            if first <= now and rng.random() < 0.85:
                message_id += 1
                messages.append((message_id, t, "outbound", channel, None, first, first, first))
            if solved and rng.random() < 0.1:
                surveys.append((len(surveys) + 1, t, 0, customer, agent, queue, channel, "email",
                                f"n{t}", solved, solved, solved + dt.timedelta(days=14),
                                solved + dt.timedelta(hours=2), rng.choice((1, 2, 3, 4, 4, 5, 5)),
                                ""))
        _copy(conn, "tickets", ["id", "number", "subject", "status", "priority", "channel",
                                "customer_id", "queue_id", "assignee_id", "reply_token",
                                "last_activity_at", "first_response_at", "solved_at",
                                "reopen_count", "created_at", "updated_at"], tickets, now)
        _copy(conn, "routing_items", ["id", "kind", "channel", "queue_id", "ticket_id",
                                      "customer_id", "state", "priority", "priority_reason",
                                      "manual_priority", "value_tier", "enqueued_at",
                                      "rules_since", "agent_id", "answered_at", "wait_seconds",
                                      "abandoned_at", "handle_seconds", "offer_count",
                                      "created_at", "updated_at"], items, now)
        _copy(conn, "messages", ["id", "ticket_id", "direction", "channel", "external_id",
                                 "received_at", "created_at", "updated_at"], messages, now)
        _copy(conn, "csat_surveys", ["id", "ticket_id", "solve_round", "customer_id",
                                     "agent_id", "queue_id", "channel", "via", "nonce",
                                     "created_at", "sent_at", "expires_at", "answered_at",
                                     "score", "comment"], surveys, now)
        for table in ("queues", "users", "customers", "tickets", "routing_items", "messages",
                      "csat_surveys"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 1) FROM {table}))")
        conn.commit()
    analyze(db)
    return {"tickets": n_tickets, "routing_items": len(items), "messages": len(messages),
            "csat": len(surveys), "customers": n_customers, "agents": n_agents,
            "load_seconds": round(time.perf_counter() - started, 1)}


def time_runs(n: int, func: Any) -> list[float]:
    latencies = []
    for _ in range(n):
        began = time.perf_counter()
        func()
        latencies.append(time.perf_counter() - began)
    return latencies


def measure_reports(db: Database, now: dt.datetime, n: int) -> dict[str, Any]:
    policy = default_policy()
    scenarios = {
        "last_7_days": ReportFilter(now - dt.timedelta(days=7), now),
        "last_30_days": ReportFilter(now - dt.timedelta(days=30), now),
        "30_days_one_queue": ReportFilter(now - dt.timedelta(days=30), now, queue_id=2),
        "30_days_tier_A": ReportFilter(now - dt.timedelta(days=30), now, tier="A"),
        "90_days": ReportFilter(now - dt.timedelta(days=90), now + dt.timedelta(seconds=1)),
    }
    results: dict[str, Any] = {}
    for name, f in scenarios.items():
        def run(f: ReportFilter = f) -> None:
            with db.session() as s:
                build_report(s, f, policy)
        run()  # warm the cache and the plans
        results[name] = {"n": n, **latency_figures(time_runs(n, run))}

    def floor() -> None:
        with db.session() as s:
            s.scalar(select(func.count()).select_from(Ticket).where(
                Ticket.created_at >= now - dt.timedelta(days=30), Ticket.created_at < now))
    floor()
    floor_figures = {"n": n, **latency_figures(time_runs(n, floor))}
    for entry in results.values():
        entry["ratio_to_floor"] = round(entry["p50_ms"] / max(floor_figures["p50_ms"], 1e-3), 1)
    return {"reports": results, "floor": {"query": "count of the last 30 days' tickets",
                                          **floor_figures}}


def measure_wallboard(db: Database, now: dt.datetime, n: int, events: int) -> dict[str, Any]:
    thresholds = Thresholds()
    policy = default_policy()
    holder: dict[str, Any] = {}

    def run() -> None:
        with db.session() as s:
            holder["snap"] = snapshot(s, now, policy, thresholds)
    run()
    snap_figures = {"n": n, **latency_figures(time_runs(n, run))}
    snap = holder["snap"]
    snap["last_event_id"] = 0
    size = len(json.dumps(snap, default=str))
    model = ROOT / "contactcenter" / "agent_ui" / "static" / "supervisor" / "wallboard_model.js"
    script = f"""
import {{ WallboardModel }} from {json.dumps(model.as_uri())};
import {{ readFileSync }} from "node:fs";
const snap = JSON.parse(readFileSync(process.argv[2], "utf8"));
const m = new WallboardModel(snap);
const tiles = snap.tiles.map(t => [t.queue_id, t.kind]);
const agents = snap.agents.map(a => a.id);
const N = {events};
const types = ["item.queued", "offer.made", "item.assigned", "item.completed", "agent.presence_changed", "item.abandoned"];
const now = Date.now();
const evs = [];
for (let i = 0; i < N; i++) {{
  const [q, k] = tiles[i % tiles.length]; const type = types[i % types.length];
  const item = 10_000_000 + Math.floor(i / 6);
  evs.push({{ id: i + 1, type, at: new Date(now).toISOString(), payload: {{ item_id: item, queue_id: q, kind: k,
    agent_id: agents[i % agents.length], enqueued_at: new Date(now - 30000).toISOString(),
    presence: "available", since: new Date(now).toISOString() }} }});
}}
const t0 = process.hrtime.bigint();
for (const e of evs) {{ m.apply(e); }}
const t1 = process.hrtime.bigint();
for (const t of m.tiles.values()) m.tileFigures(t, now);
const t2 = process.hrtime.bigint();
console.log(JSON.stringify({{ apply_us: Number(t1 - t0) / 1000 / N, figures_all_tiles_us: Number(t2 - t1) / 1000, tiles: m.tiles.size, agents: m.agents.size }}));
"""
    with tempfile.TemporaryDirectory() as tmp:
        snap_path = Path(tmp) / "snap.json"
        snap_path.write_text(json.dumps(snap, default=str))
        js = Path(tmp) / "bench.mjs"
        js.write_text(script)
        out = subprocess.run(["node", str(js), str(snap_path)], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    node = json.loads(out)
    per_event_ms = node["apply_us"] / 1000
    return {"snapshot": {**snap_figures, "bytes": size, "tiles": len(snap["tiles"]),
                         "agents": len(snap["agents"])},
            "per_event_browser": {"events": events, "mean_us": round(node["apply_us"], 3),
                                  "recompute_all_tiles_us": round(node["figures_all_tiles_us"], 1)},
            "per_event_server_extra_queries": 0,
            "refetch_per_event": {"p50_ms": snap_figures["p50_ms"]},
            "ratio_to_refetch": round(per_event_ms / max(snap_figures["p50_ms"], 1e-6), 6)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=20, help="timed runs per scenario")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 tickets, 5 runs")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.n, args.events = 20_000, 5, 20_000
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with postgres_database(args.postgres_url, "bench_reports_") as (db, where, version):
        sizes = load(db, args.tickets, now)
        result = {"benchmark": "reports", "postgres": {"database": where, **sizes,
                                                        **measure_reports(db, now, args.n)},
                  "wallboard": measure_wallboard(db, now, args.n, args.events),
                  "machine": machine(version),
                  "note": "2 shared cores; other work ran at the same time, so figures are noisy"}
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
