"""Score what each customer is worth: revenue windows, frequency, recency, lifetime value, tier.

The method, so that anyone can check a figure by hand:

- **Revenue** is every purchase's ``amount`` at its ``purchased_at`` plus every
  contract's ``value`` at its ``starts_on``. ``revenue_short`` and ``revenue_long``
  sum what falls inside the two windows (``CONTACTCENTER_SALES_VALUE_WINDOWS_DAYS``,
  90 and 365 days by default, counted back from now); ``revenue_total`` is all
  of it.
- **Frequency** is purchases per year over the long window
  (``purchases in window * 365 / window days``); **recency** is the last
  purchase's time.
- **Lifetime value** is revenue to date plus the expected future revenue of the
  simple retention model: with a yearly revenue rate ``m``, a yearly retention
  probability ``r`` and a discount rate ``d`` the future is worth
  ``m * r / (1 + d - r)`` (the geometric sum of ``m * r^t / (1 + d)^t`` for
  t = 1, 2, ...). ``m`` is the long window's revenue per year of the customer's
  tenure inside that window (a customer who arrived 120 days ago is not judged
  on 365 days), counting at least the short window so that one early purchase
  is not extrapolated wildly.
- **Tiers** come from the revenue distribution, not fixed amounts: customers
  are sorted by long-window revenue, and those who together bring the first
  80% of it are tier A (a customer is A when the revenue of everyone above them
  is still under 80%), the next ones up to 95% tier B, everyone else C (shares
  from ``CONTACTCENTER_SALES_TIER_SHARES``). Customers with equal revenue get the
  same tier. When nobody has any revenue, tiers are left as they are (for
  example as imported).

``customer_values`` is pure; ``recompute_values`` aggregates in SQL (one
grouped pass over purchases and one over contracts) and writes the columns in
bulk. The one-line ``value_reason`` never contains an amount: agents without
the financial permission see it too.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract, Customer, Purchase

if TYPE_CHECKING:
    from contactcenter.config import Settings
    from contactcenter.db import Database

CENT = Decimal("0.01")
ZERO = Decimal("0")
TIERS = ("A", "B", "C")
UPDATE_BATCH = 2000


@dataclass(frozen=True)
class ValueConfig:
    """The windows, tier shares and lifetime-value model parameters."""

    short_days: int = 90
    long_days: int = 365
    tier_a_share: Decimal = Decimal("0.80")
    tier_b_share: Decimal = Decimal("0.95")
    retention: Decimal = Decimal("0.80")
    discount: Decimal = Decimal("0.10")

    @classmethod
    def from_settings(cls, settings: Settings) -> ValueConfig:
        """Read the sales settings; raise ``SettingsError`` on nonsense."""
        from contactcenter.config import SettingsError

        try:
            windows = [int(p) for p in settings.sales_value_windows_days.split(",") if p.strip()]
            shares = [Decimal(p.strip()) / 100 for p in settings.sales_tier_shares.split(",")
                      if p.strip()]
        except (ValueError, ArithmeticError) as exc:
            raise SettingsError("CONTACTCENTER_SALES_VALUE_WINDOWS_DAYS and "
                                "CONTACTCENTER_SALES_TIER_SHARES must be numbers") from exc
        if len(windows) != 2 or not 0 < windows[0] <= windows[1] <= 36_500:
            raise SettingsError("CONTACTCENTER_SALES_VALUE_WINDOWS_DAYS must be two windows, "
                                "short then long, e.g. 90,365")
        if len(shares) != 2 or not 0 < shares[0] <= shares[1] <= 1:
            raise SettingsError("CONTACTCENTER_SALES_TIER_SHARES must be two percentages, "
                                "A then B, e.g. 80,95")
        retention = Decimal(settings.sales_ltv_retention_percent) / 100
        discount = Decimal(settings.sales_ltv_discount_percent) / 100
        if retention >= 1 + discount:
            raise SettingsError("the lifetime-value retention must be below 100% plus discount")
        return cls(windows[0], windows[1], shares[0], shares[1], retention, discount)


@dataclass
class RevenueFacts:
    """One customer's revenue events, aggregated."""

    customer_id: int
    revenue_short: Decimal = ZERO
    revenue_long: Decimal = ZERO
    revenue_total: Decimal = ZERO
    purchases_long: int = 0
    purchases_total: int = 0
    first_at: dt.datetime | None = None
    last_purchase_at: dt.datetime | None = None
    contract_level: str | None = None

    def add_first(self, when: dt.datetime | None) -> None:
        """Keep the earliest revenue event."""
        if when is not None and (self.first_at is None or when < self.first_at):
            self.first_at = when


@dataclass(frozen=True)
class TierThresholds:
    """The smallest long-window revenue of tier A and of tier B in this distribution."""

    a_min: Decimal | None
    b_min: Decimal | None
    total: Decimal


