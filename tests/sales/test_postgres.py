"""The same value, mining, ranking and outcome paths on a real PostgreSQL (migrated schema)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from contactcenter.customers.models import Customer
from contactcenter.customers.value import recompute_values
from contactcenter.db import Database
from contactcenter.sales.config import SalesConfig
from contactcenter.sales.marketing import conversion_report, create_relation
from contactcenter.sales.mining import basket_counts_python, basket_counts_sql, mine_rules
from contactcenter.sales.models import RelationKind
from contactcenter.sales.service import offers_for_customer, record_outcome
from tests.sales.helpers import NOW, buy, contract, customer, days_ago, product

pytestmark = pytest.mark.postgres


def test_value_mining_offers_and_outcomes_on_postgres(pg_db: Database) -> None:
    with pg_db.session() as session:
        router, mesh, care = (product(session, n) for n in ("Router", "Mesh", "Care"))
        create_relation(session, RelationKind.CROSS_SELL, router.id, care.id)
        people = [customer(session, f"P{i}") for i in range(6)]
        for i, c in enumerate(people):
            buy(session, c, router, str(100 * (6 - i)), days_ago(20 + i))
            if i < 4:
                buy(session, c, mesh, "50.00", days_ago(5))
        contract(session, people[5], care, (NOW - dt.timedelta(days=355)).date(),
                 (NOW + dt.timedelta(days=10)).date(), "120.00")
        session.commit()

        result = recompute_values(session, NOW)
        session.commit()
        # Long-window revenue: 650, 550, 450, 350, 200 and 100 + 120 = 220. Total 2420;
        # 80% is 1936: A are 650, 550, 450, 350 (1650 before the fourth); 95% is 2299:
        # B are 220 (2000 before) and 200 (2220 before).
        assert result.tiers == {"A": 4, "B": 2, "C": 0}
        top = session.get(Customer, people[0].id)
        assert top is not None and top.revenue_long == Decimal("650.00")

        sql, py = basket_counts_sql(session), basket_counts_python(session)
        assert (dict(sql.items), dict(sql.pairs), sql.baskets) == (
            dict(py.items), dict(py.pairs), py.baskets)
        mined = mine_rules(session, NOW, SalesConfig(rule_min_count=2, rule_min_lift=1.0))
        session.commit()
        assert mined.baskets == 6 and mined.created >= 2

        offers = offers_for_customer(session, people[0].id, None, now=NOW)
        assert [o["product"]["name"] for o in offers] == ["Care"]
        renewal = offers_for_customer(session, people[5].id, None, now=NOW)
        assert renewal[0]["source"] == "renewal"
        record_outcome(session, offers[0]["id"], "accepted", None, follow_up="order", now=NOW)
        record_outcome(session, renewal[0]["id"], "declined", None, now=NOW)
        session.commit()
        report = {r["key"]: r for r in conversion_report(session, "source")}
        assert (report["relation"]["accepted"], report["renewal"]["declined"]) == (1, 1)
        assert session.scalars(select(Customer)).first() is not None
