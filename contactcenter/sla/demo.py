"""Demo SLA data: the sample calendars and policies, and allowances on some demo contracts.

``seed_demo(session)`` is called by the product's demo loader after it created
queues, customers and contracts; it loads ``config/sla.example.json`` and gives
the demo's contracts the coverage the policies expect. It does not commit.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract
from contactcenter.sla.loader import load_config
from contactcenter.sla.models import SlaCalendar, SlaPolicy

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "sla.example.json"


def seed_demo(session: Session) -> dict[str, int]:
    """Load the sample calendars and policies and give demo contracts their allowances."""
    counts = load_config(session, json.loads(EXAMPLE.read_text(encoding="utf-8")))
    office = session.scalar(select(SlaCalendar.id).where(SlaCalendar.name == "Office New York"))
    policies = {p.name: p.id for p in session.scalars(select(SlaPolicy))}
    contracts = list(session.scalars(select(Contract).order_by(Contract.id)))
    for n, contract in enumerate(contracts):
        level = contract.level.casefold()
        if "enterprise" in level:
            contract.sla_policy_id = policies.get("Enterprise 24x7")
        elif "premium" in level:
            contract.sla_policy_id = policies.get("Premium business hours")
            contract.calendar_id = office
        if n % 3 == 0:
            contract.allowance_kind = "incidents"
            contract.allowance_amount = Decimal(10)
            contract.allowance_used = Decimal(n % 11)
        elif n % 3 == 1:
            contract.allowance_kind = "hours"
            contract.allowance_amount = Decimal(40)
            contract.allowance_used = Decimal(n % 37)
    session.flush()
    return {**counts, "contracts": len(contracts)}