@dataclass(frozen=True)
class CustomerValue:
    """A customer's computed value, ready to store."""

    customer_id: int
    revenue_short: Decimal
    revenue_long: Decimal
    revenue_total: Decimal
    frequency: Decimal
    last_purchase_at: dt.datetime | None
    lifetime_value: Decimal
    tier: str | None
    reason: str = field(default="")


def tier_thresholds(revenues: Iterable[Decimal], a_share: Decimal, b_share: Decimal
                    ) -> TierThresholds:
    """Return the revenue cut-offs of tiers A and B for a revenue distribution.

    Walking customers from the highest revenue down, a customer belongs to A
    while the revenue of those before them is under ``a_share`` of the total
    (so the customer who crosses the line is still A), then to B while it is
    under ``b_share``.
    """
    ordered = sorted((r for r in revenues if r > 0), reverse=True)
    total = sum(ordered, ZERO)
    if total <= 0:
        return TierThresholds(None, None, ZERO)
    a_min: Decimal | None = None
    b_min: Decimal | None = None
    before = ZERO
    for revenue in ordered:
        if before < a_share * total:
            a_min = revenue
        elif before < b_share * total:
            b_min = revenue
        else:
            break
        before += revenue
    return TierThresholds(a_min, b_min if b_min is not None else a_min, total)


def tier_of(revenue: Decimal, thresholds: TierThresholds) -> str | None:
    """Return the tier of a long-window revenue (None when nobody has revenue)."""
    if thresholds.a_min is None:
        return None
    if revenue > 0 and revenue >= thresholds.a_min:
        return "A"
    if revenue > 0 and thresholds.b_min is not None and revenue >= thresholds.b_min:
        return "B"
    return "C"


def lifetime_value(facts: RevenueFacts, now: dt.datetime, config: ValueConfig) -> Decimal:
    """Return revenue to date plus the retention model's expected future revenue."""
    tenure = config.long_days
    if facts.first_at is not None:
        tenure = min(config.long_days, max((now - facts.first_at).days, 0))
    tenure = max(tenure, config.short_days, 1)
    yearly = facts.revenue_long * Decimal(365) / Decimal(tenure)
    future = yearly * config.retention / (1 + config.discount - config.retention)
    return (facts.revenue_total + future).quantize(CENT, ROUND_HALF_UP)


def value_reason(tier: str | None, facts: RevenueFacts, frequency: Decimal,
                 now: dt.datetime, config: ValueConfig) -> str:
    """Return the one line the agent sees (no amounts: every role may read it)."""
    if tier is None:
        return ""
    a_pct = int(config.tier_a_share * 100)
    b_pct = int(config.tier_b_share * 100)
    window = f"the last {config.long_days} days' revenue"
    if facts.revenue_long <= 0:
        head = f"Tier {tier}: no revenue in the last {config.long_days} days"
    elif tier == "A":
        head = f"Tier A: among the customers who bring the top {a_pct}% of {window}"
    elif tier == "B":
        head = f"Tier B: among the customers who bring the next {b_pct - a_pct}% of {window}"
    else:
        head = f"Tier C: among the customers who bring the last {100 - b_pct}% of {window}"
    parts = [head]
    if facts.purchases_long:
        count = f"{frequency.normalize():f}"
        parts.append(f"{count} purchase{'' if count == '1' else 's'} a year")
    if facts.last_purchase_at is not None:
        days = max((now - facts.last_purchase_at).days, 0)
        parts.append("last purchase today" if days == 0 else
                     f"last purchase {days} day{'s' if days != 1 else ''} ago")
    if facts.contract_level:
        parts.append(f"{facts.contract_level} contract")
    return "; ".join(parts)[:300]


def customer_values(facts: Sequence[RevenueFacts], now: dt.datetime, config: ValueConfig
                    ) -> list[CustomerValue]:
    """Compute every customer's value and tier from their aggregated revenue facts."""
    thresholds = tier_thresholds((f.revenue_long for f in facts),
                                 config.tier_a_share, config.tier_b_share)
    out: list[CustomerValue] = []
    for f in facts:
        tier = tier_of(f.revenue_long, thresholds)
        frequency = (Decimal(f.purchases_long) * 365 / Decimal(config.long_days)).quantize(
            CENT, ROUND_HALF_UP)
        out.append(CustomerValue(
            customer_id=f.customer_id, revenue_short=f.revenue_short.quantize(CENT),
            revenue_long=f.revenue_long.quantize(CENT),
            revenue_total=f.revenue_total.quantize(CENT), frequency=frequency,
            last_purchase_at=f.last_purchase_at, lifetime_value=lifetime_value(f, now, config),
            tier=tier, reason=value_reason(tier, f, frequency, now, config)))
    return out


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(str(value))


