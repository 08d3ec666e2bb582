"""Replay a synthetic contact-center day through the routing engine: value-based vs FIFO.

Usage::

    .venv/bin/python benchmarks/simulate_day.py --json [--seed 42] [--agents 30]

One day (08:00-20:00) is generated from a seed: arrivals per channel and hour on
an intraday curve (calls and chats peak late morning and early afternoon,
emails arrive flatter), lognormal handle times per channel, agents on three
shifts who log in and out with ``set_presence``, customers in value tiers (tier A
is ~15 % of customers and of contacts), and a patience per caller/chatter after
which they abandon if not answered. The same day is replayed on a fresh SQLite
database through the real engine (``enqueue_item``, ``accept_offer``,
``complete_item``, ``abandon_item``, ``set_presence``, ``route`` every 10 s for
offer expiry, wrap-up ends, rescoring and rule widening) on a simulated clock,
once with ``default_policy()`` (value-based) and once with ``fifo_policy()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _routing_world import (
    AgentSpec,
    CustomerSpec,
    machine,
    make_customers,
    seed_static,
    sqlite_database,
)
from sqlalchemy import text

from contactcenter.db import Database, import_models
from contactcenter.routing import engine
from contactcenter.routing.policy import RoutingPolicy

DAY = dt.datetime(2026, 3, 3, 8, 0, tzinfo=dt.UTC)
HOURS = 12
TICK = 10  # seconds between periodic routing passes
CHANNEL = {"call": "voice", "chat": "chat", "ticket": "email"}
# contacts per hour, 08:00 .. 19:00
CURVE = {
    "call": (60, 95, 110, 100, 80, 75, 95, 100, 85, 65, 45, 30),
    "chat": (20, 35, 45, 45, 40, 38, 42, 45, 40, 32, 25, 18),
    "ticket": (45, 50, 50, 48, 45, 42, 42, 40, 38, 35, 30, 25),
}
HANDLE = {"call": (300, 0.6), "chat": (540, 0.6), "ticket": (420, 0.8)}  # median s, sigma
PATIENCE = {"call": 150, "chat": 360}  # mean seconds (exponential)
SHIFTS = ((8, 14), (10, 18), (14, 20))
QUEUES_USED = ("support-en", "billing-en")


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds since DAY
    kind: str
    queue: int  # index into QUEUES_USED
    customer: int  # customer index
    handle: float
    patience: float | None


def build_day(seed: int, customers: list[CustomerSpec]) -> list[Arrival]:
    rng = random.Random(seed)
    arrivals = []
    for kind, per_hour in CURVE.items():
        for hour, rate in enumerate(per_hour):
            t = hour * 3600.0
            while True:
                t += rng.expovariate(rate / 3600.0)
                if t >= (hour + 1) * 3600:
                    break
                median, sigma = HANDLE[kind]
                arrivals.append(Arrival(
                    t, kind, rng.randrange(len(QUEUES_USED)), rng.randrange(len(customers)),
                    rng.lognormvariate(math.log(median), sigma),
                    rng.expovariate(1 / PATIENCE[kind]) if kind in PATIENCE else None))
    arrivals.sort(key=lambda a: a.at)
    return arrivals


def build_agents(seed: int, n: int, low: int = 3) -> tuple[list[AgentSpec], list[tuple[int, int]]]:
    """Agents staffing both queues, skill levels ``low``..5, one of three shifts."""
    rng = random.Random(seed + 1)
    agents, shifts = [], []
    for i in range(n):
        skills = {"tech": rng.randint(low, 5), "billing": rng.randint(low, 5)}
        agents.append(AgentSpec(i, "en", skills, [0, 1]))  # support-en, billing-en
        shifts.append(SHIFTS[i % len(SHIFTS)])
    return agents, shifts


class Simulation:
    def __init__(self, db: Database, policy: RoutingPolicy, agents: list[AgentSpec],
                 shifts: list[tuple[int, int]], customers: list[CustomerSpec],
                 arrivals: list[Arrival]) -> None:
        self.db, self.policy = db, policy
        self.world = seed_static(db, agents, customers, policy, DAY)
        self.shifts, self.arrivals, self.customers = shifts, arrivals, customers
        self.events: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.handle: dict[int, float] = {}  # item id -> handle seconds
        self.logged_in: dict[int, float] = {}
        self.staffed_seconds = 0.0
        self.calls = 0

    def at(self, when: float, kind: str, data: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, kind, data))

    def now(self, t: float) -> dt.datetime:
        return DAY + dt.timedelta(seconds=t)

    def accept(self, t: float, decisions: list[engine.Decision]) -> None:
        """Agents accept offers at once; the work is done after its handle time."""
        for d in decisions:
            if d.action == "offer":
                with self.db.session() as s:
                    try:
                        engine.accept_offer(s, d.offer_id, d.agent_id, self.now(t), self.policy)
                    except Exception:  # noqa: BLE001 - withdrawn or expired meanwhile
                        s.rollback()
                        continue
                    more = engine.commit_and_settle(s, self.now(t), self.policy)
                self.accept(t, more.decisions)
            self.at(t + self.handle.get(d.item_id, 300), "complete", d.item_id)

    def run(self) -> None:
        for i, (start, end) in enumerate(self.shifts):
            self.at((start - 8) * 3600.0, "login", self.world.agent_ids[i])
            self.at((end - 8) * 3600.0, "logout", self.world.agent_ids[i])
        for a in self.arrivals:
            self.at(a.at, "arrive", a)
        for k in range(HOURS * 3600 // TICK + 1):
            self.at(float(k * TICK), "tick", None)
        end = HOURS * 3600.0 + 3 * 3600  # let the last work finish
        while self.events:
            t, _seq, kind, data = heapq.heappop(self.events)
            if t > end:
                break
            now = self.now(t)
            self.calls += 1
            with self.db.session() as s:
                if kind == "arrive":
                    a: Arrival = data
                    queued = engine.enqueue_item(
                        s, kind=a.kind, channel=CHANNEL[a.kind],
                        queue_id=self.world.queue_ids[a.queue], now=now, policy=self.policy,
                        customer_id=self.world.customer_ids[a.customer])
                    item_id = queued.item.id
                    self.handle[item_id] = a.handle
                    found = queued.match.merge(engine.commit_and_settle(s, now, self.policy))
                    if a.patience is not None:
                        self.at(t + a.patience, "abandon", item_id)
                elif kind == "abandon":
                    state = s.execute(text("SELECT state FROM routing_items WHERE id = :i"),
                                      {"i": data}).scalar_one()
                    found = engine.MatchResult()
                    if state in ("waiting", "offered"):
                        found = engine.abandon_item(s, data, now, self.policy)
                    found.merge(engine.commit_and_settle(s, now, self.policy))
                elif kind == "complete":
                    found = engine.complete_item(s, data, now, self.policy)
                    found.merge(engine.commit_and_settle(s, now, self.policy))
                elif kind == "login":
                    self.logged_in[data] = t
                    found = engine.set_presence(s, data, "available", now, self.policy)
                    found.merge(engine.commit_and_settle(s, now, self.policy))
                elif kind == "logout":
                    self.staffed_seconds += t - self.logged_in.pop(data, t)
                    found = engine.set_presence(s, data, "offline", now, self.policy, "shift over")
                    found.merge(engine.commit_and_settle(s, now, self.policy))
                else:  # tick
                    found = engine.route(s, now, self.policy)
                    found.merge(engine.commit_and_settle(s, now, self.policy))
            self.accept(t, found.decisions)

    def report(self) -> dict[str, Any]:
        tiers = self.world.customer_tiers
        with self.db.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT kind, customer_id, wait_seconds, answered_at IS NOT NULL, "
                "abandoned_at IS NOT NULL, handle_seconds, enqueued_at, answered_at "
                "FROM routing_items")).all()
        targets = self.policy.default_rules.targets
        out: dict[str, Any] = {"by_channel": {}}
        answered_all, top_waits, waits = 0, [], []
        weighted_busy = 0.0
        for kind in ("call", "chat", "ticket"):
            mine = [r for r in rows if r[0] == kind]
            answered = [r for r in mine if r[3]]
            abandoned = [r for r in mine if r[4] and not r[3]]
            offered = len(answered) + len(abandoned)
            within = sum(1 for r in answered if (r[2] or 0) <= targets.get(kind, 60))
            kind_waits = [r[2] or 0 for r in answered]
            top = [r[2] or 0 for r in answered if tiers.get(r[1]) == "A"]
            out["by_channel"][kind] = {
                "arrived": len(mine), "answered": len(answered), "abandoned": len(abandoned),
                "service_level": round(within / offered, 4) if offered else None,
                "target_s": targets.get(kind, 60),
                "asa_s": round(sum(kind_waits) / len(kind_waits), 1) if kind_waits else None,
                "asa_top_tier_s": round(sum(top) / len(top), 1) if top else None,
                "abandonment": round(len(abandoned) / offered, 4) if offered else None,
            }
            answered_all += within
            waits += kind_waits
            top_waits += top
            cap = self.policy.capacity_for(kind)
            weighted_busy += sum((r[5] or 0) for r in answered) / cap
        live = [r for r in rows if r[0] in ("call", "chat")]
        live_answered = [r for r in live if r[3]]
        live_abandoned = [r for r in live if r[4] and not r[3]]
        live_offered = len(live_answered) + len(live_abandoned)
        live_within = sum(1 for r in live_answered
                          if (r[2] or 0) <= targets.get(r[0], 60))
        offered_all = sum(v["answered"] + v["abandoned"] for v in out["by_channel"].values())
        top_live = [r[2] or 0 for r in live_answered if tiers.get(r[1]) == "A"]
        all_live = [r[2] or 0 for r in live_answered]
        out["service_level"] = round(answered_all / offered_all, 4) if offered_all else None
        out["service_level_live"] = round(live_within / live_offered, 4) if live_offered else None
        out["asa_s"] = round(sum(waits) / len(waits), 1) if waits else None
        out["asa_top_tier_s"] = round(sum(top_waits) / len(top_waits), 1) if top_waits else None
        out["asa_live_s"] = round(sum(all_live) / len(all_live), 1) if all_live else None
        out["asa_live_top_tier_s"] = (round(sum(top_live) / len(top_live), 1)
                                      if top_live else None)
        out["abandonment"] = round(len(live_abandoned) / live_offered, 4) if live_offered else None
        out["occupancy"] = (round(weighted_busy / self.staffed_seconds, 4)
                            if self.staffed_seconds else None)
        return out


def simulate(policy: RoutingPolicy, agents: list[AgentSpec], shifts: list[tuple[int, int]],
             customers: list[CustomerSpec], arrivals: list[Arrival]) -> dict[str, Any]:
    with sqlite_database("bench-day-") as (db, where):
        t0 = time.perf_counter()
        sim = Simulation(db, policy, agents, shifts, customers, arrivals)
        sim.run()
        result = {"database": where, **sim.report(), "engine_calls": sim.calls,
                  "elapsed_s": round(time.perf_counter() - t0, 2)}
        result["engine_calls_per_s"] = round(sim.calls / result["elapsed_s"], 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--min-skill-level", type=int, default=3,
                        help="lowest agent skill level (1: some agents wait out the default "
                             "rules' 90 s skilled-agents step)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    import_models()
    rng = random.Random(args.seed)
    customers = make_customers(rng, args.customers)
    arrivals = build_day(args.seed, customers)
    agents, shifts = build_agents(args.seed, args.agents, args.min_skill_level)
    tier_share = sum(1 for c in customers if c.tier == "A") / len(customers)
    report: dict[str, Any] = {
        "benchmark": "simulate_day", "machine": machine(None),
        "day": {"seed": args.seed, "hours": f"08:00-{8 + HOURS}:00", "agents": args.agents,
                "shifts": [f"{a:02d}-{b:02d}" for a, b in SHIFTS],
                "min_skill_level": args.min_skill_level,
                "arrivals": {k: sum(1 for a in arrivals if a.kind == k) for k in CURVE},
                "n": len(arrivals), "customers": args.customers,
                "top_tier_share_customers": round(tier_share, 3),
                "top_tier_share_contacts": round(sum(
                    1 for a in arrivals if customers[a.customer].tier == "A") / len(arrivals), 3),
                "handle_median_s": {k: v[0] for k, v in HANDLE.items()},
                "patience_mean_s": PATIENCE, "route_every_s": TICK},
    }
    print("[value] simulating", file=sys.stderr)
    value = simulate(engine.default_policy(), agents, shifts, customers, arrivals)
    print("[fifo] simulating", file=sys.stderr)
    fifo = simulate(engine.fifo_policy(), agents, shifts, customers, arrivals)
    report["value"] = value
    report["baseline"] = fifo
    keys = ("service_level", "service_level_live", "asa_s", "asa_top_tier_s", "asa_live_s",
            "asa_live_top_tier_s", "abandonment", "occupancy")
    report["delta_value_minus_fifo"] = {
        k: (round(value[k] - fifo[k], 4) if value[k] is not None and fifo[k] is not None
            else None) for k in keys}
    report["ratio_to_baseline"] = {
        k: (round(value[k] / fifo[k], 3) if value[k] and fifo[k] else None)
        for k in ("asa_top_tier_s", "asa_live_top_tier_s", "asa_s", "service_level")}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for name, r in (("value", value), ("fifo", fifo)):
            print(f"{name:<6} SL {r['service_level']:.3f} ASA {r['asa_s']} s, top tier "
                  f"{r['asa_top_tier_s']} s, abandonment {r['abandonment']}, occupancy "
                  f"{r['occupancy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
