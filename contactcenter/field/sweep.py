"""The on-site deadline sweep: one warning and one breach event per visit, at most.

Visits not yet checked in with a deadline are read through
``ix_field_visits_state_due`` (state, due_at), so the sweep reads only those
whose warning time has come. ``warned_at`` and ``breached_at`` make it
idempotent: a repeated or overlapping run records nothing twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.events import record_event
from contactcenter.field.models import Visit, VisitState
from contactcenter.field.service import summary, visit_rooms

BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    """How many visits were warned and breached in one run."""

    warned: int
    breached: int


def run_sweep(session: Session, settings: Settings, now: dt.datetime) -> SweepResult:
    """Record ``field.visit_warning`` / ``field.visit_breached`` for visits still not on site."""
    horizon = now + dt.timedelta(minutes=settings.field_warning_minutes)
    visits = session.scalars(select(Visit).where(
        Visit.state.in_((VisitState.PENDING, VisitState.ASSIGNED)),
        Visit.due_at.is_not(None), Visit.due_at <= horizon,
        Visit.breached_at.is_(None)).order_by(Visit.due_at).limit(BATCH)
        .with_for_update(skip_locked=True)).all()
    warned = breached = 0
    for visit in visits:
        assert visit.due_at is not None
        if visit.due_at <= now:
            visit.breached_at = now
            breached += 1
            record_event(session, "field.visit_breached", summary(visit), visit_rooms(visit))
        elif visit.warned_at is None:
            visit.warned_at = now
            warned += 1
            record_event(session, "field.visit_warning", summary(visit), visit_rooms(visit))
    session.commit()
    return SweepResult(warned, breached)
