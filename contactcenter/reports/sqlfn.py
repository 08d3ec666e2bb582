"""Portable SQL pieces the report queries need: durations, hour and day buckets, percentiles.

PostgreSQL and SQLite disagree on date arithmetic and SQLite has no
``percentile_cont``, so each helper picks the dialect's form. Percentiles on
SQLite are computed in Python over the sorted values with the same linear
interpolation ``percentile_cont`` uses, so both databases return the same
figure for the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Integer, cast, func, select
from sqlalchemy.orm import Session


def dialect(session: Session) -> str:
    """Return the session's database dialect name (``postgresql`` or ``sqlite``)."""
    return session.get_bind().dialect.name


def seconds_between(session: Session, later: Any, earlier: Any) -> Any:
    """Return a SQL expression for ``later - earlier`` in seconds (a float)."""
    if dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def hour_of(session: Session, column: Any) -> Any:
    """Return a SQL expression for the UTC hour of day (0-23) of a timestamp."""
    if dialect(session) == "postgresql":
        return cast(func.extract("hour", func.timezone("UTC", column)), Integer)
    return cast(func.strftime("%H", column), Integer)


def day_of(session: Session, column: Any) -> Any:
    """Return a SQL expression for the UTC date of a timestamp, as ``YYYY-MM-DD`` text."""
    if dialect(session) == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """Return the linearly interpolated percentile of sorted values (``percentile_cont``)."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(values[low])
    return float(values[low] + (values[high] - values[low]) * (position - low))


def distribution(session: Session, expr: Any, where: Sequence[Any],
                 joins: Sequence[tuple[Any, Any]] = (), source: Any = None) -> dict[str, Any]:
    """Return count, mean, median and 90th percentile (seconds) of ``expr`` over the rows.

    On PostgreSQL one aggregate query; on SQLite the values are read in order
    and interpolated in Python.
    """
    def base(*columns: Any) -> Any:
        query = select(*columns)
        if source is not None:
            query = query.select_from(source)
        for target, on in joins:
            query = query.join(target, on)
        return query.where(*where)

    if dialect(session) == "postgresql":
        row = session.execute(base(
            func.count(expr), func.avg(expr),
            func.percentile_cont(0.5).within_group(expr),
            func.percentile_cont(0.9).within_group(expr))).one()
        count, mean, median, p90 = row
        return _rounded(int(count or 0), mean, median, p90)
    values = [float(v) for v in session.scalars(
        base(cast(expr, Float)).where(expr.is_not(None)).order_by(expr)) if v is not None]
    mean = sum(values) / len(values) if values else None
    return _rounded(len(values), mean, percentile_cont(values, 0.5), percentile_cont(values, 0.9))


def _rounded(count: int, mean: Any, median: Any, p90: Any) -> dict[str, Any]:
    def r(value: Any) -> float | None:
        return None if value is None else round(float(value), 1)

    return {"count": count, "mean_seconds": r(mean), "median_seconds": r(median),
            "p90_seconds": r(p90)}
