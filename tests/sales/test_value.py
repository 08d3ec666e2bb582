"""Customer value and tiers on a hand-checked data set (figures worked out in the comments)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from contactcenter.customers.models import Customer
from contactcenter.customers.value import (
    ValueConfig,
    recompute_values,
    tier_thresholds,
)
from tests.sales.helpers import NOW, buy, contract, customer, days_ago, product

D = Decimal


def test_thresholds_follow_the_80_95_split() -> None:
    # Total 1000. Walking down: 500 (0 before) A, 300 (500 < 800) A, 100 (800) B,
    # 50 (900 < 950) B, 30 (950) C, 20 C.
    t = tier_thresholds([D(500), D(300), D(100), D(50), D(30), D(20), D(0)],
                        D("0.8"), D("0.95"))
    assert (t.a_min, t.b_min, t.total) == (D(300), D(50), D(1000))


def test_equal_revenue_gets_the_same_tier() -> None:
    # 50 (0 < 80) A, 25 (50 < 80) A, the other 25 ties with the last A: A as well.
    t = tier_thresholds([D(50), D(25), D(25)], D("0.8"), D("0.95"))
    assert t.a_min == D(25)


def test_no_revenue_leaves_no_thresholds() -> None:
    assert tier_thresholds([D(0), D(0)], D("0.8"), D("0.95")).a_min is None


def test_recompute_on_a_hand_checked_data_set(session: Session) -> None:
    router, plan = product(session, "Router"), product(session, "Care plan")
    c1, c2, c3, c4, c5, c6, c7 = (customer(session, f"C{i}") for i in range(1, 8))
    buy(session, c1, router, "200.00", days_ago(10))
    buy(session, c1, router, "300.00", days_ago(100))
    contract(session, c2, plan, (NOW - dt.timedelta(days=50)).date(),
             (NOW + dt.timedelta(days=315)).date(), "300.00", "Gold")
    buy(session, c3, router, "100.00", days_ago(200))
    buy(session, c4, router, "50.00", days_ago(364))
    buy(session, c5, router, "30.00", days_ago(30))
    buy(session, c6, router, "20.00", days_ago(1))
    buy(session, c6, router, "1000.00", days_ago(400))
    buy(session, c6, router, "999.00", NOW + dt.timedelta(days=3))  # future-dated: ignored
    merged = customer(session, "Merged", merged_into_id=c1.id)
    session.commit()

    result = recompute_values(session, NOW, ValueConfig())
    session.commit()
    assert result.customers == 7
    assert result.tiers == {"A": 2, "B": 2, "C": 3}
    assert (result.a_min, result.b_min) == (D(300), D(50))

    def get(c: Customer) -> Customer:
        return session.get(Customer, c.id)  # type: ignore[return-value]

    one = get(c1)
    assert (one.value_tier, one.revenue_short, one.revenue_long, one.revenue_total) == (
        "A", D("200.00"), D("500.00"), D("500.00"))
    assert one.purchase_frequency == D("2.00")
    assert one.last_purchase_at == days_ago(10)
    # Tenure 100 days: 500 * 365 / 100 = 1825 a year; future 1825 * 0.8 / 0.3 = 4866.67.
    assert one.lifetime_value == D("5366.67")
    assert one.value_reason.startswith("Tier A: among the customers who bring the top 80%")
    assert "last purchase 10 days ago" in one.value_reason

    two = get(c2)
    # A contract counts at its start; tenure floored at the 90-day short window:
    # 300 * 365 / 90 = 1216.67 a year, future 3244.44, plus 300 to date.
    assert (two.value_tier, two.revenue_long, two.lifetime_value) == ("A", D("300.00"),
                                                                       D("3544.44"))
    assert "Gold contract" in two.value_reason
    assert two.purchase_frequency == D("0.00") and two.last_purchase_at is None

    # 100 * 365 / 200 = 182.5 a year -> 486.67 future.
    assert (get(c3).value_tier, get(c3).lifetime_value) == ("B", D("586.67"))
    # 50 * 365 / 364 = 50.137 a year -> 133.70 future.
    assert (get(c4).value_tier, get(c4).lifetime_value) == ("B", D("183.70"))
    assert get(c4).value_reason.startswith("Tier B: among the customers who bring the next 15%")
    assert (get(c5).value_tier, get(c5).lifetime_value) == ("C", D("354.44"))
    six = get(c6)
    # Long window 20 (the 1000 is 400 days old, the 999 is in the future); tenure 365.
    assert (six.value_tier, six.revenue_long, six.revenue_total, six.lifetime_value) == (
        "C", D("20.00"), D("1020.00"), D("1073.33"))
    seven = get(c7)
    assert (seven.value_tier, seven.lifetime_value) == ("C", D("0.00"))
    assert seven.value_reason == "Tier C: no revenue in the last 365 days"
    assert get(merged).value_tier is None
    for c in (c1, c2, c3, c4, c5, c6, c7):
        assert "$" not in get(c).value_reason and "." not in get(c).value_reason.split(";")[0]


def test_recompute_is_idempotent_and_keeps_imported_tiers_without_revenue(
        session: Session) -> None:
    c = customer(session, "Imported", value_tier="B")
    session.commit()
    recompute_values(session, NOW)
    session.commit()
    assert session.get(Customer, c.id).value_tier == "B"  # type: ignore[union-attr]
    router = product(session, "Router")
    buy(session, c, router, "10.00", days_ago(5))
    session.commit()
    first = recompute_values(session, NOW)
    second = recompute_values(session, NOW)
    assert first == second
    assert session.get(Customer, c.id).value_tier == "A"  # type: ignore[union-attr]


def test_windows_and_shares_come_from_settings(settings: object) -> None:
    import pytest

    from contactcenter.config import SettingsError

    cfg = ValueConfig.from_settings(settings.replace(  # type: ignore[attr-defined]
        sales_value_windows_days="30,180", sales_tier_shares="70,90"))
    assert (cfg.short_days, cfg.long_days, cfg.tier_a_share, cfg.tier_b_share) == (
        30, 180, D("0.7"), D("0.9"))
    for bad in ({"sales_value_windows_days": "365,90"}, {"sales_tier_shares": "95,80"},
                {"sales_value_windows_days": "x"}):
        with pytest.raises(SettingsError):
            ValueConfig.from_settings(settings.replace(**bad))  # type: ignore[attr-defined]
