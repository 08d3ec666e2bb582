"""Measure routing decisions per second and their latency against a FIFO round-robin baseline.

Usage::

    .venv/bin/python benchmarks/routing.py --agents 5000 --waiting 50000 --json
    .venv/bin/python benchmarks/routing.py --sweep --json            # 5,000 and 50,000 waiting
    .venv/bin/python benchmarks/routing.py --taskrouter-limits --backends postgres --json

A world of ``--agents`` agents (skills, languages, queue memberships, presence
available, every agent at full capacity holding assigned items) and
``--waiting`` waiting items across six queues and three kinds (tickets, chats,
calls) from customers of four value tiers is bulk-loaded (Core ``insert()``;
the rows are exactly those the engine writes, see ``_routing_world.py``), then
the engine makes decisions, each use case in its own session and transaction,
finished with ``commit_and_settle`` as the product does:

- ``agent_frees``: an agent completes one item they hold (``complete_item``,
  no wrap-up), which matches them with their best waiting work (``match_agent``):
  an offer, or several for chats;
- ``arrival``: an item arrives (``enqueue_item``: customer value, contract,
  sticky agent, scoring) and is matched (``match_item``); with everyone at
  capacity it queues, which is the decision made for most arrivals in a backlog.

Offers are then accepted (``accept_offer``, own transaction, timed apart) so the
agent holds the work and the number waiting stays constant. The same workload
runs under ``fifo_policy`` (zero weights, one step, longest idle) in the same
run: ``baseline`` and ``ratio_to_baseline``.

``postgres`` is one router (one process, one connection): ``decisions_per_s`` is
decisions over the summed decision latencies. ``postgres_concurrent`` is
``--workers`` router processes at once (default: one per core; forked, one
connection each, disjoint agents, each running ``--n`` cycles; production runs
several web processes and workers that route), with latency still per decision
and throughput over the wall-clock span of their timed windows; its own FIFO run
is its ``baseline``. Durability is the server's
``synchronous_commit`` (reported) for every transaction but those that only make
offers, which the engine commits asynchronously when the policy's
``async_offers`` is on (off by default; ``--async-offers`` turns it on for a
comparison); ``commit_mode`` says which ran. Every other writing decision waits
for its WAL flush, and concurrent routers share flushes (group commit).
``--sweep`` runs 5,000 and 50,000 waiting and reports ``flatness_large_over_small``;
``--taskrouter-limits`` seeds 15,000 agents and 500,000 items with ``COPY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _routing_world import (
    CHANNEL_OF,
    DEFAULT_PG_ADMIN,
    QUEUES,
    AgentSpec,
    CustomerSpec,
    ItemSpec,
    World,
    analyze,
    insert_items,
    latency_figures,
    machine,
    make_agents,
    make_customers,
    postgres_database,
    python_loop_seconds,
    seed_static,
    sqlite_database,
)

from contactcenter.db import Database, import_models
from contactcenter.routing import engine
from contactcenter.routing.models import Presence
from contactcenter.routing.policy import RoutingPolicy

SEED = 7
START = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(milliseconds=200)  # simulated time per cycle
KIND_MIX = (("ticket", 0.65), ("chat", 0.20), ("call", 0.15))
BACKLOG_HOURS = 8
CUSTOMERS = 20_000


@dataclass
class Plan:
    """The deterministic world: agents, customers, what they hold, what waits, what arrives."""

    agents: list[AgentSpec]
    customers: list[CustomerSpec]
    held: list[tuple[int, ItemSpec]]  # agent index, item
    waiting: list[ItemSpec]
    loads: dict[int, dict[str, int]]


def _kind(rng: random.Random) -> str:
    return rng.choices([k for k, _ in KIND_MIX], [w for _, w in KIND_MIX])[0]


def build_plan(n_agents: int, n_waiting: int, seed: int = SEED) -> Plan:
    rng = random.Random(seed)
    agents = make_agents(rng, n_agents)
    customers = make_customers(rng, CUSTOMERS)
    held: list[tuple[int, ItemSpec]] = []
    loads: dict[int, dict[str, int]] = {}
    for a in agents:
        live = "call" if rng.random() < 0.5 else "chat"
        counts = {"ticket": 10, live: 1 if live == "call" else 3}
        loads[a.index] = counts
        for kind, count in counts.items():
            for _ in range(count):
                enq = START - dt.timedelta(seconds=rng.uniform(120, 4 * 3600))
                held.append((a.index, ItemSpec(kind, rng.choice(a.queues), rng.choice(customers),
                                               enq, answered_at=enq + dt.timedelta(seconds=60))))
    waiting = [ItemSpec(_kind(rng), rng.randrange(len(QUEUES)), rng.choice(customers),
                        START - dt.timedelta(seconds=rng.uniform(1, BACKLOG_HOURS * 3600)))
               for _ in range(n_waiting)]
    return Plan(agents, customers, held, waiting, loads)


def seed(db: Database, plan: Plan, policy: RoutingPolicy) -> tuple[World, dict[str, Any]]:
    """Bulk-load the plan; return the world and how long each part took."""
    t0 = time.perf_counter()
    world = seed_static(db, plan.agents, plan.customers, policy, START,
                        presence=Presence.AVAILABLE, loads=plan.loads)
    t1 = time.perf_counter()
    held_specs = []
    for agent_index, spec in plan.held:
        spec.agent_id = world.agent_ids[agent_index]
        held_specs.append(spec)
    held_ids = insert_items(db, world, held_specs, policy, START)
    for item_id, spec in zip(held_ids, held_specs, strict=True):
        world.held.setdefault(spec.agent_id, []).append((item_id, spec.kind))  # type: ignore[arg-type]
    t2 = time.perf_counter()
    insert_items(db, world, plan.waiting, policy, START)
    t3 = time.perf_counter()
    analyze(db)
    t4 = time.perf_counter()
    return world, {"agents_s": round(t1 - t0, 2), "held_items": len(held_specs),
                   "held_items_s": round(t2 - t1, 2), "waiting_items": len(plan.waiting),
                   "waiting_items_s": round(t3 - t2, 2), "analyze_s": round(t4 - t3, 2),
                   "total_s": round(t4 - t0, 2)}


class StatementCounter:
    """Count SQL statements sent to the database (bar BEGIN, SET LOCAL and COMMIT).

    On PostgreSQL not every statement is a round trip of its own: BEGIN travels with
    a transaction's first statement, and the event rows and an arrival's re-check
    with its COMMIT (``contactcenter/db_postgres.py``).
    """

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.local = threading.local()
        event.listen(db.engine, "before_cursor_execute", self._on)

    def _on(self, *_args: Any) -> None:
        self.count += 1


def _accept(db: Database, decisions: list[engine.Decision], now: dt.datetime,
            policy: RoutingPolicy, world: World, latencies: list[float]) -> None:
    for d in decisions:
        if d.action == "assign":
            world.held.setdefault(d.agent_id, []).append((d.item_id, d.kind))
            continue
        t0 = time.perf_counter()
        with db.session() as s:
            engine.accept_offer(s, d.offer_id, d.agent_id, now, policy)  # type: ignore[arg-type]
            engine.commit_and_settle(s, now, policy)
        latencies.append(time.perf_counter() - t0)
        world.held.setdefault(d.agent_id, []).append((d.item_id, d.kind))


def run_decisions(db: Database, world: World, plan: Plan, policy: RoutingPolicy,
                  cycles: int, warmup: int, agent_ids: list[int] | None = None,
                  seed_: int = SEED + 1, counter: StatementCounter | None = None,
                  start: dt.datetime = START) -> dict[str, Any]:
    """Alternate an agent freeing up and an item arriving; time each decision transaction."""
    rng = random.Random(seed_)
    agents = list(agent_ids if agent_ids is not None else world.agent_ids)
    rng.shuffle(agents)
    lat: dict[str, list[float]] = {"agent_frees": [], "arrival": []}
    accept_lat: list[float] = []
    offers = Counter[str]()
    statements = Counter[str]()
    decision_time = 0.0
    now = start
    wall0 = time.perf_counter()
    for cycle in range(warmup + cycles):
        timed = cycle >= warmup
        if cycle == warmup:
            wall0 = time.perf_counter()
            decision_time = 0.0
        now += TICK
        # An agent frees a slot: complete one thing they hold -> match_agent.
        agent = agents[cycle % len(agents)]
        held = world.held.get(agent) or []
        if held:
            item_id, _held_kind = held.pop(rng.randrange(len(held)))
            before = counter.count if counter else 0
            t0 = time.perf_counter()
            with db.session() as s:
                found = engine.complete_item(s, item_id, now, policy, wrap_up=False)
                found.merge(engine.commit_and_settle(s, now, policy))
            elapsed = time.perf_counter() - t0
            if timed:
                decision_time += elapsed
                lat["agent_frees"].append(elapsed)
                offers["agent_frees"] += len(found.decisions)
                if counter:
                    statements["agent_frees"] += counter.count - before
            _accept(db, found.decisions, now, policy, world, accept_lat if timed else [])
        # An item arrives -> enqueue_item + match_item.
        spec_customer = rng.choice(plan.customers)
        kind = _kind(rng)
        queue = rng.randrange(len(QUEUES))
        before = counter.count if counter else 0
        t0 = time.perf_counter()
        with db.session() as s:
            queued = engine.enqueue_item(
                s, kind=kind, channel=CHANNEL_OF[kind], queue_id=world.queue_ids[queue],
                now=now, policy=policy, customer_id=world.customer_ids[spec_customer.index])
            found = queued.match.merge(engine.commit_and_settle(s, now, policy))
        elapsed = time.perf_counter() - t0
        if timed:
            decision_time += elapsed
            lat["arrival"].append(elapsed)
            offers["arrival"] += len(found.decisions)
            if counter:
                statements["arrival"] += counter.count - before
        _accept(db, found.decisions, now, policy, world, accept_lat if timed else [])
    wall = time.perf_counter() - wall0
    every = lat["agent_frees"] + lat["arrival"]
    n = len(every)
    by_op = {}
    for op, values in lat.items():
        by_op[op] = {"n": len(values), "offers": offers[op], **latency_figures(values)}
        if counter and values:
            by_op[op]["sql_statements_per_decision"] = round(statements[op] / len(values), 2)
    return {
        "_latencies": every,
        "n": n,
        "decisions_per_s": round(n / decision_time, 1),
        **latency_figures(every),
        "offers_per_s": round(sum(offers.values()) / decision_time, 1),
        "by_operation": by_op,
        "accept": {"n": len(accept_lat), **latency_figures(accept_lat)},
        "cycles_per_s_with_accepts": round(cycles / wall, 1),
        "elapsed_s": round(wall, 2),
    }


_FORKED: dict[str, Any] = {}


def _router_process(index: int) -> dict[str, Any]:
    """One router process (forked): its own connections, its own slice of agents."""
    db, world, plan, policy, slices, cycles, warmup, start, gate = (
        _FORKED[k] for k in ("db", "world", "plan", "policy", "slices", "cycles", "warmup",
                             "start", "gate"))
    db.engine.dispose(close=False)  # never share the parent's pooled connections
    gate.wait()
    t0 = time.time()
    result = run_decisions(db, world, plan, policy, cycles, warmup, agent_ids=slices[index],
                           seed_=SEED + 10 + index, start=start)
    result["window"] = (time.time() - result["elapsed_s"], time.time())
    result["started"] = t0
    result["latencies_s"] = result.pop("_latencies")
    return result


def run_concurrent(db: Database, world: World, plan: Plan, policy: RoutingPolicy,
                   workers: int, cycles: int, warmup: int, start: dt.datetime
                   ) -> dict[str, Any]:
    """The same cycles from several router processes at once, as production runs them.

    Web processes and workers route concurrently; separate processes (not
    threads, which share one interpreter lock) each with their own connection
    and their own agents. Latency stays per decision transaction; throughput is
    all routers' decisions over the span from the first timed decision to the
    last (that span also holds their accepts).
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    _FORKED.update(db=db, world=world, plan=plan, policy=policy,
                   slices=[world.agent_ids[w::workers] for w in range(workers)],
                   cycles=cycles, warmup=warmup, start=start, gate=ctx.Barrier(workers))
    t0 = time.perf_counter()
    try:
        with ctx.Pool(workers) as pool:
            done = pool.map(_router_process, range(workers))
    finally:
        _FORKED.clear()
    wall = time.perf_counter() - t0
    total = sum(r["n"] for r in done)
    window = max(r["window"][1] for r in done) - min(r["window"][0] for r in done)
    every = [x for r in done for x in r.pop("latencies_s")]
    return {"routers": workers, "mode": "separate processes, one connection each",
            "n": total, "decisions_per_s": round(total / window, 1),
            "decisions_per_s_note": "decision transactions of all routers / span of their "
                                    "timed windows (accept transactions run in it too)",
            **latency_figures(every),
            "per_router_decisions_per_s_of_latency": [r["decisions_per_s"] for r in done],
            "by_operation": {op: {"n": sum(r["by_operation"][op]["n"] for r in done),
                                  "p99_ms_worst_router": max(r["by_operation"][op].get(
                                      "p99_ms", 0) for r in done)}
                             for op in ("agent_frees", "arrival")},
            "elapsed_s": round(wall, 2)}


