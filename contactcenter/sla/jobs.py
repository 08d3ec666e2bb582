"""Background jobs of the sla package (see ``contactcenter.jobs``).

- ``sla.sweep`` (every 30 s): report warnings and breaches once, escalate.
- ``sla.contract_alerts`` (hourly): expiry (30/7/1 days), expired and allowance
  alerts, each exactly once.
- ``sla.notify`` (every minute, and after each breach or contract alert): send
  the notification e-mails waiting in the SLA outbox.

Each is idempotent: the database says what is already done.
"""

from __future__ import annotations

from typing import Any

from contactcenter.db import utcnow
from contactcenter.jobs import JobContext, job, on_event
from contactcenter.sla.contracts import send_contract_alerts
from contactcenter.sla.notify import deliver_notifications
from contactcenter.sla.sweep import run_sweep


@job("sla.sweep", queue="sla", every=30)
def sweep_job(ctx: JobContext) -> dict[str, Any]:
    """Run one SLA sweep now."""
    with ctx.db.session() as session:
        return run_sweep(session, ctx.settings, utcnow()).to_json()


@job("sla.contract_alerts", queue="sla", every=3600)
def contract_alerts_job(ctx: JobContext) -> list[str]:
    """Send the contract alerts that are due."""
    with ctx.db.session() as session:
        sent = send_contract_alerts(session, ctx.settings, utcnow())
        session.commit()
    return sent


@job("sla.notify", queue="sla", every=60)
def notify_job(ctx: JobContext, _payload: Any = None) -> dict[str, int]:
    """Send the SLA notification e-mails that are due."""
    if not ctx.settings.smtp_relay_host:
        return {"sent": 0, "retry": 0, "failed": 0}
    with ctx.db.session() as session:
        return deliver_notifications(session, ctx.settings, utcnow())


for _event in ("sla.breached", "contract.expiring", "contract.expired",
               "contract.allowance_low"):
    on_event(_event, "sla.notify")
