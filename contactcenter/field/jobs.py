"""Background jobs of the field package (see ``contactcenter.jobs``)."""

from __future__ import annotations

from typing import Any

from contactcenter.db import utcnow
from contactcenter.field.sweep import run_sweep
from contactcenter.jobs import JobContext, job


@job("field.sweep", queue="sla", every=60)
def sweep_job(ctx: JobContext) -> dict[str, Any]:
    """Warn about and breach on-site deadlines of visits nobody has reached yet."""
    with ctx.db.session() as session:
        result = run_sweep(session, ctx.settings, utcnow())
    return {"warned": result.warned, "breached": result.breached}
