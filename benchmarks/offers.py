"""Measure ranking offers for one customer and mining rules over a million purchases.

Usage::

    .venv/bin/python benchmarks/offers.py --json                 # 500 products, 1,000,000 rows
    .venv/bin/python benchmarks/offers.py --quick --json         # 100,000 rows, fewer samples
    .venv/bin/python benchmarks/offers.py --backends sqlite --json

The world, bulk-loaded with Core inserts (SQLite) or COPY (PostgreSQL):
``--products`` products in clusters of ten (so co-purchases have structure) with
prices and margins, plan families of three ranks; ``--customers`` customers who
bought ``--purchases`` rows, mostly inside one home cluster; marketing
cross-sell relations inside each cluster and up-sells along each family;
contracts (some due for renewal), open tickets (some complaints) and a history
of offer impressions with outcomes.

Figures per backend:

- ``mine_sql`` / ``mine_python``: seconds to mine rules over every purchase
  (``mine_rules``: counting, thresholds and storing proposed rules), counting
  pairs in the database or in Python; the top rules are then approved so the
  ranking uses them;
- ``recompute_values``: seconds to rescore every customer (tiers, LTV);
- ``rank``: p50/p95 of ``rank_for_customer`` for random customers (eligibility
  reads, candidates from relations, approved rules and renewals, outcome
  stats, ranking), read-only;
- ``offers``: p50/p95 of ``offers_for_customer`` as the API calls it
  (ranking plus writing impressions, committed);
- ``floor``: p50/p95 of the bare read the ranking cannot avoid (the customer's
  owned products and the relations they trigger, two indexed queries), with
  ``ratio_to_floor`` = rank p50 / floor p50.

Figures are noisy: the machine is shared and has two cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import latency_figures, machine, psycopg_url  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from contactcenter.customers.models import Contract, Customer, Product, Purchase  # noqa: E402
from contactcenter.customers.value import recompute_values  # noqa: E402
from contactcenter.db import Database, import_models  # noqa: E402
from contactcenter.sales.config import SalesConfig  # noqa: E402
from contactcenter.sales.mining import mine_rules  # noqa: E402
from contactcenter.sales.models import (  # noqa: E402
    AssociationRule,
    OfferImpression,
    OfferRelation,
    OfferStat,
    RuleState,
)
from contactcenter.sales.service import offers_for_customer, rank_for_customer  # noqa: E402
from contactcenter.tickets.models import Ticket  # noqa: E402

DEFAULT_PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
BATCH = 50_000
CONFIG = SalesConfig(rule_min_support=0.002, rule_min_confidence=0.05, rule_min_lift=1.5,
                     rule_min_count=20, rule_max_proposed=2000)


@contextmanager
def sqlite_database(path: str) -> Iterator[tuple[Database, str, str | None]]:
    """A fresh SQLite file database with the product's schema."""
    if os.path.exists(path):
        os.remove(path)
    db = Database(f"sqlite:///{path}")
    db.create_all()
    try:
        yield db, f"file {path}", None
    finally:
        db.dispose()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[Database, str, str | None]]:
    """A throwaway PostgreSQL database with the product's schema, dropped at the end."""
    import psycopg
    from psycopg import sql

    admin = psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=3)
    name = f"bench_offers_{uuid.uuid4().hex[:10]}"
    with admin:
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = Database(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    try:
        db.create_all()
        yield db, f"throwaway database {name}", version
    finally:
        db.dispose()
        with psycopg.connect(psycopg_url(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- the world ---------------------------------------------------------------------------

def _rows_in_batches(rows: Iterator[dict[str, Any]], size: int = BATCH
                     ) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy(db: Database, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    """Load rows into PostgreSQL with COPY (text format)."""
    raw = db.engine.raw_connection()
    try:
        cur: Any = raw.cursor()
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _load(db: Database, backend: str, model: Any, rows: Iterator[dict[str, Any]],
          big: bool = False) -> None:
    """Insert rows: COPY for the big tables on PostgreSQL, Core inserts otherwise.

    Core inserts fill the columns' Python-side defaults (other packages' columns
    included), which COPY would not; the big tables get every column explicitly.
    """
    if backend == "postgres" and big:
        first = next(rows, None)
        if first is None:
            return
        columns = list(first)

        def tuples() -> Iterator[tuple[Any, ...]]:
            yield tuple(first[c] for c in columns)
            for r in rows:
                yield tuple(r[c] for c in columns)

        _copy(db, model.__tablename__, columns, tuples())
        return
    with db.engine.begin() as conn:
        for batch in _rows_in_batches(rows):
            conn.execute(insert(model), batch)


def build_world(db: Database, backend: str, args: argparse.Namespace, rng: random.Random
                ) -> dict[str, Any]:
    """Bulk-load products, customers, purchases, relations, contracts, tickets, impressions."""
    t0 = time.perf_counter()
    n_products, n_customers, n_rows = args.products, args.customers, args.purchases
    stamp = {"created_at": NOW, "updated_at": NOW}
    families = n_products // 30
    products = []
    for i in range(1, n_products + 1):
        family = f"fam{i % families}" if i <= families * 3 else None
        products.append({"id": i, "sku": f"SKU{i:05d}", "name": f"Product {i}",
                         "category": f"cluster{(i - 1) // 10}",
                         "price": Decimal(rng.randint(5, 500)),
                         "margin": Decimal(rng.randint(10, 80)) / 100, "currency": "USD",
                         "sellable": True, "plan_family": family,
                         "plan_rank": (i - 1) // families + 1 if family else None,
                         "pitch": "", **stamp})
    _load(db, backend, Product, iter(products))
    price = {p["id"]: p["price"] for p in products}
    _load(db, backend, Customer, ({"id": c, "name": f"Customer {c}", "notes": "",
                                   "marketing_opt_out": c % 50 == 0, "value_reason": "",
                                   **stamp} for c in range(1, n_customers + 1)), big=True)
    clusters = n_products // 10

    def purchases() -> Iterator[dict[str, Any]]:
        per = n_rows / n_customers
        row = 0
        for c in range(1, n_customers + 1):
            home = rng.randrange(clusters)
            count = max(1, int(rng.expovariate(1 / per))) if c < n_customers else n_rows - row
            count = min(count, n_rows - row)
            for _ in range(count):
                row += 1
                pid = (home * 10 + rng.randrange(10) + 1 if rng.random() < 0.7
                       else rng.randrange(n_products) + 1)
                yield {"id": row, "external_id": f"B{row}", "customer_id": c, "product_id": pid,
                       "quantity": 1, "amount": price[pid], "currency": "USD",
                       "purchased_at": NOW - dt.timedelta(days=rng.randint(0, 900)), **stamp}
            if row >= n_rows:
                return

    _load(db, backend, Purchase, purchases(), big=True)
    relations = []
    rid = 0
    for cl in range(clusters):
        base = cl * 10 + 1
        for j in range(3):
            rid += 1
            relations.append({"id": rid, "kind": "cross_sell", "source_product_id": base + j,
                              "target_product_id": base + j + 3, "script": "", "active": True,
                              "created_by_user_id": None, **stamp})
    for f in range(families):
        for rank in (1, 2):
            rid += 1
            relations.append({"id": rid, "kind": "up_sell",
                              "source_product_id": f + (rank - 1) * families + 1,
                              "target_product_id": f + rank * families + 1, "script": "",
                              "active": True, "created_by_user_id": None, **stamp})
    _load(db, backend, OfferRelation, iter(relations))
    today = NOW.date()
    _load(db, backend, Contract, ({
        "id": k, "external_id": f"K{k}", "customer_id": rng.randint(1, n_customers),
        "product_id": rng.randint(1, n_products), "level": rng.choice(["Gold", "Silver"]),
        "starts_on": today - dt.timedelta(days=300),
        "ends_on": today + dt.timedelta(days=rng.randint(-90, 300)), "response_minutes": 240,
        "value": Decimal(rng.randint(100, 2000)), "currency": "USD", **stamp}
        for k in range(1, n_customers // 5 + 1)))
    _load(db, backend, Ticket, ({
        "id": t, "number": t, "subject": "Formal complaint" if t % 20 == 0 else "Question",
        "status": "open" if t % 3 else "closed", "priority": "normal", "channel": "email",
        "customer_id": rng.randint(1, n_customers), "reply_token": f"r{t}",
        "last_activity_at": NOW, "reopen_count": 0, **stamp}
        for t in range(1, n_customers // 5 + 1)))
    outcomes = ["accepted", "declined", "not_relevant", None]
    _load(db, backend, OfferImpression, ({
        "id": i, "customer_id": rng.randint(1, n_customers),
        "product_id": (pid := rng.randint(1, n_products)), "source": "relation",
        "relation_id": None, "rule_id": None, "contract_id": None, "stat_key": f"product:{pid}",
        "user_id": None, "channel": "phone", "tier": rng.choice(["A", "B", "C"]),
        "probability": 0.1, "expected_value": Decimal("1.00"), "script": "", "reason": "",
        "shown_at": NOW - dt.timedelta(days=rng.randint(0, 120)),
        "outcome": (o := rng.choice(outcomes)),
        "outcome_at": NOW - dt.timedelta(days=rng.randint(0, 120)) if o else None,
        "outcome_user_id": None} for i in range(1, n_rows // 10 + 1)), big=True)
    stats = []
    for pid in range(1, n_products + 1):
        for tier in ("", "A", "B", "C"):
            stats.append({"key": f"product:{pid}", "tier": tier,
                          "accepted": rng.randint(0, 50), "declined": rng.randint(0, 200),
                          "not_relevant": rng.randint(0, 50)})
    _load(db, backend, OfferStat, iter(stats))
    if backend == "postgres":
        with db.engine.begin() as conn:
            for table in ("products", "customers", "purchases", "offer_relations", "contracts",
                          "tickets", "offer_impressions"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"load_s": round(time.perf_counter() - t0, 2)}


# --- measurements ------------------------------------------------------------------------

def _timed(func: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = func()
    return time.perf_counter() - t0, result


def measure(db: Database, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Mine, rescore, then time ranking, the API path and the floor for random customers."""
    rng = random.Random(args.seed)
    out: dict[str, Any] = {"n": args.n}
    for method in ("sql", "python"):
        with db.session() as session:
            session.execute(AssociationRule.__table__.delete())
            session.commit()
            seconds, result = _timed(lambda m=method, s=session: mine_rules(s, NOW, CONFIG, m))
            session.commit()
        out[f"mine_{method}"] = {"seconds": round(seconds, 3), "baskets": result.baskets,
                                 "rules": result.created}
    out["mine_ratio_python_to_sql"] = round(out["mine_python"]["seconds"]
                                            / out["mine_sql"]["seconds"], 3)
    with db.session() as session:
        top = list(session.scalars(select(AssociationRule.id)
                                   .order_by(AssociationRule.lift.desc()).limit(500)))
        session.execute(update(AssociationRule).where(AssociationRule.id.in_(top))
                        .values(state=RuleState.APPROVED))
        session.commit()
        seconds, result = _timed(lambda: recompute_values(session, NOW))
        session.commit()
    out["recompute_values"] = {"seconds": round(seconds, 3), "customers": result.customers,
                               "tiers": result.tiers}
    customers = [rng.randint(1, args.customers) for _ in range(args.n + args.warmup)]
    rank_t, offers_t, floor_t, counts = [], [], [], []
    with db.session() as session:
        for i, cid in enumerate(customers):
            customer = session.get(Customer, cid)
            assert customer is not None
            seconds, ranking = _timed(lambda c=customer: rank_for_customer(
                session, c, NOW, CONFIG, 3))
            if i >= args.warmup:
                rank_t.append(seconds)
                counts.append(len(ranking.offers) + len(ranking.excluded))
            seconds, _ = _timed(lambda c=cid: _floor(session, c))
            if i >= args.warmup:
                floor_t.append(seconds)
            session.rollback()
        for i, cid in enumerate(customers):
            t0 = time.perf_counter()
            offers_for_customer(session, cid, None, channel="api", limit=3, now=NOW,
                                config=CONFIG)
            session.commit()
            if i >= args.warmup:
                offers_t.append(time.perf_counter() - t0)
    out["rank"] = latency_figures(rank_t)
    out["rank"]["mean_candidates"] = round(sum(counts) / len(counts), 1) if counts else 0
    out["offers"] = latency_figures(offers_t)
    out["floor"] = latency_figures(floor_t)
    out["ratio_to_floor"] = round(out["rank"]["p50_ms"] / out["floor"]["p50_ms"], 2) \
        if out["floor"].get("p50_ms") else None
    out["rank_per_s"] = round(len(rank_t) / sum(rank_t), 1) if rank_t else 0
    return out


def _floor(session: Any, customer_id: int) -> list[int]:
    owned = list(session.scalars(select(Purchase.product_id)
                                 .where(Purchase.customer_id == customer_id).distinct()))
    return list(session.scalars(select(OfferRelation.target_product_id)
                                .where(OfferRelation.source_product_id.in_(owned))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=500, help="timed customers per figure")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--sqlite-path", default="/tmp/bench_offers.db")
    parser.add_argument("--quick", action="store_true",
                        help="100,000 purchases, 10,000 customers, 100 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.purchases, args.customers, args.n, args.warmup = 100_000, 10_000, 100, 10
    import_models()
    report: dict[str, Any] = {"benchmark": "offers", "products": args.products,
                              "purchases": args.purchases, "customers": args.customers,
                              "n": args.n}
    pg_version = None
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        rng = random.Random(args.seed)
        try:
            ctx = (sqlite_database(args.sqlite_path) if backend == "sqlite"
                   else postgres_database(args.postgres_url))
            with ctx as (db, where, version):
                pg_version = version or pg_version
                figures = build_world(db, backend, args, rng)
                figures.update(measure(db, backend, args))
                figures["database"] = where
                report[backend] = figures
        except Exception as exc:  # noqa: BLE001 - report a missing backend, keep the others
            report[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    report["baseline"] = {b: report[b]["floor"] for b in ("sqlite", "postgres")
                          if isinstance(report.get(b), dict) and "floor" in report[b]}
    report["ratio_to_baseline"] = {b: report[b]["ratio_to_floor"] for b in report["baseline"]}
    report["machine"] = machine(pg_version)
    report["note"] = "shared 2-core machine: figures are noisy"
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        buf = io.StringIO()
        json.dump(report, buf, indent=2, default=str)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
