"""The field flow on a migrated PostgreSQL: deadlines, suggestions, the locking sweep, report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from contactcenter.field.dispatch import suggest
from contactcenter.field.report import field_report
from contactcenter.field.service import assign_visit, check_in, check_out, create_visit
from contactcenter.field.sweep import run_sweep
from tests.field.conftest import Field, add_contract

pytestmark = pytest.mark.postgres

MON_9 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def session(pg_db: Any) -> Iterator[Any]:
    with pg_db.session() as s:
        yield s


def test_visit_flow_on_postgres(session: Any, settings: Any, field: Field) -> None:
    add_contract(session, field, "Enterprise")
    visit = create_visit(session, settings, field.ticket, field.agent.id,
                         {"address": "1 Main St", "area": "north", "problem": "Router",
                          "skills": ["router"]}, MON_9)
    session.commit()
    assert visit.due_at == MON_9 + dt.timedelta(hours=4)
    assert [s.user_id for s in suggest(session, visit, MON_9)] == [field.tech_a.id,
                                                                   field.tech_b.id]
    assert run_sweep(session, settings, MON_9 + dt.timedelta(hours=5)).breached == 1
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id, MON_9)
    check_in(session, visit, field.tech_a.id, MON_9 + dt.timedelta(hours=5))
    check_out(session, settings, visit, field.tech_a.id, {"outcome": "fixed"},
              MON_9 + dt.timedelta(hours=6))
    session.commit()
    report = field_report(session, MON_9, MON_9 + dt.timedelta(days=1), with_costs=True)
    assert report["visits"] == 1 and report["first_time_fix_rate"] == 100.0
    assert report["on_time_arrival_rate"] == 0.0
    assert report["cost_by_contract"][0]["contract"] == "c-Enterprise"
