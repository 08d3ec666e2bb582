"""In-transaction reactions of the field package (see ``contactcenter.hooks``).

- status: a ticket closed cancels its visits not yet started, so no technician
  drives to a problem the desk has closed (each cancellation is noted on the
  ticket and reaches the technician's page live). Solved tickets keep their
  visits: a customer may still confirm the fix on site.

None of these commit.
"""

from __future__ import annotations

from sqlalchemy import select

from contactcenter import hooks
from contactcenter.field.models import Visit, VisitState


@hooks.on_status
def cancel_visits_of_closed_ticket(ctx: hooks.StatusContext) -> None:
    """Cancel the pending and assigned visits of a ticket that was just closed."""
    if ctx.new != "closed":
        return
    from contactcenter.field.service import cancel_visit

    visits = ctx.session.scalars(select(Visit).where(
        Visit.ticket_id == ctx.ticket.id,
        Visit.state.in_((VisitState.PENDING, VisitState.ASSIGNED)))).all()
    for visit in visits:
        cancel_visit(ctx.session, visit, ctx.actor_user_id or visit.created_by_id or 0, ctx.now)
