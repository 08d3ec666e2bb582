"""Helpers every benchmark shares: latency percentiles, the machine block, psycopg URLs."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import time
from typing import Any

from sqlalchemy.engine import make_url


def latency_figures(latencies: list[float]) -> dict[str, float]:
    """Return p50/p95/p99/max/mean in milliseconds of latencies given in seconds."""
    if not latencies:
        return {}
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 \
        else [ordered[0]] * 99
    return {"p50_ms": round(q[49] * 1000, 3), "p95_ms": round(q[94] * 1000, 3),
            "p99_ms": round(q[98] * 1000, 3), "max_ms": round(ordered[-1] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


def python_loop_seconds(iterations: int = 3_000_000, runs: int = 3) -> float:
    """Seconds one core takes for a fixed pure-Python loop (best of ``runs``).

    Machines of the same kind differ (seen here: the routing benchmark's FIFO baseline
    ran 2.1 to 2.6 times slower from one day to the next), so figures from different
    runs compare only with this beside them.
    """
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def machine(pg_version: str | None, loop_at_start: float | None = None) -> dict[str, Any]:
    """Return what the figures were measured on, with the machine's speed at the end
    (and at the start, when measured then) as ``python_loop_3m_s``."""
    import psycopg
    import sqlalchemy

    speed = {"end": python_loop_seconds()}
    if loop_at_start is not None:
        speed["start"] = loop_at_start
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "sqlite_version": sqlite3.sqlite_version,
            "sqlalchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__,
            "postgres_server_version": pg_version, "python_loop_3m_s": speed}


def psycopg_url(url: str, database: str | None = None) -> str:
    """Turn a SQLAlchemy PostgreSQL URL into one psycopg accepts (optionally another database)."""
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)