def revenue_facts(session: Session, now: dt.datetime, config: ValueConfig
                  ) -> list[RevenueFacts]:
    """Aggregate purchases and contracts per (unmerged) customer in two grouped queries."""
    short_from = now - dt.timedelta(days=config.short_days)
    long_from = now - dt.timedelta(days=config.long_days)
    facts: dict[int, RevenueFacts] = {
        cid: RevenueFacts(cid) for cid in session.scalars(
            select(Customer.id).where(Customer.merged_into_id.is_(None)))}
    p = Purchase
    rows = session.execute(
        select(p.customer_id, func.sum(p.amount),
               func.sum(case((p.purchased_at >= long_from, p.amount), else_=0)),
               func.sum(case((p.purchased_at >= short_from, p.amount), else_=0)),
               func.sum(case((p.purchased_at >= long_from, 1), else_=0)),
               func.count(), func.min(p.purchased_at), func.max(p.purchased_at))
        .where(p.purchased_at <= now).group_by(p.customer_id))
    for cid, total, long_sum, short_sum, long_n, n, first, last in rows:
        f = facts.get(cid)
        if f is None:
            continue
        f.revenue_total += _dec(total)
        f.revenue_long += _dec(long_sum)
        f.revenue_short += _dec(short_sum)
        f.purchases_long += int(long_n or 0)
        f.purchases_total += int(n or 0)
        first, last = _aware(first), _aware(last)
        f.add_first(first)
        f.last_purchase_at = last
    today = now.date()
    c = Contract
    rows = session.execute(
        select(c.customer_id, func.sum(c.value),
               func.sum(case((c.starts_on >= long_from.date(), c.value), else_=0)),
               func.sum(case((c.starts_on >= short_from.date(), c.value), else_=0)),
               func.min(c.starts_on),
               func.max(case(((c.starts_on <= today) & (c.ends_on >= today), c.level),
                             else_=None)))
        .where(c.starts_on <= today, c.customer_id.is_not(None)).group_by(c.customer_id))
    for cid, total, long_sum, short_sum, first_day, level in rows:
        f = facts.get(cid)
        if f is None:
            continue
        f.revenue_total += _dec(total)
        f.revenue_long += _dec(long_sum)
        f.revenue_short += _dec(short_sum)
        if first_day is not None:
            if isinstance(first_day, str):
                first_day = dt.date.fromisoformat(first_day)
            f.add_first(dt.datetime.combine(first_day, dt.time(), dt.UTC))
        f.contract_level = level
    return list(facts.values())


def _aware(value: dt.datetime | str | None) -> dt.datetime | None:
    """Aggregates bypass the column type on SQLite (text back): make them aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecomputeResult:
    """What a recompute did."""

    customers: int
    tiers: dict[str, int]
    a_min: Decimal | None
    b_min: Decimal | None


def recompute_values(session: Session, now: dt.datetime, config: ValueConfig | None = None
                     ) -> RecomputeResult:
    """Recompute and store every customer's value and tier (the caller commits).

    Idempotent: running it twice at the same instant writes the same values.
    """
    config = config or ValueConfig()
    facts = revenue_facts(session, now, config)
    values = customer_values(facts, now, config)
    thresholds = tier_thresholds((f.revenue_long for f in facts),
                                 config.tier_a_share, config.tier_b_share)
    counts = dict.fromkeys(TIERS, 0)
    batch: list[dict[str, Any]] = []
    for v in values:
        row: dict[str, Any] = {
            "id": v.customer_id, "revenue_short": v.revenue_short,
            "revenue_long": v.revenue_long, "revenue_total": v.revenue_total,
            "purchase_frequency": v.frequency, "last_purchase_at": v.last_purchase_at,
            "lifetime_value": v.lifetime_value, "value_computed_at": now}
        if v.tier is not None:
            row["value_tier"] = v.tier
            row["value_reason"] = v.reason
            counts[v.tier] += 1
        batch.append(row)
        if len(batch) >= UPDATE_BATCH:
            _write(session, batch)
            batch = []
    if batch:
        _write(session, batch)
    # Bulk updates bypass the identity map: loaded customers must read the new values.
    session.expire_all()
    return RecomputeResult(len(values), counts, thresholds.a_min, thresholds.b_min)


def _write(session: Session, batch: list[dict[str, Any]]) -> None:
    # Rows without a tier keep theirs; group by key set so executemany sees one shape.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in batch:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for rows in by_shape.values():
        session.execute(update(Customer), rows)


VALUE_KINDS = frozenset({"customers", "purchases", "contracts"})


def recompute_after_import(db: Database, kind: str, settings: Settings | None = None) -> None:
    """Recompute values after an import of customers, purchases or contracts.

    The CLI's import runs without a job queue, so it recomputes in its own
    process (one set-based pass); the nightly job repeats it anyway.
    """
    if kind not in VALUE_KINDS:
        return
    from contactcenter.config import Settings as _Settings
    from contactcenter.db import utcnow

    config = ValueConfig.from_settings(settings or _Settings.from_env(os.environ))
    with db.session() as session:
        recompute_values(session, utcnow(), config)
        session.commit()
