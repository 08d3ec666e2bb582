"""In-transaction reactions of the sla package to a ticket's life (see ``contactcenter.hooks``).

- intake, new ticket: entitlement, policy (which and why), first-response and
  resolution clocks; the earliest deadline goes to the router as ``ctx.due_at``.
- intake, customer message on an existing ticket: a reopened ticket's
  resolution clock runs on, paused clocks resume when the ticket is open again,
  and a next-response clock starts unless an answer is already owed.
- reply: an outbound reply meets the first (else the next) response; a note does not.
- status: pending pauses, on hold pauses when the policy says so, open resumes,
  solved/closed meets (see ``service.status_changed``).

None of these commit.
"""

from __future__ import annotations

from contactcenter import hooks
from contactcenter.sla import service
from contactcenter.sla.models import ClockState, Entitlement, SlaClock, TicketSla


@hooks.on_intake
def start_clocks(ctx: hooks.IntakeContext) -> None:
    """Set or move the ticket's clocks for an inbound contact; tell the router the deadline."""
    # The TicketSla row is held here: the session's identity map keeps only what is
    # referenced, and a row let go would be read again by the next ``get``.
    sla: TicketSla | None
    clocks: list[SlaClock]
    if ctx.created:
        clocks = []
        sla = service.open_ticket_sla(ctx.session, ctx.settings, ctx.ticket, ctx.customer,
                                      ctx.now, clocks_out=clocks)
    else:
        sla = ctx.session.get(TicketSla, ctx.ticket.id)
        clocks = service.customer_wrote(ctx.session, ctx.settings, ctx.ticket, ctx.customer,
                                        ctx.now, reopened=ctx.reopened,
                                        automatic=ctx.contact.auto_submitted)
        if sla is None:  # customer_wrote opened the clocks of a ticket that had none
            sla = ctx.session.get(TicketSla, ctx.ticket.id)
    # The deadline from the clocks in hand (as they are now, changes not yet flushed):
    # reading them back cost a flush and a query per message.
    dues = [c.due_at for c in clocks if c.state == ClockState.RUNNING and c.due_at is not None]
    due = min(dues) if dues else None
    if due is not None and (ctx.due_at is None or due < ctx.due_at):
        ctx.due_at = due
    if sla is not None and sla.entitlement in (Entitlement.EXPIRED, Entitlement.EXHAUSTED,
                                               Entitlement.PENDING) and sla.entitlement_note:
        ctx.flags.append(sla.entitlement_note)


@hooks.on_reply
def meet_response(ctx: hooks.ReplyContext) -> None:
    """An outbound reply answers the customer; an internal note does not."""
    if ctx.internal:
        return
    service.agent_replied(ctx.session, ctx.ticket, ctx.now)


@hooks.on_status
def follow_status(ctx: hooks.StatusContext) -> None:
    """Pause, resume or meet clocks as the ticket's status changes."""
    service.status_changed(ctx.session, ctx.ticket, ctx.old, ctx.new, ctx.now)