def check_invariants(db: Database) -> dict[str, int]:
    """Count violations: over capacity, loads out of step with held items."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        over = conn.execute(text(
            "SELECT count(*) FROM agent_capacities WHERE load > maximum")).scalar_one()
        drift = conn.execute(text(
            "SELECT count(*) FROM agent_capacities c WHERE c.load <> (SELECT count(*) FROM "
            "routing_items i WHERE i.agent_id = c.user_id AND i.kind = c.kind AND i.state IN "
            "('offered', 'assigned'))")).scalar_one()
        waiting = conn.execute(text(
            "SELECT count(*) FROM routing_items WHERE state = 'waiting'")).scalar_one()
    return {"over_capacity": over, "load_mismatches": drift, "waiting_after": waiting}


def measure_backend(backend: str, args: argparse.Namespace, n_agents: int, n_waiting: int,
                    plan: Plan) -> tuple[dict[str, Any], str | None]:
    """Both policies on fresh databases of one backend; the FIFO one under ``baseline``."""
    version = None
    out: dict[str, Any] = {}
    policies = [("value", engine.default_policy()), ("fifo", engine.fifo_policy())]
    if args.async_offers:
        policies = [(name, dataclasses.replace(p, async_offers=True)) for name, p in policies]
    for name, policy in policies:
        if backend == "sqlite":
            ctx = sqlite_database("bench-routing-")
        else:
            ctx = postgres_database(args.postgres_url, "bench_routing_")
        with ctx as opened:
            db, where = opened[0], opened[1]
            if backend == "postgres":
                version = opened[2]
            print(f"[{backend} {name}] seeding {n_agents} agents, {n_waiting} waiting",
                  file=sys.stderr)
            plan_copy = build_plan(n_agents, n_waiting)  # the held specs get agent ids
            world, seeded = seed(db, plan_copy, policy)
            counter = StatementCounter(db)
            print(f"[{backend} {name}] seeded in {seeded['total_s']} s; deciding",
                  file=sys.stderr)
            figures = run_decisions(db, world, plan_copy, policy, args.n, args.warmup,
                                    counter=counter)
            figures.pop("_latencies")
            figures = {"database": where, "policy": name, "commit_mode": commit_mode(policy),
                       "agents": n_agents,
                       "waiting": n_waiting, **figures, "seed": seeded,
                       "invariants": check_invariants(db)}
            if backend == "postgres" and args.workers > 1 and not args.skip_concurrent:
                print(f"[{backend} {name}] {args.workers} concurrent workers", file=sys.stderr)
                later = START + TICK * (args.n + args.warmup + 10)
                figures["concurrent"] = run_concurrent_at(db, world, plan_copy, policy,
                                                          args, later)
                figures["concurrent"]["invariants"] = check_invariants(db)
            out[name] = figures
    result = out["value"]
    concurrent = result.pop("concurrent", None)
    fifo_concurrent = out["fifo"].pop("concurrent", None)
    if concurrent is not None and fifo_concurrent is not None:
        concurrent["baseline"] = fifo_concurrent
        concurrent["ratio_to_baseline"] = round(concurrent["decisions_per_s"]
                                                / fifo_concurrent["decisions_per_s"], 3)
    result["baseline"] = out["fifo"]
    result["ratio_to_baseline"] = round(result["decisions_per_s"]
                                        / out["fifo"]["decisions_per_s"], 3)
    return result, version, concurrent  # type: ignore[return-value]


def commit_mode(policy: RoutingPolicy) -> str:
    """How offer-only transactions commit on PostgreSQL under this policy."""
    return ("offer-only transactions asynchronous, the rest synchronous"
            if policy.async_offers else "all synchronous")


def run_concurrent_at(db: Database, world: World, plan: Plan, policy: RoutingPolicy,
                      args: argparse.Namespace, start: dt.datetime) -> dict[str, Any]:
    # Each router runs the full ``--n`` cycles: with a share of them, two routers' timed
    # windows lasted about 2 s, and the skew of their starts and ends (forks, barrier,
    # the last accepts) weighed on the span that divides their decisions. Each also runs
    # the full ``--warmup``: its connection is new, and prepares the statements the
    # engine sends (one per queue and kind) as it first meets them.
    return run_concurrent(db, world, plan, policy, args.workers, args.n, args.warmup, start)


def run_size(args: argparse.Namespace, n_agents: int, n_waiting: int, backends: list[str]
             ) -> tuple[dict[str, Any], str | None]:
    plan = build_plan(n_agents, n_waiting)
    report: dict[str, Any] = {}
    version = None
    for backend in backends:
        try:
            result, v, concurrent = measure_backend(backend, args, n_agents, n_waiting, plan)
            report[backend] = result
            if concurrent is not None:
                report[f"{backend}_concurrent"] = concurrent
            version = v or version
        except ConnectionError as exc:
            reason = f"PostgreSQL not reachable: {exc}"
            report[backend] = ({"skipped": False, "error": reason}
                               if os.environ.get("CI") == "true"
                               else {"skipped": True, "reason": reason})
    return report, version


def print_table(report: dict[str, Any]) -> None:
    sizes = report.get("by_waiting") or {str(report["workload"]["waiting"]): report}
    print(f"routing benchmark: {report['workload']['agents']} agents")
    header = (f"{'waiting':>8} {'backend':<20}{'dec/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
              f"{'p99 ms':>9}{'fifo dec/s':>12}{'ratio':>8}")
    print(header)
    print("-" * len(header))
    for size, block in sizes.items():
        for key in ("sqlite", "postgres", "postgres_concurrent"):
            r = block.get(key)
            if not r:
                continue
            if "decisions_per_s" not in r:
                print(f"{size:>8} {key:<20} skipped: {r.get('reason') or r.get('error')}")
                continue
            base = r.get("baseline", {})
            print(f"{size:>8} {key:<20}{r['decisions_per_s']:>9.1f}{r['p50_ms']:>9.2f}"
                  f"{r['p95_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                  f"{base.get('decisions_per_s', float('nan')):>12.1f}"
                  f"{r.get('ratio_to_baseline', float('nan')):>8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--waiting", type=int, default=50000)
    parser.add_argument("--n", type=int, default=1000,
                        help="timed cycles (each: one agent frees up, one item arrives)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed cycles first")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--sweep", action="store_true",
                        help="run at 5,000 and at --waiting (default 50,000) waiting items")
    parser.add_argument("--taskrouter-limits", action="store_true",
                        help="15,000 agents and 500,000 waiting items (PostgreSQL; slow to seed)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="concurrent PostgreSQL router processes for postgres_concurrent, "
                             "each running --n cycles (default: the machine's cores; 1: off)")
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--async-offers", action="store_true",
                        help="commit offer-only transactions asynchronously "
                             "(policy async_offers on)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    import_models()
    loop_at_start = python_loop_seconds()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.taskrouter_limits:
        args.agents, args.waiting = 15_000, 500_000
        if args.backends == parser.get_default("backends"):
            backends = ["postgres"]
    report: dict[str, Any] = {"benchmark": "routing", "machine": {},
                              "workload": {"agents": args.agents, "waiting": args.waiting,
                                           "cycles": args.n, "warmup": args.warmup,
                                           "seed": SEED, "queues": [q[0] for q in QUEUES],
                                           "kind_mix": dict(KIND_MIX),
                                           "customers": CUSTOMERS,
                                           "held_per_agent": "10 tickets + 1 call or 3 chats",
                                           "backlog_hours": BACKLOG_HOURS,
                                           "async_offers_flag": args.async_offers}}
    version = None
    if args.sweep:
        report["by_waiting"] = {}
        for size in sorted({5000, args.waiting}):
            block, v = run_size(args, args.agents, size, backends)
            report["by_waiting"][str(size)] = block
            version = v or version
        flat: dict[str, Any] = {}
        small, large = (report["by_waiting"][str(s)] for s in sorted({5000, args.waiting}))
        for key in backends:
            if "p50_ms" in small.get(key, {}) and "p50_ms" in large.get(key, {}):
                flat[key] = {m: round(large[key][m] / small[key][m], 3)
                             for m in ("p50_ms", "p99_ms")}
                flat[key]["decisions_per_s"] = round(
                    large[key]["decisions_per_s"] / small[key]["decisions_per_s"], 3)
        report["flatness_large_over_small"] = flat
    else:
        block, version = run_size(args, args.agents, args.waiting, backends)
        report.update(block)
    report["machine"] = machine(version, loop_at_start)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
